"""A server whose data dir's disk is full says so: 507 on every request that must write, and a
`/healthz` that stops answering 200. Shown on a real full filesystem, a small tmpfs."""

from __future__ import annotations

import errno
import subprocess

import httpx
import pytest
from fastapi.testclient import TestClient
from openai import APIStatusError
from sqlalchemy import text

from moviola.api.app import create_app
from moviola.config import Settings

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB filesystem of its own (mounting needs root): room for a server's database, its
    write-ahead log before a checkpoint (up to ~4 MiB) and a first video, then filled."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mount
    # Lazily: a server being stopped may still hold files there.
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def fill(disk) -> None:
    # Unbuffered: a buffered file would keep the tail of its last, partial write and fail
    # again with ENOSPC when closed.
    with open(disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError as err:
            assert err.errno == errno.ENOSPC


def no_room(caught) -> None:
    assert caught.value.status_code == 507
    assert caught.value.body["code"] == "insufficient_storage"
    assert "disk is full" in caught.value.body["message"]


def test_a_full_disk_is_507_and_unhealthy(small_disk, make_server, make_png, small):
    server = make_server(small_disk, env={"MOVIOLA_MIN_FREE_DISK_BYTES": str(2 * MIB)}).start()
    client = server.client()
    video = client.videos.create_and_poll(prompt="a paper boat", **small)
    assert video.status == "completed", video.error

    fill(small_disk)
    with pytest.raises(APIStatusError) as caught:
        client.videos.create(prompt="a boat", input_reference=make_png(), **small)
    no_room(caught)
    with pytest.raises(APIStatusError) as caught:
        client.videos.download_content(video.id)
    no_room(caught)
    with pytest.raises(APIStatusError) as caught:
        client.videos.delete(video.id)
    no_room(caught)

    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert any(
        reason.startswith("the data dir's disk is full: 0 MB free, 2 MB needed")
        for reason in health.json()["reasons"]
    ), health.json()

    # Room again: the same requests go through.
    (small_disk / "filler").unlink()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert client.videos.download_content(video.id).read()
    assert client.videos.delete(video.id).deleted


def test_any_request_that_meets_a_full_disk_is_507(small_disk):
    """However the write fails (the system's ENOSPC, SQLite's "database or disk is full"),
    and wherever (here, routes of the application's own that write)."""
    app = create_app(Settings(data_dir=small_disk, workers=0))

    @app.post("/write-file")
    def write_file() -> None:
        (small_disk / "more").write_bytes(b"\0" * MIB)

    @app.post("/write-row")
    def write_row() -> None:
        with app.state.sessions.begin() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS big (data BLOB)"))
            session.execute(text("INSERT INTO big VALUES (zeroblob(1048576))"))

    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 40000)) as http:
        fill(small_disk)
        for path in ("/write-file", "/write-row"):
            answer = http.post(path)
            assert answer.status_code == 507, (path, answer.text)
            assert answer.json()["error"]["code"] == "insufficient_storage"
            assert answer.headers["x-should-retry"] == "false"  # not at once: no room yet
