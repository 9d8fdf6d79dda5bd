"""The durable queue against a real SQLite file: claims, leases, retries, recovery, events."""

import itertools
import threading
import time

import pytest
from sqlalchemy import select, update

from moviola.jobs import queue
from moviola.store import db
from moviola.store.models import Video, WebhookEvent, new_id

pytestmark = pytest.mark.timeout(60)

_seq = itertools.count(1)


@pytest.fixture
def url(tmp_path):
    url = db.sqlite_url(tmp_path)
    db.migrate(db.connect(url))
    return url


@pytest.fixture
def sessions(url):
    return db.sessions(db.connect(url))


def add(sessions, *, seq=None, max_attempts=3, **values):
    job = Video(
        id=new_id("video"),
        seq=seq if seq is not None else next(_seq),
        status="queued",
        model="tiny",
        engine_model="tiny",
        prompt="a heron",
        seconds="1",
        size="160x96",
        params={},
        max_attempts=max_attempts,
        **values,
    )
    with sessions.begin() as session:
        session.add(job)
    return job.id


def row(sessions, job_id):
    with sessions() as session:
        return session.get(Video, job_id)


def events(sessions, job_id):
    with sessions() as session:
        found = session.execute(select(WebhookEvent).where(WebhookEvent.video_id == job_id))
        return [event.type for event in found.scalars()]


def test_claims_take_the_oldest_job_first_and_skip_deleted_ones(sessions):
    third = add(sessions, seq=30)
    first = add(sessions, seq=10)
    add(sessions, seq=5, deleted_at=time.time())
    second = add(sessions, seq=20)
    claimed = [queue.claim(sessions, "w") for _ in range(4)]
    assert [job.id if job else None for job in claimed] == [first, second, third, None]
    job = row(sessions, first)
    assert (job.status, job.lease_owner, job.attempts) == ("in_progress", "w", 1)
    assert job.lease_expires_at > time.time() + queue.LEASE_S - 5


def test_concurrent_claimers_never_get_the_same_job(url, sessions):
    jobs = {add(sessions) for _ in range(60)}
    claims: dict[str, list[str]] = {}
    start = threading.Barrier(8)

    def claimer(name):
        mine = claims.setdefault(name, [])
        own = db.sessions(db.connect(url))  # a connection of its own, as a worker process has
        start.wait()
        while _queued(own):  # a claim that lost a race answers None too: try again
            job = queue.claim(own, name)
            if job is not None:
                mine.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [job_id for mine in claims.values() for job_id in mine]
    assert len(claimed) == len(set(claimed)) == len(jobs)
    assert set(claimed) == jobs
    assert sum(1 for mine in claims.values() if mine) > 1  # they did compete
    for name, mine in claims.items():
        for job_id in mine:
            assert row(sessions, job_id).lease_owner == name
            assert row(sessions, job_id).attempts == 1


def test_a_heartbeat_extends_the_lease_and_writes_progress_below_100(sessions):
    job_id = add(sessions)
    queue.claim(sessions, "w", lease_s=5)
    before = row(sessions, job_id).lease_expires_at
    assert queue.heartbeat(sessions, job_id, "w", progress=40, stage="denoising").keep_going
    job = row(sessions, job_id)
    assert job.lease_expires_at > before + 5  # renewed for a full lease (15 s) from now
    assert (job.progress, job.stage) == (40, "denoising")
    assert queue.heartbeat(sessions, job_id, "w", progress=100).keep_going
    assert row(sessions, job_id).progress == 99  # 100 only once the files are in place
    assert queue.complete(sessions, job_id, "w", files={}, result={})
    assert (row(sessions, job_id).status, row(sessions, job_id).progress) == ("completed", 100)


def test_a_worker_that_lost_its_lease_is_refused(sessions):
    job_id = add(sessions)
    queue.claim(sessions, "old")
    assert not queue.heartbeat(sessions, job_id, "intruder", progress=50).keep_going
    assert not queue.complete(sessions, job_id, "intruder", files={}, result={})
    # The lease runs out, the job is re-queued and someone else takes it.
    _expire(sessions, job_id)
    assert queue.recover(sessions) == [job_id]
    assert queue.claim(sessions, "new").id == job_id
    assert not queue.heartbeat(sessions, job_id, "old", progress=50).keep_going
    assert not queue.complete(sessions, job_id, "old", files={"x": 1}, result={})
    assert queue.fail(sessions, job_id, "old", code="x", message="x", retry=False) is None
    job = row(sessions, job_id)
    assert (job.status, job.lease_owner, job.progress, job.files) == ("in_progress", "new", 0, None)


def test_cancel_makes_the_heartbeat_answer_stop(sessions):
    job_id = add(sessions)
    queue.claim(sessions, "w")
    assert queue.heartbeat(sessions, job_id, "w").keep_going
    queue.cancel(sessions, job_id, None)
    assert not queue.heartbeat(sessions, job_id, "w", progress=30).keep_going
    assert not queue.complete(sessions, job_id, "w", files={}, result={})


def test_a_retried_failure_requeues_until_the_attempts_are_used(sessions):
    job_id = add(sessions, max_attempts=2)
    queue.claim(sessions, "w")
    queue.heartbeat(sessions, job_id, "w", progress=60)
    status = queue.fail(sessions, job_id, "w", code="generation_failed", message="OOM", retry=True)
    assert status == "queued"
    job = row(sessions, job_id)
    assert (job.attempts, job.progress, job.lease_owner, job.error_code) == (1, 0, None, None)
    assert events(sessions, job_id) == []

    queue.claim(sessions, "w")
    status = queue.fail(sessions, job_id, "w", code="generation_failed", message="OOM", retry=True)
    assert status == "failed"
    job = row(sessions, job_id)
    assert (job.attempts, job.error_code) == (2, "generation_failed")
    assert job.error_message == "OOM (gave up after 2 attempts)"
    assert events(sessions, job_id) == ["video.failed"]
    assert queue.claim(sessions, "w") is None


def test_a_failure_without_retry_is_final_at_once(sessions):
    job_id = add(sessions, max_attempts=3)
    queue.claim(sessions, "w")
    status = queue.fail(sessions, job_id, "w", code="invalid_request", message="no", retry=False)
    assert status == "failed"
    job = row(sessions, job_id)
    assert (job.attempts, job.error_code, job.error_message) == (1, "invalid_request", "no")


def test_recover_requeues_expired_leases_or_everything_in_progress(sessions):
    stale, fresh = add(sessions), add(sessions)
    queue.claim(sessions, "a")
    queue.claim(sessions, "b")
    _expire(sessions, stale)
    assert queue.recover(sessions) == [stale]
    assert (row(sessions, stale).status, row(sessions, fresh).status) == ("queued", "in_progress")
    assert queue.recover(sessions, everything=True) == [fresh]
    assert row(sessions, fresh).status == "queued"
    assert row(sessions, fresh).attempts == 1  # a lost worker used an attempt


def test_releasing_a_worker_counts_an_attempt_unless_it_stopped_cleanly(sessions):
    job_id = add(sessions, max_attempts=1)
    queue.claim(sessions, "w")
    assert queue.release_worker(sessions, "w", "stopping", count_attempt=False) == [job_id]
    job = row(sessions, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)

    queue.claim(sessions, "w")
    assert queue.release_worker(sessions, "w", "worker w was killed") == [job_id]
    job = row(sessions, job_id)
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert job.error_message == "worker w was killed (gave up after 1 attempts)"
    assert events(sessions, job_id) == ["video.failed"]


def test_completing_writes_its_event_in_the_same_transaction(sessions, monkeypatch):
    job_id = add(sessions)
    queue.claim(sessions, "w")

    def broken(*_args):
        raise RuntimeError("the outbox is unwritable")

    with monkeypatch.context() as patch:
        patch.setattr(queue, "_event", broken)
        with pytest.raises(RuntimeError):
            queue.complete(sessions, job_id, "w", files={}, result={})
    assert row(sessions, job_id).status == "in_progress"  # no event, no state change
    assert events(sessions, job_id) == []

    assert queue.complete(sessions, job_id, "w", files={"video": {}}, result={"seed": 1})
    assert row(sessions, job_id).status == "completed"
    assert events(sessions, job_id) == ["video.completed"]


def test_failing_writes_its_event_in_the_same_transaction(sessions, monkeypatch):
    job_id = add(sessions)
    queue.claim(sessions, "w")

    def broken(*_args):
        raise RuntimeError("the outbox is unwritable")

    with monkeypatch.context() as patch:
        patch.setattr(queue, "_event", broken)
        with pytest.raises(RuntimeError):
            queue.fail(sessions, job_id, "w", code="x", message="y", retry=False)
    assert row(sessions, job_id).status == "in_progress"
    assert events(sessions, job_id) == []

    assert queue.fail(sessions, job_id, "w", code="x", message="y", retry=False) == "failed"
    assert events(sessions, job_id) == ["video.failed"]


def _expire(sessions, job_id):
    with sessions.begin() as session:
        session.execute(
            update(Video).where(Video.id == job_id).values(lease_expires_at=time.time() - 1)
        )


def _queued(sessions):
    with sessions() as session:
        return session.execute(select(Video.id).where(Video.status == "queued").limit(1)).first()


def test_recovery_never_undoes_a_completion_that_lands_between_its_read_and_write(
    sessions, monkeypatch
):
    job_id = add(sessions)
    queue.claim(sessions, "w", lease_s=-1)  # a lease that has already run out
    real = queue._finish_attempt

    def completed_meanwhile(session, job, *args, **kwargs):
        assert queue.complete(sessions, job.id, "w", files={"video": {}}, result={})
        return real(session, job, *args, **kwargs)

    monkeypatch.setattr(queue, "_finish_attempt", completed_meanwhile)
    assert queue.recover(sessions) == []
    job = row(sessions, job_id)
    assert (job.status, job.files) == ("completed", {"video": {}})
    assert events(sessions, job_id) == ["video.completed"]
