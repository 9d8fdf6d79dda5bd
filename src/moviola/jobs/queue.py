"""The durable queue: jobs are rows, workers lease them, and nothing is lost on a crash.

A worker claims the oldest queued job with a lease that it renews while it works (each
heartbeat also carries progress). A worker that dies stops renewing; its job is re-queued when
the lease runs out, or at once when the supervisor sees the process go, until the job has used
its attempts and fails with `worker_lost`. Every transition is one conditional UPDATE, so two
workers never hold the same job and a late worker cannot overwrite a newer state.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.store.models import Video, WebhookEvent, new_id

LEASE_S = 15.0  # renewed every LEASE_S / 3 while a job runs


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
            .where(Video.status == "queued", Video.deleted_at.is_(None))
            .order_by(Video.seq)
            .limit(1)
        )
        if session.bind.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        job_id = session.execute(candidates).scalar()
        if job_id is None:
            return None
        now = time.time()
        claimed = session.execute(
            update(Video)
            .where(Video.id == job_id, Video.status == "queued")
            .values(
                status="in_progress",
                lease_owner=worker,
                lease_expires_at=now + lease_s,
                attempts=Video.attempts + 1,
                started_at=now,
                stage="queued",
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
    lease_s: float | None = None,
) -> Heartbeat:
    lease_s = LEASE_S if lease_s is None else lease_s
    values: dict[str, Any] = {"lease_expires_at": time.time() + lease_s}
    if progress is not None:
        values["progress"] = max(0, min(99, progress))  # 100 only once the files are in place
    if stage is not None:
        values["stage"] = stage
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
    files: dict[str, Any],
    result: dict[str, Any],
    fence: Any = None,
) -> bool:
    """Mark a job done with its files; False when it was no longer ours (cancelled, lost).
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
                status="completed",
                progress=100,
                stage="done",
                completed_at=time.time(),
                files=files,
                result=result,
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
) -> str | None:
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
        condition = Video.status == "in_progress"
    else:
        condition = and_(Video.status == "in_progress", Video.lease_expires_at < time.time())
    if keep:
        condition = and_(condition, Video.id.notin_(list(keep)))
    return _release(sessions, condition, "the worker stopped answering")


def abandon(sessions: sessionmaker[Session], job_id: str, worker: str) -> None:
    """A worker stopped a job that was cancelled or deleted: close it at once (no retry, no
    webhook: nobody is waiting for it) instead of leaving it held until its lease runs out."""
    with sessions.begin() as session:
        session.execute(
            update(Video)
            .where(
                Video.id == job_id,
                Video.status == "in_progress",
                Video.lease_owner == worker,
                Video.cancel_requested.is_(True),
            )
            .values(
                status="failed",
                stage="cancelled",
                error_code="cancelled",
                error_message="the video was deleted while it was being made",
                completed_at=time.time(),
                lease_owner=None,
                lease_expires_at=None,
            )
        )


def cancel(sessions: sessionmaker[Session], job_id: str) -> None:
    """Ask for a job to stop; a queued job is never picked up, a running one stops within a
    step (its worker sees this at its next heartbeat)."""
    with sessions.begin() as session:
        session.execute(update(Video).where(Video.id == job_id).values(cancel_requested=True))


def _release(
    sessions: sessionmaker[Session], condition: Any, reason: str, count_attempt: bool = True
) -> list[str]:
    released = []
    with sessions.begin() as session:
        jobs = session.execute(
            select(Video).where(condition, Video.status == "in_progress").with_for_update()
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
) -> str | None:
    """End the attempt `job` was read in; returns the new status, or None if the row moved on
    meanwhile (a worker completed it). The write is conditional on what was read: SQLite takes
    no row lock for a SELECT, so an unconditional write could undo a completion."""
    attempts = job.attempts - given_back
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "attempts": attempts}
    if retry and attempts < job.max_attempts and not job.cancel_requested:
        values.update(status="queued", progress=0, stage=None)
    else:
        if retry and attempts >= job.max_attempts:
            message = f"{message} (gave up after {attempts} attempts)"
        values.update(
            status="failed",
            stage="failed",
            error_code=code,
            error_message=message,
            completed_at=time.time(),
        )
    moved = session.execute(
        update(Video)
        .where(
            Video.id == job.id,
            Video.status == "in_progress",
            Video.lease_owner == job.lease_owner,
            Video.attempts == job.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
        .returning(Video.id)
    ).scalar()
    if moved is None:
        return None
    if values["status"] == "failed":
        _event(session, "video.failed", job.id)
    return values["status"]


def _held_by(job_id: str, worker: str) -> Any:
    return and_(
        Video.id == job_id,
        Video.status == "in_progress",
        Video.lease_owner == worker,
        Video.deleted_at.is_(None),
    )


def _event(session: Session, kind: str, video_id: str) -> None:
    session.add(WebhookEvent(id=new_id("evt"), type=kind, video_id=video_id))
