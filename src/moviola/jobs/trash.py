"""The trash: a deleted video waits here, restorable, for `trash_days`; then it is purged.

Deleting (`queue.delete`) sets `deleted_at`: the video is gone at once from the library and
the API, but its row and files are kept, so restoring it (clearing `deleted_at`) brings it back
exactly — its files, its place in the lineage, its share links. Purging sets `purged_at`,
recorded before the files go, so a crash in between leaves a folder the sweeper removes and
never a restorable row whose files are gone. "Delete forever" purges one video at once; the
sweeper purges every video that has been in the trash longer than `trash_days`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.errors import NotFoundError
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import Video, VideoStatus

PAGE_SIZE = 60
DAY_S = 24 * 3600.0


@dataclass
class TrashPage:
    videos: list[Video]
    next_before: float | None  # the `before` of the next page (a `deleted_at`); None: the last


class Trash:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.keep_s = settings.trash_days * DAY_S

    def purges_at(self, video: Video) -> float:
        """When the sweeper purges `video` (trashed) for good."""
        return (video.deleted_at or 0.0) + self.keep_s

    def page(
        self, owner: str | None, *, before: float | None = None, limit: int = PAGE_SIZE
    ) -> TrashPage:
        """The owner's trash, the most recently deleted first."""
        query = _trashed(select(Video), owner)
        if before is not None:
            query = query.where(Video.deleted_at < before)
        query = query.order_by(Video.deleted_at.desc(), Video.seq.desc()).limit(limit + 1)
        with self.sessions() as session:
            rows = list(session.execute(query).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return TrashPage(rows, rows[-1].deleted_at if more and rows else None)

    def count(self, owner: str | None) -> int:
        with self.sessions() as session:
            query = _trashed(select(func.count()).select_from(Video), owner)
            return int(session.execute(query).scalar_one())

    def get(self, owner: str | None, video_id: str) -> Video:
        """A video in the owner's trash (not yet purged), or 404."""
        with self.sessions() as session:
            video = session.execute(_trashed(select(Video), owner).where(Video.id == video_id))
            found = video.scalar()
        if found is None:
            raise NotFoundError(f"no video with id {video_id!r} in the trash", param="video_id")
        return found

    def thumbnail(self, owner: str | None, video_id: str) -> Path:
        """The thumbnail of a trashed video, for the trash page."""
        entry = (self.get(owner, video_id).files or {}).get("thumbnail")
        if not entry or not Path(entry["path"]).is_file():
            raise NotFoundError(f"video {video_id} has no thumbnail", param="video_id")
        return Path(entry["path"])

    def restore(self, owner: str | None, video_id: str) -> Video:
        """Out of the trash, as it was; of simultaneous restores (or a restore and a purge),
        one wins and the others find nothing."""
        with self.sessions.begin() as session:
            restored = session.execute(
                _trashed(update(Video), owner)
                .where(Video.id == video_id)
                .values(deleted_at=None)
                .returning(Video.id)
            ).scalar()
            if restored is None:
                raise NotFoundError(f"no video with id {video_id!r} in the trash", param="video_id")
            self._audit(session, owner, "restore", video_id)
            video = session.get(Video, video_id)
            assert video is not None
            session.expunge(video)
        return video

    def purge(self, owner: str | None, video_id: str) -> None:
        """Delete forever: the row is marked purged (kept, so that ids, cursors and the audit
        log still make sense), then its folder goes — at once, or, for a job its worker has
        not let go of yet, when the worker stops (`JobRunner.discard`) or the sweeper passes."""
        with self.sessions.begin() as session:
            purged = session.execute(
                _trashed(update(Video), owner)
                .where(Video.id == video_id)
                .values(purged_at=time.time())
                .returning(Video.status)
            ).scalar()
            if purged is None:
                raise NotFoundError(f"no video with id {video_id!r} in the trash", param="video_id")
            self._audit(session, owner, "purge", video_id)
        if purged is not VideoStatus.IN_PROGRESS:
            self.blobs.remove(video_id)

    def purge_due(self, now: float) -> int:
        """Mark purged every video in the trash longer than `trash_days` (whose worker, if it
        had one, has let it go); the sweeper then removes their folders. How many."""
        with self.sessions.begin() as session:
            done = session.execute(
                update(Video)
                .where(
                    Video.deleted_at <= now - self.keep_s,
                    Video.purged_at.is_(None),
                    Video.status != VideoStatus.IN_PROGRESS,
                )
                .values(purged_at=now)
                .returning(Video.id)
            )
            return len(done.all())

    def _audit(self, session: Session, owner: str | None, action: str, video_id: str) -> None:
        if self.settings.audit:
            audit.add(session, actor=owner, action=action, video_id=video_id)


def _trashed(query: Any, owner: str | None) -> Any:
    """`query` narrowed to the owner's videos in the trash."""
    return query.where(
        Video.owner.is_(None) if owner is None else Video.owner == owner,
        Video.deleted_at.is_not(None),
        Video.purged_at.is_(None),
    )
