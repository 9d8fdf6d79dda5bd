"""Removing files nobody may read any more: expired videos and deleted ones.

Retention (`retention_hours` > 0): a completed video expires `retention_hours` after it
completed. Its row stays — retrieve still answers, with `expires_at` — but its folder is
removed and each entry of its `files` gets an `expired_at`; the paths are kept, so `content`
finds no file and answers that the video has expired.

Deleting is immediate for readers, but the API removes files only after marking the row, and
a job that was running removes its own when it stops; a crash in between would leave a folder
behind. The sweeper removes the folder of every deleted video whose job is not in progress.

The pass is driven by the folders that exist, so it is idempotent and its cost follows what is
on disk, not the size of the history. A folder without a row is left alone: the API writes an
upload before the row, and a database that does not know a folder must never cost its files.
Expired and deleted rows are never touched by workers, so sweeping runs safely beside them.

Each pass also applies the audit log's retention (`audit_retention_days` > 0).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.jobs.periodic import Periodic
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import Video

log = logging.getLogger("moviola.sweeper")

CHUNK = 500  # ids per query, well under every database's parameter limit


class Sweeper(Periodic):
    name = "sweeper"

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: Blobs,
        *,
        interval_s: float = 60.0,
    ):
        self.retention_s = settings.retention_hours * 3600
        self.audit_retention_days = settings.audit_retention_days
        self.sessions = sessions
        self.blobs = blobs
        super().__init__(interval_s)

    def run_pass(self) -> int:
        pruned = audit.prune(self.sessions, self.audit_retention_days)
        if pruned:
            log.info("removed %d audit entries past their retention", pruned)
        return self.sweep()

    def sweep(self) -> int:
        """One pass; returns how many video folders were removed."""
        now = time.time()
        if self.retention_s > 0:
            self._set_expiry()
        folders = self._folders()
        removed = 0
        for start in range(0, len(folders), CHUNK):
            with self.sessions() as session:
                rows = list(
                    session.execute(
                        select(Video).where(Video.id.in_(folders[start : start + CHUNK]))
                    ).scalars()
                )
            for video in rows:
                if video.deleted_at is not None and video.status != "in_progress":
                    self.blobs.remove(video.id)
                    log.info("removed the files of deleted video %s", video.id)
                elif self._expired(video, now):
                    self._mark_expired(video, now)
                    self.blobs.remove(video.id)
                    log.info("removed the files of expired video %s", video.id)
                else:
                    continue
                removed += 1
        return removed

    # --- internals ---------------------------------------------------------------------------

    def _set_expiry(self) -> None:
        """Give every completed video that lacks one its expiry time."""
        with self.sessions.begin() as session:
            session.execute(
                update(Video)
                .where(
                    Video.status == "completed",
                    Video.expires_at.is_(None),
                    Video.completed_at.is_not(None),
                )
                .values(expires_at=Video.completed_at + self.retention_s)
            )

    def _expired(self, video: Video, now: float) -> bool:
        return (
            self.retention_s > 0
            and video.status == "completed"
            and video.expires_at is not None
            and video.expires_at <= now
        )

    def _mark_expired(self, video: Video, now: float) -> None:
        """Record the expiry before removing the folder: a crash in between leaves a folder
        that the next pass removes, never a row that claims files which are gone."""
        files = {
            variant: {**entry, "expired_at": entry.get("expired_at", now)}
            for variant, entry in (video.files or {}).items()
        }
        with self.sessions.begin() as session:
            session.execute(update(Video).where(Video.id == video.id).values(files=files))

    def _folders(self) -> list[str]:
        if not self.blobs.root.is_dir():
            return []
        return [
            path.name
            for path in self.blobs.root.iterdir()
            if path.is_dir() and path.name.replace("_", "").isalnum()
        ]
