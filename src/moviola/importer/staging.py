"""Where an import puts a video's files together, who is writing them, and clearing up after
imports that died.

Every folder an import writes before its row exists carries a `.importing` marker naming its
writer: host, boot, process id and start time. Blob folders may be on storage shared by several
machines, so a process id alone says nothing about a writer elsewhere: a writer counts as gone
only when it ran on this very host since its last boot and its process no longer exists, or,
wherever it ran, once its marker is older than `STALE_AFTER_S` (no single import of one video
takes that long).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from moviola import media
from moviola.errors import MediaError

if TYPE_CHECKING:
    from moviola.importer.sources import Stream

MARKER = ".importing"
STAGING_PREFIX = ".import-"
STALE_AFTER_S = 6 * 3600
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_COPY_CHUNK = 1 << 20


def writer() -> dict[str, Any]:
    """This process, as a marker names it."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid()}


def mark(folder: Path, who: dict[str, Any]) -> None:
    media.atomic_write_bytes(folder / MARKER, json.dumps({**who, "started": time.time()}).encode())


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker's writer; None when there is no marker. A bare process id is what Moviola wrote
    before markers named the host, when imports only ever ran beside their blobs."""
    try:
        text = path.read_text().strip()
        started = path.stat().st_mtime
    except OSError:
        return None
    try:
        who = json.loads(text)
    except ValueError:
        who = None
    if not isinstance(who, dict):
        pid = int(text) if text.isdigit() else None
        who = {**writer(), "pid": pid}
    if not isinstance(who.get("started"), (int, float)):
        who["started"] = started
    return who


def gone(who: dict[str, Any]) -> bool:
    """Whether the import `who` describes has ended (and so will never finish its folder)."""
    here = writer()
    if who.get("host") == here["host"] and who.get("boot") == here["boot"]:
        return not _running(who.get("pid"))
    return time.time() - float(who["started"]) > STALE_AFTER_S


class Staging:
    """This import's own folder among the blobs, where files are put together before they are
    moved into place with one rename (so nothing half-written ever has a video's name)."""

    def __init__(self, root: Path):
        self.root = root
        self.who = writer()
        self._path: Path | None = None

    def folder(self) -> Path:
        if self._path is None:
            path = self.root / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
            path.mkdir(parents=True)
            mark(path, self.who)
            self._path = path
        return self._path

    def close(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None


def recover(root: Path, has_row: Callable[[str], bool]) -> int:
    """Remove what imports that died left in `root`: their staging folders, and video folders
    whose row never came. Returns how many were removed."""
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if path.name.startswith(STAGING_PREFIX):
            who = read_marker(path / MARKER) or _unmarked(path)
            if who is not None and gone(who):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            continue
        who = read_marker(path / MARKER)
        if who is None or not gone(who):
            continue  # a finished video's folder, or one still being written
        if has_row(path.name):
            (path / MARKER).unlink(missing_ok=True)  # the row made it: only the marker was left
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _unmarked(path: Path) -> dict[str, Any] | None:
    """A staging folder without a marker: one made before markers were written into them
    (named by process id), or one whose marker is about to be written."""
    suffix = path.name[len(STAGING_PREFIX) :]
    try:
        started = path.stat().st_mtime
    except OSError:
        return None
    if suffix.isdigit():
        return {**writer(), "pid": int(suffix), "started": started}
    return {"host": None, "started": started}


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _running(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def move_into_place(build: Path, folder: Path) -> bool:
    """Rename `build` to `folder`; False when `folder` is already there (and so not ours)."""
    try:
        if folder.exists():
            return False
        os.rename(build, folder)  # an empty `folder` made meanwhile would be replaced: harmless
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


@contextlib.contextmanager
def write_checked(path: Path, sha: str) -> Any:
    """Write `path` atomically, refusing the result unless its bytes hash to `sha` (the source
    changed between hashing and copying)."""
    with media.atomic_write(path) as tmp, open(tmp, "wb") as out:
        hashing = _HashingWriter(out)
        yield hashing
        out.flush()
        if hashing.digest.hexdigest() != sha:
            raise MediaError(f"{path.name}: the file changed while it was being imported")


class _HashingWriter:
    def __init__(self, out: IO[bytes]):
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def copy(stream: Stream, out: Any, on_bytes: Any = None) -> int:
    """Copy `stream` into `out` (a file, or a hash) in chunks; returns how many bytes."""
    total = 0
    while chunk := stream.read(_COPY_CHUNK):
        if isinstance(out, _Hash):
            out.update(chunk)
        else:
            out.write(chunk)
        total += len(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return total


_Hash = type(hashlib.sha256())
