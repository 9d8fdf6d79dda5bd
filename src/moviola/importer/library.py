"""Writing imported videos into the library: files first, then the row, each exactly once.

Order is what makes an import safe to kill at any moment. A video's bytes are streamed to a
staging file (or hashed in place, for a plain file), recognised by their SHA-256 if the library
already holds them, then written into the video's blob folder atomically together with its
thumbnail and spritesheet; only then is its row inserted, in one transaction. A crash before the
row leaves a folder with a `.importing` marker and no row: the next run removes it (or rewrites
it, under the same id) — no reader ever sees it, since only a row makes a video visible.

A video's id is a function of what it is: the id it had in a Moviola export, when that id is
free (so an export comes back under its own ids), else one derived from the owner and the bytes'
hash. A run that is started again picks the same ids, and the database's primary key
stops two runs from adding one video twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.errors import InvalidRequestError, MediaError, MoviolaError
from moviola.importer import manifest
from moviola.importer.container import Container, read_container
from moviola.importer.metadata import container_tags, credentials_hints, iso
from moviola.importer.previews import write_previews
from moviola.importer.sources import Candidate
from moviola.store.blobs import Blobs
from moviola.store.models import ApiKey, Video

log = logging.getLogger("moviola.importer")

MARKER = ".importing"  # in a blob folder whose row is not written yet; holds the writer's pid
STAGING_PREFIX = ".import-"
_CHUNK = 1 << 20
_MOVIOLA_ID = re.compile(r"video_[0-9a-f]{32}")
_IMAGE_TYPES = {"WEBP": (".webp", "image/webp"), "JPEG": (".jpg", "image/jpeg")}
_IMAGE_TYPES["PNG"] = (".png", "image/png")
# Row column → the origin field holding the parent's id where the video came from.
_LINKS = (("remixed_from_video_id", "remixed_from"), ("source_video_id", "source_video"))


@dataclass
class Outcome:
    """What happened to one candidate; `status` is imported, duplicate, would_import, skipped
    or failed."""

    location: str
    status: str
    reason: str | None = None
    video_id: str | None = None
    original_id: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    found: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, {})}


class Library:
    """The library one import writes into: a database and its blob folder, for one owner."""

    def __init__(self, settings: Settings, *, owner: str | None = None, dry_run: bool = False):
        from moviola.store import db

        self.settings = settings
        self.owner = owner
        self.dry_run = dry_run
        self.blobs = Blobs(settings.blobs_path)
        self.sessions: sessionmaker[Session] | None = None
        self._engine = None
        exists = settings.database_url is not None or (settings.data_dir / "moviola.db").exists()
        if dry_run and not exists:
            pass  # an empty library: nothing to compare with, and nothing may be created
        else:
            if not dry_run:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._engine = db.connect(settings.db_url)
            if not dry_run:
                db.migrate(self._engine)
            self.sessions = db.sessions(self._engine)
        if owner is not None:
            self._check_owner(owner)
        self._staging: Path | None = None

    def close(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- recovery --------------------------------------------------------------------------

    def recover(self) -> int:
        """Remove what an import that was killed left behind: staging files, and blob folders
        written for a row that never came. Returns how many were removed."""
        if self.dry_run or not self.blobs.root.is_dir():
            return 0
        removed = 0
        for path in self.blobs.root.iterdir():
            writer = path.name[len(STAGING_PREFIX) :]
            if path.name.startswith(STAGING_PREFIX) and not _alive(writer):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
                continue
            marker = path / MARKER
            if not marker.is_file() or _alive(_read_quietly(marker)):
                continue
            if self._row(path.name) is not None:
                marker.unlink(missing_ok=True)  # the row made it: only the marker was left
            else:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed

    # --- importing ---------------------------------------------------------------------------

    def known(self, candidate: Candidate) -> Outcome | None:
        """A duplicate recognised without reading the bytes (a video from a server imported
        before, under the same server and id)."""
        key = _origin_key(candidate)
        if key is None or self.sessions is None:
            return None
        with self.sessions() as session:
            row = session.execute(
                select(Video).where(
                    self._mine(),
                    Video.deleted_at.is_(None),
                    Video.origin["key"].as_string() == key,
                )
            ).scalar()
        if row is None:
            return None
        return Outcome(
            candidate.location,
            "duplicate",
            f"already in the library as {row.id}",
            video_id=row.id,
            original_id=candidate.metadata.get("original_id"),
            sha256=row.content_sha256,
        )

    def bring_in(
        self, candidate: Candidate, on_bytes: Callable[[int], None] | None = None
    ) -> Outcome:
        """Import one candidate; never raises for a problem with the candidate itself."""
        outcome = Outcome(
            candidate.location, "failed", original_id=candidate.metadata.get("original_id")
        )
        if candidate.refused:
            outcome.reason = candidate.refused
            return outcome
        known = self.known(candidate)
        if known is not None:
            return known
        if self.dry_run and candidate.local_path is None and candidate.source == "api":
            outcome.status, outcome.bytes = "would_import", candidate.size
            outcome.found = dict(candidate.metadata.found)
            return outcome
        staged: Path | None = None
        try:
            if candidate.local_path is not None:
                source = candidate.local_path
                sha, size = _hash_file(source, on_bytes)
            elif self.dry_run:
                return self._dry_stream(candidate, outcome, on_bytes)
            else:
                staged = self._stage(candidate, on_bytes)
                source = staged
                sha, size = _hash_file(staged)
            outcome.sha256, outcome.bytes = sha, size
            expected = (candidate.export_entry or {}).get("sha256")
            if expected and expected != sha:
                raise MediaError("its bytes do not match the SHA-256 in the export's manifest")
            duplicate = self._duplicate(sha, candidate)
            if duplicate is not None:
                outcome.status, outcome.video_id = "duplicate", duplicate
                outcome.reason = f"already in the library as {duplicate}"
                return outcome
            info = media.probe(source)
            container = read_container(source)
            if self.dry_run:
                outcome.status = "would_import"
                outcome.found = dict(candidate.metadata.found)
                return outcome
            video_id = self._write(candidate, source, staged, sha, size, info, container)
            outcome.status, outcome.video_id = "imported", video_id
            outcome.found = dict(candidate.metadata.found)
            return outcome
        except _Duplicate as dup:
            outcome.status, outcome.video_id = "duplicate", dup.video_id
            outcome.reason = f"already in the library as {dup.video_id}"
            return outcome
        except MoviolaError as err:
            outcome.reason = _without(err.message, candidate)
            return outcome
        except (OSError, ValueError, EOFError) as err:
            outcome.reason = f"could not read it ({type(err).__name__}: {err})"
            return outcome
        except Exception as err:  # zipfile.BadZipFile, a server gone mid-download …
            log.debug("importing %s failed", candidate.location, exc_info=True)
            outcome.reason = f"{type(err).__name__}: {err}"
            return outcome
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)

    def link_lineage(self) -> tuple[int, int]:
        """Point imported remixes and edits at their parents' ids in this library, whatever the
        order they arrived in. Returns (linked, parents not in the library)."""
        if self.sessions is None or self.dry_run:
            return 0, 0
        with self.sessions() as session:
            rows = list(session.execute(select(Video).where(self._mine())).scalars())
        by_original: dict[str, str] = {}
        for row in rows:
            if row.deleted_at is None:
                by_original.setdefault(row.id, row.id)
        for row in rows:
            original = (row.origin or {}).get("original_id")
            if row.deleted_at is None and original:
                by_original[str(original)] = row.id
        linked = missing = 0
        for row in rows:
            origin = row.origin or {}
            if row.kind != "import" or row.deleted_at is not None:
                continue
            updates = {}
            for column, key in _LINKS:
                parent = origin.get(key)
                if not parent:
                    continue
                target = by_original.get(str(parent))
                if target is None:
                    missing += getattr(row, column) is None
                elif getattr(row, column) != target:
                    updates[column] = target
            if updates:
                with self.sessions.begin() as session:
                    current = session.get(Video, row.id)
                    for column, value in updates.items():
                        setattr(current, column, value)
                linked += 1
        return linked, missing

    # --- internals ---------------------------------------------------------------------------

    def _mine(self) -> Any:
        return Video.owner.is_(None) if self.owner is None else Video.owner == self.owner

    def _check_owner(self, owner: str) -> None:
        key = None
        if self.sessions is not None:
            with self.sessions() as session:
                key = session.get(ApiKey, owner)
        if key is None or key.revoked_at is not None:
            raise InvalidRequestError(
                f"no live API key with id {owner!r} (see `moviola keys list`)", param="owner"
            )

    def _row(self, video_id: str) -> Video | None:
        if self.sessions is None:
            return None
        with self.sessions() as session:
            return session.get(Video, video_id)

    def _duplicate(self, sha: str, candidate: Candidate) -> str | None:
        if self.sessions is None:
            return None
        with self.sessions() as session:
            row = session.execute(
                select(Video.id)
                .where(self._mine(), Video.deleted_at.is_(None), Video.content_sha256 == sha)
                .limit(1)
            ).scalar()
            if row is not None:
                return row
            # A rendered video has no content hash in its row, only in its files: an export of
            # this very library coming back is recognised by its ids.
            original = candidate.metadata.get("original_id")
            if original and _MOVIOLA_ID.fullmatch(original):
                same = session.get(Video, original)
                if (
                    same is not None
                    and same.deleted_at is None
                    and same.owner == self.owner
                    and (same.files or {}).get("video", {}).get("sha256") == sha
                ):
                    return same.id
        return None

    def _stage(self, candidate: Candidate, on_bytes: Any) -> Path:
        if self._staging is None:
            self._staging = self.blobs.root / f"{STAGING_PREFIX}{os.getpid()}"
            self._staging.mkdir(parents=True, exist_ok=True)
        target = self._staging / f"{hashlib.sha256(candidate.location.encode()).hexdigest()}.part"
        with candidate.open() as stream, open(target, "wb") as out:
            _copy(stream, out, on_bytes)
            out.flush()
            os.fsync(out.fileno())
        return target

    def _dry_stream(self, candidate: Candidate, outcome: Outcome, on_bytes: Any) -> Outcome:
        """A dry run of an archive entry: hash and probe it straight from the archive."""
        digest = hashlib.sha256()
        size = 0
        with candidate.open() as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        outcome.sha256, outcome.bytes = digest.hexdigest(), size
        duplicate = self._duplicate(outcome.sha256, candidate)
        if duplicate is not None:
            outcome.status, outcome.video_id = "duplicate", duplicate
            outcome.reason = f"already in the library as {duplicate}"
            return outcome
        with candidate.open() as stream:
            media.probe(io.BytesIO(stream.read()) if not stream.seekable() else stream)
        outcome.status = "would_import"
        outcome.found = dict(candidate.metadata.found)
        return outcome

    def _choose_id(self, sha: str, candidate: Candidate) -> str:
        # An export coming back keeps its ids; a video from elsewhere gets one of this library's
        # (its id there is kept in `origin`, and lineage is re-linked to the new ids).
        original = candidate.metadata.get("original_id")
        if (
            candidate.source == "export"
            and original
            and _MOVIOLA_ID.fullmatch(original)
            and self._row(original) is None
        ):
            return original
        for attempt in range(1000):
            seed = f"{self.owner or ''}:{sha}" + (f":{attempt}" if attempt else "")
            video_id = "video_" + hashlib.sha256(seed.encode()).hexdigest()[:32]
            if self._row(video_id) is None:
                return video_id
        raise RuntimeError("no free id for this video")  # a thousand deleted copies of it

    def _write(
        self,
        candidate: Candidate,
        source: Path,
        staged: Path | None,
        sha: str,
        size: int,
        info: media.VideoInfo,
        container: Container,
    ) -> str:
        video_id = self._choose_id(sha, candidate)
        folder = self.blobs.folder(video_id)
        folder.mkdir(parents=True, exist_ok=True)
        media.atomic_write_bytes(folder / MARKER, str(os.getpid()).encode())

        video_path = folder / f"video{container.suffix}"
        if staged is not None:
            os.replace(staged, video_path)
        else:
            with atomic_write_checked(video_path, sha) as out, open(source, "rb") as stream:
                _copy(stream, out)
        files = {"video": _record(video_path, container.mime, sha)}
        files.update(self._previews(candidate, folder, video_path, info))

        recovered = candidate.metadata
        container_tags(container.tags, recovered)
        credentials = _credentials(video_path)
        credentials_hints(credentials, recovered)
        row = self._row_for(video_id, candidate, files, sha, size, info, container, credentials)
        try:
            with self.sessions.begin() as session:  # type: ignore[union-attr]
                session.add(row)
        except IntegrityError:
            # Another import added it meanwhile: the files just written are byte-identical.
            raise _Duplicate(video_id) from None
        (folder / MARKER).unlink(missing_ok=True)
        return video_id

    def _previews(
        self, candidate: Candidate, folder: Path, video: Path, info: media.VideoInfo
    ) -> dict[str, dict[str, Any]]:
        """The thumbnail and spritesheet: the source's own, byte for byte, else made here."""
        from PIL import Image

        files: dict[str, dict[str, Any]] = {}
        for variant, opener in candidate.previews.items():
            try:
                with opener() as stream:
                    data = stream.read()
                with Image.open(io.BytesIO(data)) as image:
                    kind = image.format
                    image.verify()
            except Exception:  # missing or broken: made below instead
                log.debug("no usable %s for %s", variant, candidate.location, exc_info=True)
                continue
            if kind not in _IMAGE_TYPES:
                continue
            suffix, mime = _IMAGE_TYPES[kind]
            path = folder / f"video{manifest.PREVIEW_SUFFIX[variant]}{suffix}"
            media.atomic_write_bytes(path, data)
            files[variant] = _record(path, mime)
        missing = [v for v in ("thumbnail", "spritesheet") if v not in files]
        if missing:
            thumbnail, sprite = folder / "video.thumb.webp", folder / "video.sprite.jpg"
            write_previews(video, info, thumbnail, sprite)
            made = {"thumbnail": (thumbnail, "image/webp"), "spritesheet": (sprite, "image/jpeg")}
            for variant in missing:
                files[variant] = _record(made[variant][0], made[variant][1])
        return files

    def _row_for(
        self,
        video_id: str,
        candidate: Candidate,
        files: dict[str, Any],
        sha: str,
        size: int,
        info: media.VideoInfo,
        container: Container,
        credentials: dict[str, Any] | None,
    ) -> Video:
        recovered = candidate.metadata
        now = time.time()
        earlier = manifest.restored(candidate.export_entry) if candidate.export_entry else {}
        result = {
            **(earlier.get("result") or {}),
            "render_size": [info.width, info.height],
            "frames": info.frames,
            "fps": float(info.fps),
            "duration": info.duration,
            "container": container.kind,
            "codec": info.codec,
        }
        given_size = recovered.get("size")
        size_text = (
            given_size
            if given_size and re.fullmatch(r"\d+x\d+", given_size)
            else f"{info.width}x{info.height}"
        )
        origin = {
            "source": candidate.source,
            "location": candidate.location,
            "original_id": recovered.get("original_id"),
            "remixed_from": recovered.get("remixed_from"),
            "source_video": recovered.get("source_video"),
            "found": dict(recovered.found),
            "imported_at": iso(now),
            "bytes": size,
        }
        for name in ("title", "generator"):
            if recovered.get(name):
                origin[name] = recovered.get(name)
        if recovered.extra:
            origin["extra"] = recovered.extra
        key = _origin_key(candidate)
        if key:
            origin["key"] = key
        if earlier.get("origin"):
            origin["earlier"] = earlier["origin"]
        if earlier.get("completed_at"):
            origin["completed_at"] = iso(earlier["completed_at"])
        if earlier.get("kind"):
            origin["kind"] = earlier["kind"]
        origin = {k: v for k, v in origin.items() if v is not None}
        model = recovered.get("model") or "unknown"
        return Video(
            id=video_id,
            seq=time.time_ns(),
            owner=self.owner,
            kind="import",
            status="completed",
            progress=100,
            stage="done",
            model=model[:200],
            engine_model=(earlier.get("engine_model") or recovered.get("engine_model") or model)[
                :500
            ],
            prompt=recovered.get("prompt"),
            seconds=recovered.get("seconds") or _format_seconds(info.duration),
            size=size_text,
            params=earlier.get("params") or {},
            created_at=earlier.get("created_at") or recovered.get("created_at") or now,
            # When it arrived here, not when it was first made (that is in `origin`): a
            # retention policy counts from this, so an old video is not expired on arrival.
            completed_at=now,
            attempts=0,
            max_attempts=0,
            result=result,
            files=files,
            content_sha256=sha,
            origin=origin,
            credentials=credentials,
        )


class _Duplicate(Exception):
    def __init__(self, video_id: str):
        self.video_id = video_id


@contextlib.contextmanager
def atomic_write_checked(path: Path, sha: str) -> Any:
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


def _copy(stream: IO[bytes], out: Any, on_bytes: Any = None) -> None:
    while chunk := stream.read(_CHUNK):
        out.write(chunk)
        if on_bytes:
            on_bytes(len(chunk))


def _hash_file(path: Path, on_bytes: Any = None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return digest.hexdigest(), size


def _record(path: Path, mime: str, sha: str | None = None) -> dict[str, Any]:
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha or media.sha256_file(path),
        "mime": mime,
    }


def _credentials(path: Path) -> dict[str, Any] | None:
    """The file's own content credentials, exactly as read: an imported video is never
    re-signed, so what it says about its making stays what its maker said."""
    from moviola.media.provenance import read_credentials

    try:
        return read_credentials(path)
    except Exception as err:  # an unreadable manifest must not cost the video itself
        log.warning("could not read the content credentials of %s: %s", path, err)
        return {"state": "invalid", "errors": [f"{type(err).__name__}: {err}"]}


def _origin_key(candidate: Candidate) -> str | None:
    original = candidate.metadata.get("original_id")
    if candidate.source != "api" or not original:
        return None
    return f"{candidate.location.split('/videos/')[0]}#{original}"


def _format_seconds(seconds: float) -> str:
    return str(round(seconds)) if abs(seconds - round(seconds)) < 0.05 else f"{seconds:.2f}"


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_quietly(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _without(message: str, candidate: Candidate) -> str:
    """A media error starts with the path it read (the source, or its staging copy); the report
    already says which file it was, by the name the person knows."""
    prefix = f"{candidate.local_path}: " if candidate.local_path else None
    if prefix and message.startswith(prefix):
        return message[len(prefix) :]
    return re.sub(r"^\S*\.import-\d+/\S+\.part: ", "", message)
