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


def _json(value) -> tuple[int, dict[str, str], bytes]:
    import json

    return 200, {"content-type": "application/json"}, json.dumps(value).encode()


def _video(video_id, status="completed", **extra):
    return {"id": video_id, "object": "video", "status": status, "model": "sora-2", **extra}


def _import(settings, url, **api_options):
    from moviola.importer.library import Library
    from moviola.importer.remote import VideosApi
    from moviola.importer.run import run_import

    api = VideosApi(url, "sk-secret", sleep=lambda s: None, **api_options)
    try:
        with Library(settings) as library:
            return run_import(library, api.candidates())
    finally:
        api.close()


def test_a_listing_that_goes_round_in_circles_ends_with_an_error(fake_api):
    from moviola.importer.remote import RemoteError, VideosApi

    # `has_more` for ever, and the cursor never moves.
    url = fake_api(
        lambda r: _json(
            {"data": [_video(f"v{len(fake_api.requests)}")], "has_more": True, "last_id": "v0"}
        )
    )
    api = VideosApi(url, None)
    with pytest.raises(RemoteError, match="does not move on from v0"):
        list(api.videos())
    # A cursor that moves, over pages that list the same video again.
    url = fake_api(
        lambda r: _json(
            {"data": [_video("v1")], "has_more": True, "last_id": r.query.get("after", "") + "x"}
        )
    )
    with pytest.raises(RemoteError, match="v1 was listed twice"):
        list(VideosApi(url, None).videos())
    # A listing that ends nowhere: fresh ids and cursors, page after page.
    url = fake_api(
        lambda r: _json({"data": [_video(f"v{len(fake_api.requests)}")], "has_more": True})
    )
    with pytest.raises(RemoteError, match="more than 5 pages"):
        list(VideosApi(url, None, max_pages=5).videos())
    assert len(fake_api.requests) == 5


def test_videos_are_imported_as_their_page_arrives_and_a_bad_listing_is_reported(
    fake_api, settings, clip, tmp_path
):
    video = clip(tmp_path / "v.mp4", 1).read_bytes()

    def answer(r):
        if r.path == "/v1/videos" and "after" not in r.query:
            return _json({"data": [_video("v1")], "has_more": True, "last_id": "v1"})
        if r.path == "/v1/videos":
            return 200, {"content-type": "text/html"}, b"<html>maintenance</html>"
        if r.query.get("variant") == "video":
            return 200, {"content-type": "video/mp4"}, video
        return 404, {}, b""

    url = fake_api(answer)
    report = _import(settings, url)
    imported, listing = report.outcomes
    assert imported.status == "imported" and imported.original_id == "v1"
    assert listing.status == "failed" and listing.location == f"{url}/v1/videos"
    assert listing.reason.startswith(f"{url}/v1/videos?") and "not JSON" in listing.reason


def test_a_malformed_item_is_one_failure_ids_are_quoted_and_unfinished_videos_skipped(
    fake_api, settings, clip, tmp_path
):
    video = clip(tmp_path / "v.mp4", 1).read_bytes()
    listing = [
        "not an object",
        {"object": "video", "status": "completed"},  # no id
        _video("a/../b?c"),
        _video("rendering", status="in_progress"),
    ]

    def answer(r):
        if r.path == "/v1/videos":
            return _json({"data": listing, "has_more": False})
        if r.raw_path.startswith("/v1/videos/a%2F..%2Fb%3Fc/content?variant=video"):
            return 200, {}, video
        return 404, {}, b""

    url = fake_api(answer)
    report = _import(settings, url)
    statuses = [(o.status, o.reason) for o in report.outcomes]
    assert [s for s, _ in statuses] == ["failed", "failed", "imported", "skipped"]
    assert "no id" in statuses[0][1] and "no id" in statuses[1][1]
    assert statuses[3][1] == "not completed on the server (status 'in_progress')"
    assert report.failed == report.outcomes[:2] and report.skipped == report.outcomes[3:]


def test_not_completed_videos_do_not_fail_the_command(fake_api, tmp_path):
    url = fake_api(lambda r: _json({"data": [_video("v", status="queued")], "has_more": False}))
    done = import_from(url, tmp_path / "library")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 not ready on their server" in done.stdout and "failed 0" in done.stdout
    assert f"skipped {url}/v1/videos/v: not completed" in done.stdout.replace("\n", "")


def test_a_download_over_the_limit_is_cut_off(fake_api, settings):
    def answer(r):
        if r.path == "/v1/videos":
            return _json({"data": [_video("big"), _video("also-big")], "has_more": False})
        return 200, {}, b"\0" * 5000

    url = fake_api(answer)
    report = _import(settings, url, max_bytes=1000)
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    assert all("over 1,000 bytes" in o.reason for o in report.outcomes)
    assert not [p for p in settings.blobs_path.iterdir() if not p.name.startswith(".")]


def test_a_redirect_to_another_host_does_not_carry_the_api_key(fake_api, clip, tmp_path):
    from moviola.importer.remote import VideosApi

    video = clip(tmp_path / "v.mp4", 1).read_bytes()
    # Another address of this machine: another host, as a CDN would be.
    cdn = fake_api(lambda r: (200, {}, video), host="127.0.0.2")
    seen_elsewhere = fake_api.requests
    origin = fake_api(lambda r: (302, {"location": f"{cdn}/file.mp4"}, b""))
    seen_at_origin = fake_api.requests

    api = VideosApi(origin, "sk-secret")
    with api.download("v", "video") as body:
        assert body.read() == video
    api.close()
    assert seen_at_origin[0].headers["authorization"] == "Bearer sk-secret"
    assert "authorization" not in seen_elsewhere[0].headers


def test_retry_after_is_honoured_on_503_too_up_to_a_minute(fake_api):
    from moviola.importer.remote import VideosApi

    answers = [
        (503, {"retry-after": "3"}, b""),
        (429, {"retry-after": "7200"}, b""),
        (502, {}, b""),
        _json({"data": [], "has_more": False}),
    ]
    url = fake_api(lambda r: answers.pop(0))
    slept = []
    assert list(VideosApi(url, None, sleep=slept.append).videos()) == []
    assert slept == [3.0, 60.0, 2.0]  # asked for; capped; the growing pause (0.5, 1, 2)
