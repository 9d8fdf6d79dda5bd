"""A server killed mid-job loses nothing; a server that would be open to all will not start."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import ConflictError

from moviola import media
from moviola.store.models import Video

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def wait_for(client, video_id: str, status: tuple[str, ...], timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in status:
            return video
        time.sleep(0.02)
    raise AssertionError(f"{video_id} never reached {status}; it is {video.status}")


def test_kill_9_mid_job_then_restart(make_server, tmp_path):
    server = make_server().start()
    client = server.client()
    done = client.videos.create_and_poll(prompt="kept", size="160x96", seconds="1")
    before = client.videos.download_content(done.id).read()

    busy = client.videos.create(prompt="interrupted", size="720x1280", seconds="12")
    wait_for(client, busy.id, ("in_progress",))
    workers = [w["pid"] for w in server.health()["workers"]]
    # The whole server at once, workers included, as a power cut would: nobody cleans up.
    for pid in (server.process.pid, *workers):
        os.kill(pid, signal.SIGKILL)
    server.process.wait()
    with server.sessions()() as session:
        assert session.get(Video, busy.id).status == "in_progress"  # as the crash left it

    restarted = make_server(server.data_dir).start()
    client = restarted.client()
    requeued = client.videos.retrieve(busy.id)
    assert requeued.status in ("queued", "in_progress")
    with pytest.raises(ConflictError):  # nothing half-written is ever served
        client.videos.download_content(busy.id)

    after = client.videos.download_content(done.id).read()
    assert hashlib.sha256(after).digest() == hashlib.sha256(before).digest()

    finished = wait_for(client, busy.id, ("completed", "failed"))
    assert finished.status == "completed", finished.error
    assert finished.moviola["attempts"] == 2
    path = tmp_path / "recovered.mp4"
    client.videos.download_content(busy.id).write_to_file(path)
    info = media.probe(path)
    assert (info.width, info.height) == (720, 1280)
    assert info.duration == pytest.approx(12.0, abs=0.07)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_refuses_to_listen_publicly_without_a_key(make_server, host):
    server = make_server()
    done = subprocess.run(
        [MOVIOLA, "serve", "--host", host, "--port", str(server.port)],
        env={**server.env, "MOVIOLA_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen" in lines[0] and "keys create" in lines[0]
