"""Finding the videos to import in folders and ZIP archives, with what lies beside them.

A source is a tree of files: a folder (walked recursively) or a ZIP archive (read in place:
each entry is streamed out of the archive when it is imported, never extracted to disk). Every
video in it (by its bytes, or by its name where they say nothing) becomes a `Candidate` carrying
the metadata found around it: a sidecar with the same stem, an entry in a manifest that lists
many videos, or Moviola's own export manifest.

A ZIP inside a ZIP is a tree of its own, up to `MAX_ZIP_DEPTH` archives deep (deeper ones are
reported). A stored one is read in place too; a compressed one can only be read from its start,
and a ZIP archive needs to jump about, so it is first copied to a temporary file.

Archives are hostile until proven otherwise. An entry whose name would land outside the
archive's folder when extracted (zip-slip) is refused, and so is one that inflates far beyond
its compressed size (a zip bomb): both are reported, never read. Archives inside archives are
held to the same limits, entry by entry.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any, Protocol

from moviola.importer import manifest
from moviola.importer.metadata import (
    MAX_MANIFEST_BYTES,
    MAX_SIDECAR_BYTES,
    ManifestEntries,
    MetadataError,
    Recovered,
    load_json,
    manifest_entries,
    read_sidecar_json,
    read_sidecar_text,
    sidecar_names,
)
from moviola.media import formats
from moviola.media.sniff import HEAD_BYTES, sniff

# A video barely compresses; an entry that inflates more than this is built to hurt.
MAX_ZIP_RATIO = 100
# Small entries may compress well (text, blank frames) without being a threat.
ZIP_RATIO_FLOOR = 1 << 20
MAX_ZIP_ENTRY_BYTES = 64 << 30
# An archive in an archive in an archive is as deep as real collections go; past that it is
# more likely built to make the walk go on forever.
MAX_ZIP_DEPTH = 3
_DRIVE = re.compile(r"^[A-Za-z]:")
# How reading an archive's entry fails: damaged, encrypted, an unknown compression, a full disk.
_UNREADABLE = (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error)
_ENCRYPTED = 0x1  # a ZIP entry's flag bit: its stored bytes are not the archive inside it
# A ZIP entry's local header: its signature and fixed fields, the last two the lengths of the
# name and the extra field that follow it (APPNOTE.TXT 4.3.7).
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30


class Stream(Protocol):
    """A file of bytes being imported, read from its start: a file, an archive's entry, an
    archive stored in another, or a download (which cannot seek)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int: ...

    def seekable(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Stream: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None: ...


@dataclass
class Candidate:
    """One video to import, and everything known about it before its bytes are read."""

    location: str  # for people: a path, `archive.zip!/inner/path`, or a URL
    name: str  # the file name (its suffix is only a hint: the bytes decide)
    source: str  # folder | zip | export | api
    size: int | None
    open: Callable[[], Stream] | None
    metadata: Recovered = field(default_factory=Recovered)
    local_path: Path | None = None  # set when the bytes are a plain file on this machine
    previews: dict[str, Callable[[], Stream]] = field(default_factory=dict)
    export_entry: dict[str, Any] | None = None
    refused: str | None = None  # why it must not be read at all (a failure)
    skipped: str | None = None  # why there is nothing to import (not a failure)


@dataclass
class Found:
    """What a walk found: candidates, and files that could not even be looked at."""

    candidates: list[Candidate] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (location, reason)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def __enter__(self) -> Found:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def walk(paths: list[Path]) -> Found:
    """Every video under `paths` (folders, ZIP archives or single video files)."""
    found = Found()
    for path in paths:
        path = Path(path)
        if not path.exists():
            found.problems.append((str(path), "no such file or folder"))
        elif path.is_dir():
            _walk_folder(path, found)
        elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            _walk_zip(path, found)
        else:
            tree = _FolderTree(path.parent, found.problems, only=path.name)
            if tree.is_video(PurePosixPath(path.name)):
                found.candidates.extend(_candidates(tree, found.problems))
            else:
                found.problems.append((str(path), "not a video, a folder or a ZIP archive"))
    return found


def _walk_folder(root: Path, found: Found) -> None:
    tree = _FolderTree(root, found.problems)
    found.candidates.extend(_candidates(tree, found.problems))
    for name in tree.files():
        if name.suffix.lower() == ".zip":
            _walk_zip(tree.local_path(name), found)


def _walk_zip(path: Path, found: Found) -> None:
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed with the walk)
    except OSError as err:
        found.problems.append((str(path), f"not a readable ZIP archive ({err})"))
        return
    _walk_archive(file, str(path), found, depth=1)


def _walk_archive(file: Stream, label: str, found: Found, depth: int) -> None:
    """The archive in `file` (owned from here on: closed with the walk)."""
    found._closers.append(file.close)
    try:
        archive = zipfile.ZipFile(file)
    except _UNREADABLE as err:
        found.problems.append((label, f"not a readable ZIP archive ({err})"))
        return
    found._closers.append(archive.close)
    tree = _ZipTree(label, archive, file)
    found.problems.extend(tree.refused_others)
    found.candidates.extend(_candidates(tree, found.problems))
    for name in tree.files():
        if name.suffix.lower() != ".zip":
            continue
        location = tree.location(name)
        if depth == MAX_ZIP_DEPTH:
            found.problems.append(
                (location, f"not imported: ZIP archives nested over {MAX_ZIP_DEPTH} deep")
            )
            continue
        try:
            inner = tree.open_archive(name)
        except _UNREADABLE as err:
            found.problems.append((location, f"not a readable ZIP archive ({err})"))
            continue
        _walk_archive(inner, location, found, depth + 1)


# --- trees ---------------------------------------------------------------------------------


class _Tree:
    source = "folder"

    def files(self) -> list[PurePosixPath]:
        raise NotImplementedError

    def size(self, name: PurePosixPath) -> int:
        raise NotImplementedError

    def opener(self, name: PurePosixPath) -> Callable[[], IO[bytes]]:
        raise NotImplementedError

    def location(self, name: PurePosixPath) -> str:
        raise NotImplementedError

    def refused(self, name: PurePosixPath) -> str | None:
        return None

    def local_path(self, name: PurePosixPath) -> Path | None:
        return None

    def is_video(self, name: PurePosixPath) -> bool:
        """Whether `name` is a video: its bytes decide, and its name alone is enough (importing
        it then reports what is wrong with it)."""
        if name.suffix.lower() in formats.VIDEO_SUFFIXES:
            return True
        try:
            with self.opener(name)() as stream:
                return sniff(stream.read(HEAD_BYTES)) is not None
        except _UNREADABLE:
            return False

    def read(self, name: PurePosixPath, limit: int) -> bytes:
        """A small file's bytes; MetadataError when it is refused, unreadable or over `limit`
        (so the report can say which metadata was left out, and why)."""
        why = self.refused(name)
        if why:
            raise MetadataError(why)
        if self.size(name) > limit:
            raise MetadataError(f"not read: over {limit >> 20} MiB")
        try:
            with self.opener(name)() as stream:
                data = stream.read(limit + 1)
        except _UNREADABLE as err:
            raise MetadataError(f"could not read it ({err})") from None
        if len(data) > limit:  # it grew since it was listed
            raise MetadataError(f"not read: over {limit >> 20} MiB")
        return data


class _FolderTree(_Tree):
    """A folder on this machine. A link is followed only where it leads to a file inside the
    folder: one leading out of it (to `~/.ssh`, to `/etc`) is reported and never read."""

    def __init__(self, root: Path, problems: list[tuple[str, str]], only: str | None = None):
        self.root = root
        self.only = only
        self._files: list[PurePosixPath] = []
        self._real: dict[PurePosixPath, Path] = {}
        inside = root.resolve()
        # One file named: what describes it is all of its folder that this import reads.
        wanted = None if only is None else {only, manifest.NAME, *sidecar_names(only)}
        for folder, dirs, names in os.walk(root):
            relative = PurePosixPath(Path(folder).relative_to(root).as_posix())
            for name in sorted(d for d in dirs if Path(folder, d).is_symlink()):
                if not _within(Path(folder, name).resolve(), inside):
                    problems.append((str(Path(folder, name)), _OUTSIDE))
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith(".") or (wanted is not None and name not in wanted):
                    continue
                path = Path(folder, name)
                if path.is_symlink():
                    target = path.resolve()
                    # The one file a person named may be a link; links met in a walk may not
                    # lead out of the folder that was named.
                    if name != only and not _within(target, inside):
                        problems.append((str(path), _OUTSIDE))
                        continue
                    self._real[relative / name] = target
                self._files.append(relative / name)
            if only is not None:
                break

    def files(self) -> list[PurePosixPath]:
        return self._files

    def size(self, name: PurePosixPath) -> int:
        try:
            return self.local_path(name).stat().st_size
        except OSError:
            return 0

    def opener(self, name: PurePosixPath) -> Callable[[], IO[bytes]]:
        path = self.local_path(name)
        return lambda: open_local(path)

    def location(self, name: PurePosixPath) -> str:
        return str(self.root / name)

    def local_path(self, name: PurePosixPath) -> Path:
        return self._real.get(name) or self.root / name

    def is_video(self, name: PurePosixPath) -> bool:
        # Reading a FIFO or a device may never end, and neither is a video.
        return self.local_path(name).is_file() and super().is_video(name)


_OUTSIDE = "skipped: a link to somewhere outside the folder being imported"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def open_local(path: Path) -> IO[bytes]:
    """A file of a folder being imported, for reading; never through a link (one put in its
    place after the walk is refused, not followed)."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


class _ZipTree(_Tree):
    source = "zip"

    def __init__(self, label: str, archive: zipfile.ZipFile, file: Stream):
        self.label = label
        self.archive = archive
        self.file = file  # what `archive` reads: a file, or a part of the archive around it
        self._infos: dict[PurePosixPath, zipfile.ZipInfo] = {}
        self._refused: dict[PurePosixPath, str] = {}
        self.refused_others: list[tuple[str, str]] = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = PurePosixPath(info.filename.replace("\\", "/"))
            why = _unsafe_entry(info)
            if why and name.suffix.lower() not in formats.VIDEO_SUFFIXES:
                self.refused_others.append((self.location(name), why))
                continue
            self._infos[name] = info
            if why:
                self._refused[name] = why

    def files(self) -> list[PurePosixPath]:
        return sorted(self._infos)

    def size(self, name: PurePosixPath) -> int:
        return self._infos[name].file_size

    def opener(self, name: PurePosixPath) -> Callable[[], IO[bytes]]:
        info = self._infos[name]
        return lambda: self.archive.open(info)

    def location(self, name: PurePosixPath) -> str:
        return f"{self.label}!/{name}"

    def refused(self, name: PurePosixPath) -> str | None:
        return self._refused.get(name)

    def open_archive(self, name: PurePosixPath) -> Stream:
        """An entry that is an archive itself, as a file to open it from."""
        info = self._infos[name]
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & _ENCRYPTED:
            return _Part(self.file, _data_offset(self.file, info), info.file_size)
        copy = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the walk)
        try:
            with self.archive.open(info) as stream:
                shutil.copyfileobj(stream, copy, 1 << 20)
        except BaseException:
            copy.close()
            raise
        return copy


def _data_offset(file: Stream, info: zipfile.ZipInfo) -> int:
    """Where an entry's bytes start in its archive: after its local header, whose name and
    extra field need not be as long as the central directory's."""
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER_SIZE)
    if len(header) < _LOCAL_HEADER_SIZE or header[:4] != _LOCAL_HEADER_SIGNATURE:
        raise zipfile.BadZipFile(f"no local header for {info.filename!r}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + _LOCAL_HEADER_SIZE + name_length + extra_length


class _Part(io.RawIOBase):
    """`size` bytes of `file` from `start`, as a file of their own: an archive stored inside
    another, read in place. Every read seeks first, as `zipfile` does, so the two can share
    `file`."""

    def __init__(self, file: Stream, start: int, size: int):
        self.file, self.start, self.size, self.pos = file, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        self.file.seek(self.start + self.pos)
        data = self.file.read(max(0, min(len(buffer), self.size - self.pos)))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _unsafe_entry(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or ".." in PurePosixPath(name).parts:
        return f"refused: the entry's path {info.filename!r} leads outside the archive (zip-slip)"
    if info.file_size > MAX_ZIP_ENTRY_BYTES:
        return f"refused: the entry declares {info.file_size:,} bytes (zip bomb?)"
    if info.file_size > ZIP_RATIO_FLOOR and info.file_size > MAX_ZIP_RATIO * max(
        1, info.compress_size
    ):
        return (
            f"refused: {info.compress_size:,} compressed bytes would inflate to "
            f"{info.file_size:,} (over {MAX_ZIP_RATIO}x: a zip bomb)"
        )
    return None


# --- candidates ------------------------------------------------------------------------------


def _candidates(tree: _Tree, problems: list[tuple[str, str]]) -> Iterator[Candidate]:
    files = tree.files()
    present = set(files)
    only = getattr(tree, "only", None)
    videos = [f for f in files if (only is None or f.name == only) and tree.is_video(f)]
    sidecars = {f.parent / n for f in videos for n in sidecar_names(f.name)} & present
    exports, others = _manifests(tree, [f for f in files if f not in sidecars], problems)

    def read(path: PurePosixPath) -> bytes | None:
        try:
            return tree.read(path, MAX_SIDECAR_BYTES)
        except MetadataError as err:
            problems.append((tree.location(path), str(err)))
            return None

    for name in videos:
        entry = exports.find(name)
        recovered = Recovered()
        candidate = Candidate(
            location=tree.location(name),
            name=name.name,
            source="export" if entry else tree.source,
            size=tree.size(name),
            open=tree.opener(name),
            metadata=recovered,
            local_path=tree.local_path(name),
            refused=tree.refused(name),
        )
        if entry is not None:
            recovered.offer_mapping(entry, "export manifest")
            candidate.export_entry = entry
            for variant in ("thumbnail", "spritesheet"):
                described = entry.get(variant)
                if isinstance(described, dict) and isinstance(described.get("file"), str):
                    preview = name.parent / PurePosixPath(described["file"]).name
                    if preview in present and not tree.refused(preview):
                        candidate.previews[variant] = tree.opener(preview)
        texts = []
        for sidecar in sidecar_names(name.name):
            path = name.parent / sidecar
            if path not in present:
                continue
            if sidecar.endswith(".txt"):
                texts.append(path)
                continue
            data = read(path)
            if data is None:
                continue
            try:
                side = read_sidecar_json(data)
            except MetadataError as err:
                problems.append((tree.location(path), str(err)))
                continue
            for field_name, value in side.values.items():
                recovered.offer(field_name, value, side.found[field_name])
            for field_name, note in side.found.items():
                if field_name not in side.values:
                    recovered.found.setdefault(field_name, note)
            recovered.extra.update(side.extra)
        for listed in others.find_all(name):
            recovered.offer_mapping(listed, "manifest")
        for path in texts:
            data = read(path)
            if data is not None:
                recovered.offer("prompt", read_sidecar_text(data), "sidecar txt")
        yield candidate


def _manifests(
    tree: _Tree, files: list[PurePosixPath], problems: list[tuple[str, str]]
) -> tuple[_ManifestIndex, _ManifestIndex]:
    """Moviola export manifests, and other manifests listing many videos (JSON or CSV)."""
    exports, others = _ManifestIndex(exact=True), _ManifestIndex()
    for name in files:
        if name.suffix.lower() not in (".json", ".csv"):
            continue
        try:
            data = tree.read(name, MAX_MANIFEST_BYTES)
            if name.suffix.lower() == ".json":
                parsed = load_json(data)
                if manifest.is_export(parsed):
                    why = manifest.check_version(parsed)
                    if why is not None:
                        problems.append((tree.location(name), why))
                        continue
                    items = [i for i in parsed.get("videos") or [] if isinstance(i, dict)]
                    exports.add(items, name.parent)
                    continue
            others.add(manifest_entries(data, name.name) or [], name.parent)
        except MetadataError as err:
            problems.append((tree.location(name), str(err)))
    return exports, others


class _ManifestIndex:
    """Entries of the manifests in one tree, found by a video's path within the tree."""

    def __init__(self, *, exact: bool = False) -> None:
        self.exact = exact
        self.by_folder: dict[PurePosixPath, list[ManifestEntries]] = {}

    def add(self, items: list[dict[str, Any]], folder: PurePosixPath) -> None:
        if not items:
            return
        entries = ManifestEntries(exact=self.exact)
        for item in items:
            entries.add(item, folder)
        self.by_folder.setdefault(folder, []).append(entries)

    def find_all(self, video: PurePosixPath) -> list[dict[str, Any]]:
        """Every manifest's entry for `video`; a manifest describes the files of its folder and
        those below it, and the nearest comes first."""
        found = []
        for folder in (video.parent, *video.parent.parents):
            for entries in self.by_folder.get(folder, []):
                entry = entries.find(video)
                if entry is not None:
                    found.append(entry)
        return found

    def find(self, video: PurePosixPath) -> dict[str, Any] | None:
        found = self.find_all(video)
        return found[0] if found else None
