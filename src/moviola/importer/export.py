"""`moviola export`: the library (or part of it) as files anyone can keep, and import back.

The destination is a folder or a `.zip`: each video's own bytes under `videos/`, with its
thumbnail and spritesheet, and a `manifest.json` (see `manifest.py`) with everything the library
knows. Files are written atomically and the manifest last, so a destination with a manifest is
complete; a `.zip` is written under a temporary name and renamed when whole.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from moviola import __version__, media
from moviola.config import Settings
from moviola.errors import InvalidRequestError
from moviola.importer import manifest
from moviola.media import formats
from moviola.store.models import Video, VideoStatus


@dataclass
class Filters:
    """Which videos to export; every filter given must match."""

    owner: str | None = None
    all_owners: bool = False
    ids: list[str] = field(default_factory=list)
    since: float | None = None
    until: float | None = None
    model: str | None = None
    search: str | None = None  # a piece of the prompt, any case

    def query(self) -> Any:
        query = select(Video).where(
            Video.status == VideoStatus.COMPLETED, Video.deleted_at.is_(None)
        )
        if not self.all_owners:
            query = query.where(
                Video.owner.is_(None) if self.owner is None else Video.owner == self.owner
            )
        if self.ids:
            query = query.where(Video.id.in_(self.ids))
        if self.since is not None:
            query = query.where(Video.created_at >= self.since)
        if self.until is not None:
            query = query.where(Video.created_at < self.until)
        if self.model:
            query = query.where(Video.model == self.model)
        if self.search:
            query = query.where(Video.prompt.ilike(f"%{self.search}%"))
        return query.order_by(Video.seq)


@dataclass
class ExportSummary:
    destination: Path
    videos: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video id, why)


def selected(settings: Settings, filters: Filters) -> list[Video]:
    from moviola.store import db

    if settings.database_url is None and not (settings.data_dir / "moviola.db").exists():
        return []
    engine = db.connect(settings.db_url)
    try:
        with db.sessions(engine)() as session:
            return list(session.execute(filters.query()).scalars())
    finally:
        engine.dispose()


def export(
    rows: list[Video],
    destination: Path,
    *,
    on_video: Callable[[Video, int], None] | None = None,
) -> ExportSummary:
    """Write `rows` to `destination` (a folder, or a file ending in `.zip`)."""
    destination = Path(destination)
    summary = ExportSummary(destination)
    as_zip = destination.suffix.lower() == ".zip"
    if as_zip:
        if destination.is_dir():
            raise InvalidRequestError(f"{destination} is a folder, not a .zip", param="dest")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with (
            media.atomic_write(destination) as tmp,
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
        ):
            _write_all(rows, _ZipWriter(archive), summary, on_video)
    else:
        if destination.exists() and not destination.is_dir():
            raise InvalidRequestError(f"{destination} exists and is not a folder", param="dest")
        destination.mkdir(parents=True, exist_ok=True)
        _write_all(rows, _FolderWriter(destination), summary, on_video)
    return summary


def _write_all(
    rows: list[Video],
    writer: _FolderWriter | _ZipWriter,
    summary: ExportSummary,
    on_video: Callable[[Video, int], None] | None,
) -> None:
    entries = []
    for row in rows:
        files: dict[str, dict[str, Any]] = {}
        sent = 0
        for variant, described in (row.files or {}).items():
            path = Path(described["path"])
            if described.get("expired_at") is not None or not path.is_file():
                continue
            mime = described.get("mime") or _default_mime(variant)
            suffix = formats.suffix_for(mime, path.suffix)
            name = f"{manifest.VIDEO_FOLDER}/{row.id}"
            name += suffix if variant == "video" else f"{manifest.PREVIEW_SUFFIX[variant]}{suffix}"
            writer.add(path, name)
            sent += described.get("bytes") or path.stat().st_size
            files[variant] = {
                "file": name,
                "bytes": described.get("bytes") or path.stat().st_size,
                "sha256": described.get("sha256") or media.sha256_file(path),
                "mime": mime,
            }
        if "video" not in files:
            summary.skipped.append((row.id, "its video file has expired or is missing"))
            continue
        entries.append(manifest.entry(row, files))
        summary.videos += 1
        summary.bytes += sent
        if on_video is not None:
            on_video(row, sent)
    document = manifest.document(entries, time.time(), f"Moviola {__version__}")
    writer.add_bytes(json.dumps(document, indent=2, ensure_ascii=False).encode(), manifest.NAME)


def _default_mime(variant: str) -> str:
    from moviola.store.blobs import VARIANTS

    return VARIANTS[variant][1]


class _FolderWriter:
    def __init__(self, root: Path):
        self.root = root

    def add(self, source: Path, name: str) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with media.atomic_write(target) as tmp:
            shutil.copyfile(source, tmp)

    def add_bytes(self, data: bytes, name: str) -> None:
        media.atomic_write_bytes(self.root / name, data)


class _ZipWriter:
    # Stored, not deflated: videos and images are compressed already, and a stored entry can be
    # streamed back out at disk speed.
    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive

    def add(self, source: Path, name: str) -> None:
        self.archive.write(source, name)

    def add_bytes(self, data: bytes, name: str) -> None:
        self.archive.writestr(name, data)
