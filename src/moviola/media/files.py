"""Crash-safe file writes and content hashing.

Every media file Moviola produces is written beside its final name and renamed into place, so a
reader (the API serving a download, a Studio thumbnail) sees either the old file or the whole new
one, never a prefix of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

_HASH_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one step.

    The temporary file sits in the same directory (a rename is only atomic within one
    filesystem) and ends with the real suffix, so writers that pick a format from the name
    (Pillow, FFmpeg) still do the right thing. It is fsynced before the rename and the directory
    after it, so a power cut cannot leave a renamed-but-empty file. On any exception, including
    KeyboardInterrupt, the temporary file is removed and `path` is left as it was.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp{final.suffix}")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically and return the final path."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def sha256_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex SHA-256 of a file, read in chunks so a large video never sits in memory;
    `on_bytes(n)` is told of each chunk read (for a progress bar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # Durability of the rename itself; some filesystems and platforms cannot fsync a directory,
    # and the data is already safe, so that is not worth failing the write for.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
