"""Importing from another Videos-API server: a real `moviola serve` holding 25 videos.

The importer pages through `GET /videos` (pages smaller than the library, so `has_more` is
followed), downloads each video with its thumbnail and spritesheet, and re-links remixes to
the ids their parents get here. A small proxy in front of the server answers 429 and 5xx first,
as a busy server would, to show the importer waits and retries.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

MOVIOLA = str(Path(sys.executable).parent / "moviola")


@pytest.fixture(scope="module")
def remote(tmp_path_factory, server_class, small):
    """A server with 25 completed videos: 15 made from prompts, 10 remixes (two of them
    remixes of remixes)."""
    server = server_class(tmp_path_factory.mktemp("remote") / "data").start()
    try:
        client = server.client()
        made = [client.videos.create(prompt=f"scene {i}", **small) for i in range(15)]
        done = [_wait(client, video.id) for video in made]
        remixes = [client.videos.remix(done[i].id, prompt=f"remix {i}") for i in range(8)]
        remixes = [_wait(client, video.id) for video in remixes]
        for parent in remixes[:2]:
            remixes.append(_wait(client, client.videos.remix(parent.id, prompt="again").id))
        videos = done + remixes
        assert len(videos) == 25 and all(v.status == "completed" for v in videos)
        yield server, {v.id: v for v in videos}
    finally:
        server.stop()


def _wait(client, video_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in ("completed", "failed"):
            return video
        time.sleep(0.1)
    raise AssertionError(f"{video_id} did not finish")


def import_from(url, data_dir, *args):
    return subprocess.run(
        [MOVIOLA, "import", "--from-api", url, "--data-dir", str(data_dir), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def test_every_video_comes_with_its_files_metadata_and_lineage(remote, tmp_path, make_server):
    server, videos = remote
    library = tmp_path / "library"
    done = import_from(server.url, library, "--page-size", "7", "--api-key", "k")
    assert done.returncode == 0, done.stderr
    assert "imported 25" in done.stdout

    again = import_from(server.url, library, "--page-size", "7")
    assert again.returncode == 0, again.stderr
    assert "imported 0" in again.stdout and "skipped 25 as duplicate" in again.stdout

    # What the library serves, read back with the openai SDK from a server over it.
    mine = make_server(data_dir=library).start().client()
    here = list(mine.videos.list(limit=100, order="asc"))
    assert len(here) == 25 and all(v.status == "completed" for v in here)
    by_original = {v.model_extra["moviola"]["origin"]["original_id"]: v for v in here}
    assert set(by_original) == set(videos)
    theirs = server.client()
    for original_id, there in videos.items():
        video = by_original[original_id]
        assert video.id != original_id
        assert video.model_extra["moviola"]["origin"]["source"] == "api"
        assert (video.prompt, video.model, video.size, video.seconds) == (
            there.prompt,
            there.model,
            there.size,
            there.seconds,
        )
        assert video.created_at == there.created_at
        parent = there.remixed_from_video_id
        assert video.remixed_from_video_id == (by_original[parent].id if parent else None)
        for variant in ("video", "thumbnail", "spritesheet"):
            ours = mine.videos.download_content(video.id, variant=variant).read()
            assert ours == theirs.videos.download_content(original_id, variant=variant).read()


class _Busy(BaseHTTPRequestHandler):
    """Answers the first request for each listed path with an error, then passes through."""

    upstream: str
    plan: dict[str, list[tuple[int, dict[str, str]]]]
    log: list[tuple[float, str, int]]
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            key = self.path.split("&after=")[0] if "after=" not in self.path else self.path
            errors = self.plan.get(key) or self.plan.get(self.path.split("?")[0])
            planned = errors.pop(0) if errors else None
        if planned is not None:
            status, headers = planned
            self.log.append((time.monotonic(), self.path, status))
            body = b'{"error": {"message": "busy", "type": "server_error"}}'
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            return
        response = httpx.get(self.upstream + self.path, timeout=60)
        self.log.append((time.monotonic(), self.path, response.status_code))
        self.send_response(response.status_code)
        for name in ("content-type", "retry-after"):
            if name in response.headers:
                self.send_header(name, response.headers[name])
        self.send_header("content-length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    def log_message(self, *args):
        pass


def test_a_busy_server_is_waited_for_and_retried(remote, tmp_path):
    server, videos = remote
    first, second = sorted(videos, key=lambda i: videos[i].created_at)[:2]
    handler = type(
        "Busy",
        (_Busy,),
        {
            "upstream": server.url,
            "log": [],
            "plan": {
                "/v1/videos?limit=10&order=asc": [(429, {"retry-after": "1"})],
                f"/v1/videos/{first}/content": [(503, {}), (502, {})],
                f"/v1/videos/{second}/content": [(429, {"retry-after-ms": "200"})],
            },
        },
    )
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        done = import_from(url, tmp_path / "library", "--page-size", "10")
    finally:
        proxy.shutdown()
    assert done.returncode == 0, done.stderr
    assert "imported 25" in done.stdout

    log = handler.log
    lists = [(t, status) for t, path, status in log if path.startswith("/v1/videos?")]
    assert [status for _, status in lists] == [429, 200, 200, 200]  # 25 in pages of 10
    assert lists[1][0] - lists[0][0] >= 0.9  # it waited what retry-after asked
    statuses = [s for _, p, s in log if p.startswith(f"/v1/videos/{first}/content?variant=video")]
    assert statuses == [503, 502, 200]
    statuses = [s for _, p, s in log if p.startswith(f"/v1/videos/{second}/content?variant=video")]
    assert statuses == [429, 200]


def test_an_export_of_rendered_videos_comes_back_as_the_same_library(remote, tmp_path):
    """Export the server's own library and import it into an empty data dir."""
    server, videos = remote
    for dest in (tmp_path / "out", tmp_path / "out.zip"):
        exported = subprocess.run(
            [MOVIOLA, "export", str(dest), "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert exported.returncode == 0, exported.stderr
        assert "exported 25 videos" in exported.stdout
        library = tmp_path / f"library-{dest.name}"
        done = subprocess.run(
            [MOVIOLA, "import", str(dest), "--data-dir", str(library)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "imported 25" in done.stdout

        before, after = _rows(server.data_dir), _rows(library)
        assert set(after) == set(videos) == set(before)  # the same ids
        for video_id, row in after.items():
            was = before[video_id]
            for name in ("prompt", "model", "engine_model", "size", "seconds", "params"):
                assert getattr(row, name) == getattr(was, name), name
            assert row.created_at == pytest.approx(was.created_at, abs=1e-3)
            assert row.remixed_from_video_id == was.remixed_from_video_id
            assert row.source_video_id == was.source_video_id
            assert row.origin["source"] == "export" and row.origin["kind"] == was.kind
            assert row.result["seed"] == was.result["seed"]
            for variant in ("video", "thumbnail", "spritesheet"):
                assert row.files[variant]["sha256"] == _sha(was.files[variant]["path"])
                assert _sha(row.files[variant]["path"]) == row.files[variant]["sha256"]
            assert row.content_sha256 == row.files["video"]["sha256"]
            assert row.credentials == was.credentials


def _rows(data_dir):
    from sqlalchemy import select

    from moviola.store import db
    from moviola.store.models import Video

    engine = db.connect(f"sqlite:///{data_dir / 'moviola.db'}")
    try:
        with db.sessions(engine)() as session:
            return {row.id: row for row in session.execute(select(Video)).scalars()}
    finally:
        engine.dispose()


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
