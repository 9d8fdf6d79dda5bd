"""Jobs through the Ray executor, on PostgreSQL, driven with the openai SDK as any client would.

Every test here uses the session's real PostgreSQL and real Ray cluster (see conftest).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from moviola.store import db
from moviola.store.models import AuditEvent, Video

MOVIOLA = str(Path(sys.executable).parent / "moviola")
pytestmark = pytest.mark.slow


def wait_all(client, ids, timeout=180):
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for video_id in list(pending):
            if client.videos.retrieve(video_id).status in ("completed", "failed"):
                pending.discard(video_id)
        time.sleep(0.2)
    assert not pending, f"still not finished: {pending}"
    return {video_id: client.videos.retrieve(video_id) for video_id in ids}


def rows(database_url):
    with db.sessions(db.connect(database_url))() as session:
        return {v.id: v for v in session.execute(select(Video)).scalars()}


def test_jobs_complete_on_ray_actors_with_progress(
    make_server, cluster_env, database_url, ray_client, small, tmp_path
):
    server = make_server(env=cluster_env).start()
    client = server.client()
    slow = client.videos.create(
        prompt="a lighthouse at dusk",
        model="sora-2",
        **small,
        extra_body={"num_inference_steps": 40},
    )
    seen_progress = set()
    deadline = time.monotonic() + 180
    while (video := client.videos.retrieve(slow.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        seen_progress.add(video.progress)
        time.sleep(0.05)
    assert video.status == "completed", video.error
    assert any(0 < p < 100 for p in seen_progress), seen_progress  # progress came back live

    quick = [client.videos.create(prompt=f"shot {i}", model="sora-2", **small) for i in range(2)]
    finished = wait_all(client, [v.id for v in quick])
    assert all(v.status == "completed" for v in finished.values())

    content = client.videos.download_content(slow.id)
    assert content.read()[4:8] == b"ftyp"  # an MP4, stored here from the actor's bytes
    assert client.videos.download_content(slow.id, variant="thumbnail").read()

    stored = rows(database_url)
    for video_id in [slow.id, *finished]:
        row = stored[video_id]
        assert row.attempts == 1
        assert row.result["worker"].startswith("moviola-render-")
        assert Path(row.files["video"]["path"]).is_file()

    health = server.health()
    assert health["status"] == "ok", health
    assert health["executor"]["dispatching"] is True
    assert health["executor"]["ray"].startswith("connected")

    status = subprocess.run(
        [MOVIOLA, "cluster", "status"],
        env={**server.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert "moviola-render-0" in status.stdout
    assert "tiny" in status.stdout  # the model the actors keep loaded
    assert httpx.get(f"{server.url}/metrics").status_code == 200


def renders(ray_client, job_ids):
    """How many times the actors started rendering each job (their own count)."""
    from moviola.jobs.ray.actor import actor_name

    counts = dict.fromkeys(job_ids, 0)
    for index in range(2):
        info = ray_client.get(ray_client.get_actor(actor_name(index)).info.remote(), timeout=60)
        for job_id in job_ids:
            counts[job_id] += info["renders"].get(job_id, 0)
    return counts


def dispatching(servers):
    return [s for s in servers if s.health()["executor"]["dispatching"]]


def test_two_replicas_share_the_queue_and_dispatch_each_job_once(
    make_server, cluster_env, database_url, ray_client, small, tmp_path
):
    shared = tmp_path / "shared"  # the API replicas' blob folder (shared storage in production)
    first = make_server(data_dir=shared, env=cluster_env).start()
    second = make_server(data_dir=shared, env=cluster_env).start()
    ids = []
    for i in range(4):  # through both replicas, as a proxy would spread them
        client = (first if i % 2 else second).client()
        ids.append(client.videos.create(prompt=f"take {i}", model="sora-2", **small).id)
    finished = wait_all(first.client(), ids)
    assert {v.status for v in finished.values()} == {"completed"}
    assert len(dispatching([first, second])) == 1

    stored = rows(database_url)
    assert [stored[i].attempts for i in ids] == [1, 1, 1, 1]
    assert renders(ray_client, ids) == dict.fromkeys(ids, 1)
    # Either replica serves the files the dispatching one stored.
    assert second.client().videos.download_content(ids[0]).read()[4:8] == b"ftyp"


def test_killing_the_dispatching_replica_hands_over_and_each_job_completes_once(
    make_server, cluster_env, database_url, ray_client, small, tmp_path
):
    shared = tmp_path / "shared"
    first = make_server(data_dir=shared, env=cluster_env).start()
    deadline = time.monotonic() + 60
    while not first.health()["executor"]["dispatching"]:  # it started first: it is elected
        assert time.monotonic() < deadline
        time.sleep(0.2)
    second = make_server(data_dir=shared, env=cluster_env).start()
    client = second.client()
    ids = [
        client.videos.create(
            prompt=f"scene {i}", model="sora-2", **small, extra_body={"num_inference_steps": 100}
        ).id
        for i in range(3)
    ]
    while not any(client.videos.retrieve(i).progress > 0 for i in ids):
        assert time.monotonic() < deadline + 120
        time.sleep(0.05)
    first.process.send_signal(signal.SIGKILL)  # mid-run, with jobs on the actors
    first.process.wait()
    killed_at = time.monotonic()
    while not second.health()["executor"]["dispatching"]:
        assert time.monotonic() - killed_at < 15, "the other replica did not take over"
        time.sleep(0.1)

    finished = wait_all(client, ids)
    assert {v.status for v in finished.values()} == {"completed"}
    stored = rows(database_url)
    # Adopted, not dispatched again: one attempt and one render per job.
    assert [stored[i].attempts for i in ids] == [1, 1, 1]
    assert renders(ray_client, ids) == dict.fromkeys(ids, 1)


def test_an_actor_killed_mid_job_costs_an_attempt_and_the_job_completes(
    make_server, cluster_env, database_url, ray_client, small
):
    server = make_server(env=cluster_env).start()
    client = server.client()
    video = client.videos.create(
        prompt="a storm", model="sora-2", **small, extra_body={"num_inference_steps": 60}
    )
    deadline = time.monotonic() + 120
    while client.videos.retrieve(video.id).progress <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    owner = rows(database_url)[video.id].lease_owner
    actor = ray_client.get_actor(owner.rsplit(".", 1)[0])
    pid = ray_client.get(actor.info.remote(), timeout=30)["pid"]
    os.kill(pid, signal.SIGKILL)  # the actor's process, as a crashed driver or OOM would

    done = wait_all(client, [video.id])[video.id]
    assert done.status == "completed", done.error
    row = rows(database_url)[video.id]
    assert row.attempts == 2
    assert row.lease_owner is None
    assert row.result["worker"] != owner.rsplit(".", 1)[0]  # retried on the other actor


def test_without_ray_jobs_stay_queued_and_health_says_why(make_server, database_url, small):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = {
        "MOVIOLA_DATABASE_URL": database_url,
        "MOVIOLA_EXECUTOR": "ray",
        "MOVIOLA_RAY_ADDRESS": address,
        "MOVIOLA_RAY_GPUS_PER_ACTOR": "0",
    }
    server = make_server(env=env).start()
    video = server.client().videos.create(prompt="waiting", model="sora-2", **small)
    deadline = time.monotonic() + 30
    while not any(address in r and "unreachable" in r for r in server.health()["reasons"]):
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.2)
    health = server.health()
    assert health["status"] == "degraded"
    assert health["queued"] == 1
    time.sleep(2)
    assert server.client().videos.retrieve(video.id).status == "queued"
    assert rows(database_url)[video.id].attempts == 0


def test_deleting_a_job_stops_it_on_its_actor(
    make_server, cluster_env, database_url, ray_client, small
):
    server = make_server(env=cluster_env).start()
    client = server.client()
    video = client.videos.create(
        prompt="a long take", model="sora-2", **small, extra_body={"num_inference_steps": 200}
    )
    deadline = time.monotonic() + 120
    while client.videos.retrieve(video.id).progress <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    actor = rows(database_url)[video.id].lease_owner.rsplit(".", 1)[0]
    client.videos.delete(video.id)
    while (row := rows(database_url)[video.id]).status == "in_progress":
        assert time.monotonic() < deadline, "the actor did not stop"
        time.sleep(0.1)
    assert (row.status, row.error_code, row.files) == ("failed", "cancelled", None)
    assert row.attempts == 1
    # The render itself stopped part-way on the actor, rather than running to its end.
    info = ray_client.get(ray_client.get_actor(actor).info.remote(), timeout=60)
    assert info["ended"][video.id] == "cancelled"


def test_a_replica_that_cannot_reach_ray_leaves_dispatching_to_one_that_can(
    make_server, cluster_env, small
):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    cut_off = make_server(env={**cluster_env, "MOVIOLA_RAY_ADDRESS": dead}).start()
    deadline = time.monotonic() + 60
    # It has looked at Ray (and could have stood for election) already.
    while not any("unreachable" in r for r in cut_off.health()["reasons"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    reaching = make_server(data_dir=cut_off.data_dir, env=cluster_env).start()
    video = cut_off.client().videos.create(prompt="a ferry", model="sora-2", **small)
    assert wait_all(cut_off.client(), [video.id], timeout=120)[video.id].status == "completed"
    assert dispatching([cut_off, reaching]) == [reaching]


def test_the_output_check_runs_on_what_the_actors_render(
    make_server, cluster_env, database_url, small
):
    server = make_server(env={**cluster_env, "MOVIOLA_NSFW_CHECK": "true"}).start()
    client = server.client()
    video = client.videos.create(prompt="a field of wheat", model="sora-2", **small)
    assert wait_all(client, [video.id])[video.id].status == "completed"  # noise is not nudity
    with db.sessions(db.connect(database_url))() as session:
        checks = session.execute(
            select(AuditEvent).where(
                AuditEvent.video_id == video.id, AuditEvent.action == "moderation"
            )
        ).scalars()
        stages = [event.detail["stage"] for event in checks]
    assert "output" in stages


def test_the_server_outlives_a_ray_head_that_dies_and_dispatches_again_when_it_is_back(
    make_server, make_ray_cluster, database_url, small
):
    head = make_ray_cluster()
    env = {
        "MOVIOLA_DATABASE_URL": database_url,
        "MOVIOLA_EXECUTOR": "ray",
        "MOVIOLA_RAY_ADDRESS": head.address,
        "MOVIOLA_RAY_NAMESPACE": "moviola-head-test",
        "MOVIOLA_RAY_GPUS_PER_ACTOR": "0",
    }
    server = make_server(env=env).start()
    client = server.client()
    first = client.videos.create(prompt="before", model="sora-2", **small)
    assert wait_all(client, [first.id])[first.id].status == "completed"

    head.stop()  # Ray ends the drivers of a head that went away, in time
    deadline = time.monotonic() + 60
    while (health := server.health())["executor"]["dispatching"] or not health["reasons"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    waiting = client.videos.create(prompt="while the head is down", model="sora-2", **small)
    # Longer than Ray's driver waits for its head (60 s) before it ends the driver's process.
    down_until = time.monotonic() + 75
    while time.monotonic() < down_until:
        assert client.videos.retrieve(waiting.id).status == "queued"
        assert server.process.poll() is None
        time.sleep(1)

    make_ray_cluster(port=head.port)  # back, on the same address
    done = wait_all(client, [waiting.id], timeout=240)[waiting.id]
    assert done.status == "completed", done.error
    assert server.process.poll() is None  # the API itself never went down
