"""Handing the dispatcher over, in this process: two `RayDispatcher`s on one real PostgreSQL and
one real Ray cluster, the first stopped where a dead replica would stop, the second taking over.

A `moviola serve` replica that cannot reach Ray takes the requests (and migrates the database):
it queues the jobs and, not reaching Ray, leaves dispatching to the dispatchers here.
"""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import func, select, update

from moviola.config import Settings
from moviola.jobs import queue
from moviola.jobs.ray.actor import actor_name
from moviola.jobs.ray.dispatcher import RayDispatcher
from moviola.jobs.ray.election import Election
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.models import Video

pytestmark = pytest.mark.slow


@pytest.fixture
def front(make_server, cluster_env):
    """An API replica that queues jobs but cannot dispatch them (its Ray address is dead)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    return make_server(env={**cluster_env, "MOVIOLA_RAY_ADDRESS": dead}).start()


@pytest.fixture
def parts(front, cluster_env, database_url):
    settings = Settings(
        data_dir=front.data_dir,
        database_url=database_url,
        ray_address=cluster_env["MOVIOLA_RAY_ADDRESS"],
        ray_namespace=cluster_env["MOVIOLA_RAY_NAMESPACE"],
        ray_actors=2,
        ray_gpus_per_actor=0,
        ray_cpus_per_actor=1,
        x264_preset="ultrafast",
    )
    engine = db.connect(database_url)
    yield settings, db.sessions(engine), Blobs(settings.blobs_path)
    engine.dispose()


def row(sessions, video_id) -> Video:
    with sessions() as session:
        return session.get(Video, video_id)


def renders(ray_client, video_id) -> int:
    """How many times the actors started rendering the job (their own count)."""
    infos = [ray_client.get(ray_client.get_actor(actor_name(i)).info.remote()) for i in range(2)]
    return sum(info["renders"].get(video_id, 0) for info in infos)


def test_a_takeover_adopts_a_job_whose_lease_ran_out_instead_of_dispatching_it_again(
    front, parts, ray_client, small
):
    settings, sessions, blobs = parts
    video = front.client().videos.create(
        prompt="a slow pan", model="sora-2", **small, extra_body={"num_inference_steps": 150}
    )
    first = RayDispatcher(settings, sessions, blobs)
    first.take_over()
    deadline = time.monotonic() + 120
    while row(sessions, video.id).progress <= 0:  # on an actor, and rendering
        assert time.monotonic() < deadline
        first.step()
    first.stand_down()  # its replica died: nothing renews the lease any more
    # A takeover that comes late (or waits long for the actors): the lease has run out.
    with sessions.begin() as session:
        session.execute(
            update(Video).where(Video.id == video.id).values(lease_expires_at=time.time() - 1)
        )

    second = RayDispatcher(settings, sessions, blobs)
    second.take_over()
    assert video.id in second.in_flight
    second._housekept = 0.0  # its housekeeping (re-queuing expired leases) is due at once
    while row(sessions, video.id).status not in ("completed", "failed"):
        assert time.monotonic() < deadline
        second.step()
    done = row(sessions, video.id)
    assert done.status == "completed", done.error_message
    assert done.attempts == 1
    assert renders(ray_client, video.id) == 1


def test_a_dispatcher_never_deletes_the_files_the_completed_video_uses(front, parts, small):
    settings, sessions, blobs = parts
    video = front.client().videos.create(prompt="a harbour", model="sora-2", **small)
    owner = "moviola-render-0.a1b2c3"
    assert queue.claim(sessions, owner).id == video.id
    path = blobs.path(video.id, "video", attempt=owner)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the finished video")
    files = {"video": {"path": str(path), "bytes": path.stat().st_size, "sha256": "x"}}
    assert queue.complete(sessions, video.id, owner, files=files, result={})

    # A deposed dispatcher that collected the same attempt, and lost the race to complete it.
    loser = RayDispatcher(settings, sessions, blobs)
    loser.runner.discard(video.id, owner)
    assert path.read_bytes() == b"the finished video"

    # An attempt the row does not use is still cleaned up.
    other = "moviola-render-1.d4e5f6"
    stray = blobs.path(video.id, "video", attempt=other)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a stray render")
    loser.runner.discard(video.id, other)
    assert not stray.parent.exists()
    assert path.is_file()


def test_a_replica_that_lost_the_election_completes_nothing(front, parts, database_url, small):
    _, sessions, _ = parts
    video = front.client().videos.create(prompt="a quay", model="sora-2", **small)
    owner = "moviola-render-0.0f0f0f"
    assert queue.claim(sessions, owner).id == video.id
    first, second = Election(database_url, retry_s=0), Election(database_url, retry_s=0)
    try:
        assert first.leading() and not second.leading()
        fence = first.fence()
        # Its session ends without its knowing (an administrator, a network partition).
        with sessions.begin() as session:
            session.execute(select(func.pg_terminate_backend(first._pid)))
        deadline = time.monotonic() + 10
        while not second.leading():  # the server drops the lock once that session is gone
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not first.still_leading()
        assert not queue.complete(sessions, video.id, owner, files={}, result={}, fence=fence)
        assert queue.complete(sessions, video.id, owner, files={}, result={}, fence=second.fence())
    finally:
        first.resign()
        second.resign()
