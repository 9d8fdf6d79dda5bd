"""The durable queue: jobs are rows, workers lease them, and nothing is lost on a crash.

This module is the only writer of a job's state: every move between `VideoStatus`es, and the
request, cancel and delete that start and stop them, is a function here.

A worker claims the oldest queued job with a lease that it renews while it works (each
heartbeat also carries progress). A worker that dies stops renewing; its job is re-queued when
the lease runs out, or at once when the supervisor sees the process go, until the job has used
its attempts and fails with `worker_lost`. Every transition is one conditional UPDATE, so two
workers never hold the same job and a late worker cannot overwrite a newer state.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, TextClause, and_, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import ConflictError, NotFoundError, TooManyRequestsError
from moviola.store.models import (
    RenderResult,
    StoredFile,
    Video,
    VideoStatus,
    WebhookEvent,
    new_id,
)

QUEUED, IN_PROGRESS = VideoStatus.QUEUED, VideoStatus.IN_PROGRESS
COMPLETED, FAILED = VideoStatus.COMPLETED, VideoStatus.FAILED

# A condition a completion carries: true only while its writer holds the election.
Fence = ColumnElement[bool] | TextClause

LEASE_S = 15.0  # renewed every LEASE_S / 3 while a job runs
# The error code (and last stage) of a job stopped on request. On the wire it is a failed
# video with this code: the Videos API's statuses have no other word for it.
CANCELLED = "cancelled"
STOPPED_MESSAGE = "cancelled while it was being made"


def enqueue(
    sessions: sessionmaker[Session],
    jobs: Video | Sequence[Video],
    *,
    max_waiting: int,
    retry_after: float,
    before_commit: Callable[[Session], None] | None = None,
) -> None:
    """Add `jobs` (one owner's: a job, or a group of variations) to the queue, all of them or
    none, unless that would leave their owner more than `max_waiting` videos waiting.

    The count and the insert are one transaction under a lock per owner (SQLite: the write
    lock; PostgreSQL: an advisory lock on the owner), so simultaneous requests cannot pass the
    limit together. `before_commit` writes what must exist with the rows (their audit entries)
    inside the same transaction.
    """
    jobs = [jobs] if isinstance(jobs, Video) else list(jobs)
    owner = jobs[0].owner
    assert all(job.owner == owner for job in jobs), "one owner's jobs at a time"
    with sessions.begin() as session:
        _lock_owner(session, owner)
        _check_room(session, owner, max_waiting, retry_after, len(jobs))
        session.add_all(jobs)
        if before_commit is not None:
            session.flush()
            before_commit(session)


def check_room(
    sessions: sessionmaker[Session],
    owner: str | None,
    *,
    max_waiting: int,
    retry_after: float,
    adding: int = 1,
) -> None:
    """Refuse at once an owner who has no room for `adding` more (`enqueue` checks again,
    under its lock)."""
    with sessions() as session:
        _check_room(session, owner, max_waiting, retry_after, adding)


def _check_room(
    session: Session, owner: str | None, max_waiting: int, retry_after: float, adding: int = 1
) -> None:
    waiting = session.execute(
        select(func.count())
        .select_from(Video)
        .where(
            _owned_by(owner),
            Video.status.in_((QUEUED, IN_PROGRESS)),
            Video.deleted_at.is_(None),
        )
    ).scalar_one()
    if waiting + adding > max_waiting:
        asked = f"; {adding} more would pass it" if adding > 1 else ""
        raise TooManyRequestsError(
            f"{waiting} videos are already waiting; the limit is {max_waiting}{asked}",
            retry_after=retry_after,
        )


def delete(
    sessions: sessionmaker[Session],
    video_id: str,
    owner: str | None,
    *,
    before_commit: Callable[[Session, Video], None] | None = None,
) -> Video:
    """Move a video to the trash (invisible at once, restorable until purged: see
    `moviola.jobs.trash`), cancelling it first if it is queued or running — once: of two
    simultaneous deletes, the second finds nothing. Returns the row as it was; `before_commit`
    records the delete (its audit entry) in the same transaction."""
    with sessions.begin() as session:
        video = _visible(session, video_id, owner)
        deleted = session.execute(
            update(Video)
            .where(Video.id == video_id, Video.deleted_at.is_(None))
            .values(deleted_at=time.time())
            .execution_options(synchronize_session=False)
            .returning(Video.id)
        ).scalar()
        if deleted is None:  # another delete was first
            raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
        _stop(session, video_id, announce=False)  # nobody waits for a deleted video
        if before_commit is not None:
            before_commit(session, video)
        session.expunge(video)
    return video


def cancel(
    sessions: sessionmaker[Session],
    video_id: str,
    owner: str | None,
    *,
    before_commit: Callable[[Session, Video], None] | None = None,
) -> None:
    """Stop a queued or running job and keep its record (its prompt and settings, to retry):
    a queued job fails at once as `cancelled`; a running one is asked to stop, and its worker
    closes it so within a step (`abandon`). A finished video, or one already being cancelled,
    is a 409."""
    with sessions.begin() as session:
        video = _visible(session, video_id, owner)
        if video.status not in (QUEUED, IN_PROGRESS) or video.cancel_requested:
            state = "being cancelled" if video.cancel_requested else video.status
            raise ConflictError(
                f"video {video_id} is {state}: only a queued or running job can be cancelled",
                param="video_id",
            )
        if not _stop(session, video_id, announce=True):
            raise ConflictError(f"video {video_id} finished meanwhile", param="video_id")
        if before_commit is not None:
            before_commit(session, video)


def _visible(session: Session, video_id: str, owner: str | None) -> Video:
    video = session.execute(
        select(Video).where(Video.id == video_id, _owned_by(owner), Video.deleted_at.is_(None))
    ).scalar()
    if video is None:
        raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
    return video


def _stop(session: Session, video_id: str, *, announce: bool) -> bool:
    """Cancel a job if it is queued (closed at once, `video.failed` sent if `announce`) or
    running (asked to stop); False when it was neither."""
    stopped = session.execute(
        update(Video)
        .where(Video.id == video_id, Video.status == QUEUED)
        .values(
            status=FAILED,
            stage=CANCELLED,
            error_code=CANCELLED,
            error_message="cancelled before it started",
            completed_at=time.time(),
            cancel_requested=True,
        )
        .execution_options(synchronize_session=False)
        .returning(Video.id)
    ).scalar()
    if stopped is not None:
        if announce:
            _event(session, "video.failed", video_id)
        return True
    asked = session.execute(
        update(Video)
        .where(Video.id == video_id, Video.status == IN_PROGRESS)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
        .returning(Video.id)
    ).scalar()
    return asked is not None


@dataclass(frozen=True)
class Heartbeat:
    """What a worker learns when it reports progress."""

    keep_going: bool  # False: cancelled, deleted, or the lease is no longer ours


def claim(
    sessions: sessionmaker[Session], worker: str, lease_s: float | None = None
) -> Video | None:
    """Lease the oldest queued job to `worker`, or None when the queue is empty."""
    lease_s = LEASE_S if lease_s is None else lease_s
    with sessions.begin() as session:
        candidates = (
            select(Video.id)
            .where(Video.status == QUEUED, Video.deleted_at.is_(None))
            .order_by(Video.seq)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        job_id = session.execute(candidates).scalar()
        if job_id is None:
            return None
        now = time.time()
        claimed = session.execute(
            update(Video)
            .where(Video.id == job_id, Video.status == QUEUED)
            .values(
                status=IN_PROGRESS,
                lease_owner=worker,
                lease_expires_at=now + lease_s,
                attempts=Video.attempts + 1,
                started_at=now,
                stage="queued",
                live=None,
            )
            .returning(Video.id)
        ).scalar()
        if claimed is None:  # another worker was faster
            return None
        return session.get(Video, job_id)


def heartbeat(
    sessions: sessionmaker[Session],
    job_id: str,
    worker: str,
    *,
    progress: int | None = None,
    stage: str | None = None,
    live: dict[str, Any] | None = None,
    lease_s: float | None = None,
) -> Heartbeat:
    """Renew the lease, with progress, stage and `live` (see `moviola.jobs.live`) if given."""
    lease_s = LEASE_S if lease_s is None else lease_s
    values: dict[str, Any] = {"lease_expires_at": time.time() + lease_s}
    if progress is not None:
        values["progress"] = max(0, min(99, progress))  # 100 only once the files are in place
    if stage is not None:
        values["stage"] = stage
    if live is not None:
        values["live"] = live
    with sessions.begin() as session:
        row = session.execute(
            update(Video)
            .where(_held_by(job_id, worker), Video.cancel_requested.is_(False))
            .values(**values)
            .returning(Video.id)
        ).scalar()
    return Heartbeat(keep_going=row is not None)


def complete(
    sessions: sessionmaker[Session],
    job_id: str,
    worker: str,
    *,
    files: dict[str, StoredFile],
    result: RenderResult,
    credentials: dict[str, Any] | None = None,
    fence: Fence | None = None,
) -> bool:
    """Mark a job done with its files (the video's hash and credentials with them, so a
    completed video shows both from its first read); False when it was no longer ours
    (cancelled, deleted, lost).
    `fence`, a condition checked in the same statement, lets a dispatcher complete only while
    it still holds its election (a deposed one keeps the same lease owners)."""
    held = _held_by(job_id, worker)
    if fence is not None:
        held = and_(held, fence)
    with sessions.begin() as session:
        row = session.execute(
            update(Video)
            .where(held, Video.cancel_requested.is_(False))
            .values(
                status=COMPLETED,
                progress=100,
                stage="done",
                live=None,
                completed_at=time.time(),
                files=files,
                result=result,
                credentials=credentials,
                content_sha256=files.get("video", {}).get("sha256"),
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(Video.id)
        ).scalar()
        if row is not None:
            _event(session, "video.completed", job_id)
    return row is not None


def fail(
    sessions: sessionmaker[Session],
    job_id: str,
    worker: str,
    *,
    code: str,
    message: str,
    retry: bool,
) -> VideoStatus | None:
    """Fail the attempt: back to the queue if `retry` and attempts remain, else `failed`.

    Returns the new status, or None when the job was no longer this worker's.
    """
    with sessions.begin() as session:
        job = session.execute(
            select(Video).where(_held_by(job_id, worker)).with_for_update()
        ).scalar()
        if job is None:
            return None
        return _finish_attempt(session, job, code, message, retry)


def release_worker(
    sessions: sessionmaker[Session], worker: str, reason: str, *, count_attempt: bool = True
) -> list[str]:
    """Give back every job a worker held: a crash counts as a failed attempt, a clean stop
    (`count_attempt=False`) does not."""
    return _release(sessions, Video.lease_owner == worker, reason, count_attempt)


def recover(
    sessions: sessionmaker[Session], *, everything: bool = False, keep: Collection[str] = ()
) -> list[str]:
    """Re-queue jobs whose lease ran out (or, at start-up, every job in progress); the jobs in
    `keep` are known to be alive (a dispatcher's jobs in flight) and stay where they are."""
    if everything:
        condition = Video.status == IN_PROGRESS
    else:
        condition = and_(Video.status == IN_PROGRESS, Video.lease_expires_at < time.time())
    if keep:
        condition = and_(condition, Video.id.notin_(list(keep)))
    return _release(sessions, condition, "the worker stopped answering")


def abandon(sessions: sessionmaker[Session], job_id: str, worker: str) -> None:
    """A worker stopped a job that was cancelled (or deleted, which cancels it): close it at
    once as `cancelled`, no retry, instead of leaving it held until its lease runs out. A
    cancelled job's waiters hear of it (`video.failed`); nobody waits for a deleted one."""
    with sessions.begin() as session:
        closed = session.execute(
            update(Video)
            .where(
                Video.id == job_id,
                Video.status == IN_PROGRESS,
                Video.lease_owner == worker,
                Video.cancel_requested.is_(True),
            )
            .values(
                status=FAILED,
                stage=CANCELLED,
                error_code=CANCELLED,
                error_message=STOPPED_MESSAGE,
                completed_at=time.time(),
                lease_owner=None,
                lease_expires_at=None,
                live=None,
            )
            .returning(Video.deleted_at)
        ).first()
        if closed is not None and closed.deleted_at is None:
            _event(session, "video.failed", job_id)


def _release(
    sessions: sessionmaker[Session], condition: Any, reason: str, count_attempt: bool = True
) -> list[str]:
    released = []
    with sessions.begin() as session:
        jobs = session.execute(
            select(Video).where(condition, Video.status == IN_PROGRESS).with_for_update()
        ).scalars()
        for job in list(jobs):
            given_back = 0 if count_attempt else 1  # interrupted, not failed: no attempt used
            if _finish_attempt(
                session, job, "worker_lost", reason, retry=True, given_back=given_back
            ):
                released.append(job.id)
    return released


def _finish_attempt(
    session: Session, job: Video, code: str, message: str, retry: bool, given_back: int = 0
) -> VideoStatus | None:
    """End the attempt `job` was read in; returns the new status, or None if the row moved on
    meanwhile (a worker completed it). The write is conditional on what was read: SQLite takes
    no row lock for a SELECT, so an unconditional write could undo a completion."""
    attempts = job.attempts - given_back
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": attempts,
        "live": None,
    }
    if retry and job.cancel_requested:  # asked to stop: what ended the attempt is moot
        values.update(
            status=FAILED,
            stage=CANCELLED,
            error_code=CANCELLED,
            error_message=STOPPED_MESSAGE,
            completed_at=time.time(),
        )
    elif retry and attempts < job.max_attempts:
        values.update(status=QUEUED, progress=0, stage=None)
    else:
        if retry and attempts >= job.max_attempts:
            message = f"{message} (gave up after {attempts} attempts)"
        values.update(
            status=FAILED,
            stage="failed",
            error_code=code,
            error_message=message,
            completed_at=time.time(),
        )
    moved = session.execute(
        update(Video)
        .where(
            Video.id == job.id,
            Video.status == IN_PROGRESS,
            Video.lease_owner == job.lease_owner,
            Video.attempts == job.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
        .returning(Video.id)
    ).scalar()
    if moved is None:
        return None
    if values["status"] is FAILED:
        _event(session, "video.failed", job.id)
    return values["status"]


def set_expiry(sessions: sessionmaker[Session], retention_s: float) -> None:
    """Give every completed video that lacks one its expiry time, `retention_s` after it
    completed."""
    with sessions.begin() as session:
        session.execute(
            update(Video)
            .where(
                Video.status == COMPLETED,
                Video.expires_at.is_(None),
                Video.completed_at.is_not(None),
            )
            .values(expires_at=Video.completed_at + retention_s)
        )


def mark_expired(sessions: sessionmaker[Session], video: Video, now: float) -> None:
    """Record that retention removed `video`'s files: each entry keeps its path and gains an
    `expired_at`, so a download answers that the video has expired."""
    files: dict[str, StoredFile] = {
        variant: {**entry, "expired_at": entry.get("expired_at", now)}
        for variant, entry in (video.files or {}).items()
    }
    with sessions.begin() as session:
        session.execute(update(Video).where(Video.id == video.id).values(files=files))


def _owned_by(owner: str | None) -> Any:
    return Video.owner.is_(None) if owner is None else Video.owner == owner


def _lock_owner(session: Session, owner: str | None) -> None:
    """Serialise the transactions that count and add one owner's jobs."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # The write lock now, before the count: a deferred transaction would read first and
        # let another writer in between.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        key = zlib.crc32(f"moviola-queue:{owner or ''}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _held_by(job_id: str, worker: str) -> Any:
    return and_(
        Video.id == job_id,
        Video.status == IN_PROGRESS,
        Video.lease_owner == worker,
        Video.deleted_at.is_(None),
    )


def _event(session: Session, kind: str, video_id: str) -> None:
    session.add(WebhookEvent(id=new_id("evt"), type=kind, video_id=video_id))
