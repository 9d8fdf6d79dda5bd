"""Writing imported videos into the library: files first, then the row, each exactly once.

Order is what makes an import safe to kill at any moment. A video's bytes are streamed to a
staging file (or hashed in place, for a plain file) and recognised by their SHA-256 if the
library already holds them. Its folder is then put together inside this import's staging folder
(the video, its thumbnail and spritesheet, and a `.importing` marker naming this import) and
renamed into place in one step, so no video's existing files are ever overwritten; only then is
its row inserted, with its audit entry, in one transaction, and the marker removed. A crash
before the row leaves a marked folder that no reader sees (only a row makes a video visible) and
that a later run removes once this import is known to be over (see `staging`).

A video's id is a function of what it is: the id it had in a Moviola export, when that id is
free (so an export comes back under its own ids), else one derived from the owner and the bytes'
hash. A run that is started again picks the same ids, and the database's primary key
stops two runs from adding one video twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.errors import InvalidRequestError, MediaError, MoviolaError
from moviola.importer import lineage, manifest, rows, staging
from moviola.importer.container import Container, read_container
from moviola.importer.metadata import container_tags, credentials_hints
from moviola.importer.previews import preview_image, write_previews
from moviola.importer.sources import Candidate, Stream, open_local
from moviola.media import formats
from moviola.store.blobs import Blobs
from moviola.store.models import ApiKey, Video

log = logging.getLogger("moviola.importer")

MARKER = staging.MARKER
_MOVIOLA_ID = re.compile(r"video_[0-9a-f]{32}")


@dataclass
class Outcome:
    """What happened to one candidate; `status` is imported, duplicate, would_import, skipped
    (nothing to import: a video still rendering on its server) or failed."""

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
        self._staging = staging.Staging(self.blobs.root)

    def close(self) -> None:
        self._staging.close()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> int:
        """Remove what imports that died left behind. Returns how many folders went."""
        if self.dry_run:
            return 0
        return staging.recover(self.blobs.root, lambda video_id: self._row(video_id) is not None)

    # --- importing ---------------------------------------------------------------------------

    def known(self, candidate: Candidate) -> Outcome | None:
        """A duplicate recognised without reading the bytes (a video from a server imported
        before, under the same server and id)."""
        key = rows.origin_key(candidate)
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
        if candidate.skipped:
            outcome.status, outcome.reason = "skipped", candidate.skipped
            return outcome
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
                sha = media.sha256_file(source, on_bytes)
                size = source.stat().st_size
            elif self.dry_run:
                return self._dry_stream(candidate, outcome, on_bytes)
            else:
                staged = source = self._stage(candidate, on_bytes)
                sha, size = media.sha256_file(staged), staged.stat().st_size
            outcome.sha256, outcome.bytes = sha, size
            expected = (candidate.export_entry or {}).get("sha256")
            if expected and expected != sha:
                raise MediaError("its bytes do not match the SHA-256 in the export's manifest")
            duplicate = self._duplicate(sha, candidate)
            if duplicate is not None:
                raise _Duplicate(duplicate)
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
            outcome.reason = dup.reason or f"already in the library as {dup.video_id}"
            return outcome
        except MoviolaError as err:
            outcome.reason = self._without(err.message, candidate)
            return outcome
        except (OSError, ValueError, EOFError) as err:
            outcome.reason = self._without(f"could not read it ({type(err).__name__}: {err})")
            return outcome
        except Exception as err:  # zipfile.BadZipFile, a server gone mid-download …
            log.debug("importing %s failed", candidate.location, exc_info=True)
            outcome.reason = self._without(f"{type(err).__name__}: {err}")
            return outcome
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)

    def link_lineage(self) -> lineage.Lineage:
        """Point imported remixes and edits at their parents' ids in this library, whatever the
        order they arrived in."""
        if self.sessions is None or self.dry_run:
            return lineage.Lineage()
        return lineage.link(self.sessions, self._mine())

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

    def _same(self, video_id: str, sha: str) -> bool:
        """Whether `video_id` is a live video of this owner with these very bytes."""
        row = self._row(video_id)
        return (
            row is not None
            and row.deleted_at is None
            and row.owner == self.owner
            and sha in (row.content_sha256, (row.files or {}).get("video", {}).get("sha256"))
        )

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
        # Rows written before renders recorded `content_sha256` have the hash only in their
        # files: an export of such a library coming back is recognised by its ids.
        original = candidate.metadata.get("original_id")
        if original and _MOVIOLA_ID.fullmatch(original) and self._same(original, sha):
            return original
        return None

    def _stage(self, candidate: Candidate, on_bytes: Any) -> Path:
        name = hashlib.sha256(candidate.location.encode()).hexdigest()
        target = self._staging.folder() / f"{name}.part"
        with _open(candidate) as stream, open(target, "wb") as out:
            staging.copy(stream, out, on_bytes)
            out.flush()
            os.fsync(out.fileno())
        return target

    def _dry_stream(self, candidate: Candidate, outcome: Outcome, on_bytes: Any) -> Outcome:
        """A dry run of an archive entry: hash and probe it straight from the archive."""
        digest = hashlib.sha256()
        with _open(candidate) as stream:
            outcome.bytes = staging.copy(stream, digest, on_bytes)
        outcome.sha256 = digest.hexdigest()
        duplicate = self._duplicate(outcome.sha256, candidate)
        if duplicate is not None:
            raise _Duplicate(duplicate)
        with _open(candidate) as stream:
            media.probe(io.BytesIO(stream.read()) if not stream.seekable() else stream)
        outcome.status = "would_import"
        outcome.found = dict(candidate.metadata.found)
        return outcome

    def _derived_id(self, sha: str) -> str:
        for attempt in range(1000):
            seed = f"{self.owner or ''}:{sha}" + (f":{attempt}" if attempt else "")
            video_id = "video_" + hashlib.sha256(seed.encode()).hexdigest()[:32]
            row = self._row(video_id)
            if row is None or self._same(video_id, sha):
                return video_id
        raise RuntimeError("no free id for this video")  # a thousand deleted copies of it

    def _exported_id(self, candidate: Candidate) -> str | None:
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
        return None

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
        # Everything is put together in this import's staging folder, previews included, so a
        # failure leaves nothing under a video's name and nothing to clean up but the staging.
        build = self._staging.folder() / "building"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        try:
            video_name = f"video{container.suffix}"
            if staged is not None:
                os.replace(staged, build / video_name)
            else:
                with staging.write_checked(build / video_name, sha) as out, open_local(source) as s:
                    staging.copy(s, out)
            previews = self._previews(candidate, build, build / video_name, info)
            credentials = _credentials(build / video_name)
            staging.mark(build, self._staging.who)
            folder, video_id = self._place(build, candidate, sha)
        finally:
            shutil.rmtree(build, ignore_errors=True)

        try:
            files = {"video": _record(folder / video_name, container.mime, sha)}
            files.update({v: _record(folder / name, mime) for v, (name, mime) in previews.items()})
            recovered = candidate.metadata
            container_tags(container.tags, recovered)
            credentials_hints(credentials, recovered)
            row = rows.build(
                video_id,
                candidate,
                owner=self.owner,
                files=files,
                sha=sha,
                size=size,
                info=info,
                container=container,
                credentials=credentials,
                max_prompt_chars=self.settings.max_prompt_chars,
            )
            self._commit(row, candidate, folder / video_name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # ours: the rename above made it
            raise
        (folder / MARKER).unlink(missing_ok=True)
        return video_id

    def _place(self, build: Path, candidate: Candidate, sha: str) -> tuple[Path, str]:
        """Rename `build` to its video's folder; never onto a folder that is already there."""
        exported, derived = self._exported_id(candidate), self._derived_id(sha)
        for video_id in dict.fromkeys(filter(None, (exported, derived))):
            folder = self.blobs.folder(video_id)
            if staging.move_into_place(build, folder):
                return folder, video_id
            if self._same(video_id, sha):
                raise _Duplicate(video_id)
            # Another file of the export claims the same id: this one gets an id of its own.
        writer = staging.read_marker(folder / MARKER)
        if writer is not None and not staging.gone(writer):
            # The same bytes, for the same owner: another import is bringing this video in.
            raise _Duplicate(video_id, f"being imported by another run as {video_id}")
        raise MediaError(
            f"an interrupted import left {video_id}'s folder behind; run the import again"
        )

    def _commit(self, row: Video, candidate: Candidate, video: Path) -> None:
        from moviola.store import audit

        try:
            with self.sessions.begin() as session:  # type: ignore[union-attr]
                # Another host's clean-up may have judged this import dead and removed its
                # folder: a row must never point at files that are not there.
                if not video.is_file():
                    raise MediaError("its folder was removed before its row could be written")
                session.add(row)
                if self.settings.audit:
                    detail = {"source": candidate.source, "location": candidate.location}
                    audit.add(
                        session,
                        actor=self.owner,
                        action="import",
                        video_id=row.id,
                        detail={**detail, "sha256": row.content_sha256},
                    )
        except IntegrityError:
            raise _Duplicate(row.id) from None

    def _previews(
        self, candidate: Candidate, folder: Path, video: Path, info: media.VideoInfo
    ) -> dict[str, tuple[str, str]]:
        """The thumbnail and spritesheet: the source's own, byte for byte, else made here.
        Returns variant → (file name in `folder`, media type)."""
        previews: dict[str, tuple[str, str]] = {}
        for variant, opener in candidate.previews.items():
            try:
                data, mime = preview_image(opener)
            except Exception:  # missing, broken or too large: made below instead
                log.debug("no usable %s for %s", variant, candidate.location, exc_info=True)
                continue
            name = f"video{manifest.PREVIEW_SUFFIX[variant]}{formats.suffix_for(mime)}"
            media.atomic_write_bytes(folder / name, data)
            previews[variant] = (name, mime)
        missing = [v for v in ("thumbnail", "spritesheet") if v not in previews]
        if missing:
            made = {
                "thumbnail": ("video.thumb.webp", "image/webp"),
                "spritesheet": ("video.sprite.jpg", "image/jpeg"),
            }
            thumbnail, sprite = (folder / made[v][0] for v in ("thumbnail", "spritesheet"))
            write_previews(video, info, thumbnail, sprite)
            previews.update({variant: made[variant] for variant in missing})
        return previews

    def _without(self, message: str, candidate: Candidate | None = None) -> str:
        """A reason without the paths of this library's files (the report is for people who
        may not see them), nor the source's own (the report names it already)."""
        if candidate is not None and candidate.local_path is not None:
            message = message.removeprefix(f"{candidate.local_path}: ")
        root = re.escape(str(self.blobs.root))
        message = re.sub(rf"^{root}/\S*: ", "", message)
        return re.sub(rf"{root}/\S*", "the library's copy", message)


class _Duplicate(Exception):
    def __init__(self, video_id: str, reason: str | None = None):
        self.video_id = video_id
        self.reason = reason


def _open(candidate: Candidate) -> Stream:
    """The candidate's bytes, for reading (a refused one has none to read)."""
    if candidate.open is None:
        raise ValueError(f"{candidate.location} cannot be read")
    return candidate.open()


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
        log.warning("could not read the content credentials of %s: %s", path.name, err)
        return {"state": "invalid", "errors": [f"{type(err).__name__}: {err}"]}
