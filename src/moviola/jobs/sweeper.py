"""Removing files nobody may read any more: expired videos, deleted ones, and what crashes
left behind.

Retention (`retention_hours` > 0): a completed video expires `retention_hours` after it
completed. Its row stays — retrieve still answers, with `expires_at` — but its folder is
removed and each entry of its `files` gets an `expired_at`; the paths are kept, so `content`
finds no file and answers that the video has expired.

A deleted video waits in the trash (`moviola.jobs.trash`) with its files for `trash_days`;
then each pass marks it purged and removes its folder. "Delete forever" marks the row first
too, and a job that was running removes its own files when it stops; a crash in between would
leave a folder behind. The sweeper removes the folder of every purged video whose job is not in
progress.

A render attempt writes into a sub-folder named after its lease owner. One that ended without
cleaning up (its worker killed) leaves a whole video there; once the row is no longer in
progress under that owner, the sweeper removes the sub-folder — unless the row's `files` point
into it, or it holds a blocked video's files, kept for the admins.

The API writes a request's upload in the transaction that inserts its row, and removes it if
that fails, so a folder without a row is what a crash in between left: once nothing in it has
changed for `ORPHAN_AFTER_S` (far longer than any request takes), it is removed. Only such a
folder — uploads and nothing else — is: a database that does not know a folder holding
anything more (the wrong database, an older backup) must never cost its files.

A character's folder (`char_…`: its clip and reference frames) is written before its row is
inserted; a crash in between leaves a folder no row names. Once nothing in it has changed for
`ORPHAN_AFTER_S`, and it holds nothing but what creating a character writes, it goes too.

The pass is driven by the folders that exist, so it is idempotent and its cost follows what is
on disk, not the size of the history. Expired and deleted rows are never touched by workers,
so sweeping runs safely beside them.

Each pass also applies the audit log's retention (`audit_retention_days` > 0).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.jobs import queue
from moviola.jobs.periodic import Periodic
from moviola.jobs.trash import Trash
from moviola.render.frame_check import BLOCKED
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import Character, Video, VideoStatus

log = logging.getLogger("moviola.sweeper")

CHUNK = 500  # ids per query, well under every database's parameter limit
ORPHAN_AFTER_S = 15 * 60.0  # far longer than writing an upload and inserting its row take
_CHARACTER = "char_"
_CHARACTER_FILES = ("character", "reference_")  # its clip and its frames (jobs.characters)


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
        self.trash = Trash(settings, sessions, blobs)
        super().__init__(interval_s)

    def run_pass(self) -> int:
        pruned = audit.prune(self.sessions, self.audit_retention_days)
        if pruned:
            log.info("removed %d audit entries past their retention", pruned)
        return self.sweep()

    def sweep(self) -> int:
        """One pass; returns how many folders were removed (video folders and attempts')."""
        now = time.time()
        if self.retention_s > 0:
            queue.set_expiry(self.sessions, self.retention_s)
        purged = self.trash.purge_due(now)
        if purged:
            log.info(
                "purged %d videos that were in the trash for %g days",
                purged,
                self.trash.keep_s / 86400,
            )
        folders = self._folders()
        removed = 0
        for start in range(0, len(folders), CHUNK):
            chunk = folders[start : start + CHUNK]
            # Listed before the rows are read: a folder seen here was made by a worker that
            # held the job by then, so a row read afterwards that is not in progress under
            # its name says that attempt is over. A worker claiming the job later makes a
            # folder this pass has not seen.
            attempts = {video_id: self._subfolders(video_id) for video_id in chunk}
            with self.sessions() as session:
                found = session.execute(select(Video).where(Video.id.in_(chunk))).scalars()
                rows = {video.id: video for video in found}
            for video_id in chunk:
                video = rows.get(video_id)
                if video is None:
                    if self._orphan(video_id, now):
                        self.blobs.remove(video_id)
                        log.info("removed %s, an upload whose row never came", video_id)
                        removed += 1
                elif video.purged_at is not None and video.status != VideoStatus.IN_PROGRESS:
                    self.blobs.remove(video_id)
                    log.info("removed the files of purged video %s", video_id)
                    removed += 1
                elif self._expired(video, now):
                    # Recorded first: a crash before the folder goes leaves a folder the next
                    # pass removes, never a row that claims files which are gone.
                    queue.mark_expired(self.sessions, video, now)
                    self.blobs.remove(video_id)
                    log.info("removed the files of expired video %s", video_id)
                    removed += 1
                else:
                    for folder in self._ended_attempts(video, attempts[video_id]):
                        shutil.rmtree(folder, ignore_errors=True)
                        log.info("removed %s/%s, an attempt that ended", video_id, folder.name)
                        removed += 1
        return removed + self._sweep_characters(now)

    def _sweep_characters(self, now: float) -> int:
        """Remove the folders of characters whose row never came."""
        folders = self._folders(_CHARACTER)
        removed = 0
        for start in range(0, len(folders), CHUNK):
            chunk = folders[start : start + CHUNK]
            with self.sessions() as session:
                found = set(
                    session.execute(select(Character.id).where(Character.id.in_(chunk))).scalars()
                )
            for character_id in chunk:
                if character_id not in found and self._orphan(character_id, now, _CHARACTER_FILES):
                    self.blobs.remove(character_id)
                    log.info("removed %s, a character whose row never came", character_id)
                    removed += 1
        return removed

    # --- internals ---------------------------------------------------------------------------

    def _expired(self, video: Video, now: float) -> bool:
        return (
            self.retention_s > 0
            and video.status == VideoStatus.COMPLETED
            and video.expires_at is not None
            and video.expires_at <= now
        )

    def _ended_attempts(self, video: Video, attempts: list[Path]) -> list[Path]:
        if video.error_code == BLOCKED:
            return []
        # Matched by name, not by whole path: a worker on another machine may reach the shared
        # blobs under another mount point, and a stored video's files must never go.
        used = {
            part
            for entry in (video.files or {}).values()
            for part in Path(entry.get("path", "")).parts
        }
        if video.status == VideoStatus.IN_PROGRESS and video.lease_owner is not None:
            used.add(video.lease_owner)
        return [folder for folder in attempts if folder.name not in used]

    def _orphan(self, video_id: str, now: float, kept: tuple[str, ...] = ("input",)) -> bool:
        """Whether a folder without a row holds nothing but uploads (files named `kept…`, and
        what writing one leaves, `.input…tmp`), none of them changed for `ORPHAN_AFTER_S`."""
        folder = self.blobs.folder(video_id)
        try:
            entries = list(folder.iterdir())
            if not all(e.is_file() and e.name.lstrip(".").startswith(kept) for e in entries):
                return False
            changed = max(path.stat().st_mtime for path in [folder, *entries])
        except OSError:  # removed meanwhile
            return False
        return now - changed > ORPHAN_AFTER_S

    def _subfolders(self, video_id: str) -> list[Path]:
        try:
            return [path for path in self.blobs.folder(video_id).iterdir() if path.is_dir()]
        except OSError:  # removed meanwhile
            return []

    def _folders(self, prefix: str = "video_") -> list[str]:
        if not self.blobs.root.is_dir():
            return []
        # One kind of id at a time: other folders here (imports' staging) are not ours.
        return [
            path.name
            for path in self.blobs.root.iterdir()
            if path.is_dir() and path.name.startswith(prefix) and path.name[len(prefix) :].isalnum()
        ]
