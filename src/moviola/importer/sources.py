"""Finding the videos to import in folders and ZIP archives, with what lies beside them.

A source is a tree of files: a folder (walked recursively) or a ZIP archive (read in place:
each entry is streamed out of the archive when it is imported, never extracted to disk). Every
video file in it becomes a `Candidate` carrying the metadata found around it: a sidecar with the
same stem, an entry in a manifest that lists many videos, or Moviola's own export manifest.

Archives are hostile until proven otherwise. An entry whose name would land outside the
archive's folder when extracted (zip-slip) is refused, and so is one that inflates far beyond
its compressed size (a zip bomb): both are reported, never read.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

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

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".gif"})
# A video barely compresses; an entry that inflates more than this is built to hurt.
MAX_ZIP_RATIO = 100
# Small entries may compress well (text, blank frames) without being a threat.
ZIP_RATIO_FLOOR = 1 << 20
MAX_ZIP_ENTRY_BYTES = 64 << 30
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class Candidate:
    """One video to import, and everything known about it before its bytes are read."""

    location: str  # for people: a path, `archive.zip!/inner/path`, or a URL
    name: str  # the file name (its suffix is only a hint: the bytes decide)
    source: str  # folder | zip | export | api
    size: int | None
    open: Callable[[], IO[bytes]] | None
    metadata: Recovered = field(default_factory=Recovered)
    local_path: Path | None = None  # set when the bytes are a plain file on this machine
    previews: dict[str, Callable[[], IO[bytes]]] = field(default_factory=dict)
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
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            tree = _FolderTree(path.parent, found.problems, only=path.name)
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
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        found.problems.append((str(path), f"not a readable ZIP archive ({err})"))
        return
    found._closers.append(archive.close)
    tree = _ZipTree(path, archive)
    found.problems.extend(tree.refused_others)
    found.candidates.extend(_candidates(tree, found.problems))


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
        except (OSError, zipfile.BadZipFile) as err:
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


_OUTSIDE = "skipped: a link to somewhere outside the folder being imported"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def open_local(path: Path) -> IO[bytes]:
    """A file of a folder being imported, for reading; never through a link (one put in its
    place after the walk is refused, not followed)."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


class _ZipTree(_Tree):
    source = "zip"

    def __init__(self, path: Path, archive: zipfile.ZipFile):
        self.path = path
        self.archive = archive
        self._infos: dict[PurePosixPath, zipfile.ZipInfo] = {}
        self._refused: dict[PurePosixPath, str] = {}
        self.refused_others: list[tuple[str, str]] = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = PurePosixPath(info.filename.replace("\\", "/"))
            why = _unsafe_entry(info)
            if why and name.suffix.lower() not in VIDEO_SUFFIXES:
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
        return f"{self.path}!/{name}"

    def refused(self, name: PurePosixPath) -> str | None:
        return self._refused.get(name)


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
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    if getattr(tree, "only", None):
        videos = [f for f in videos if f.name == tree.only]
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
