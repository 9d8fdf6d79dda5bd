"""The wire itself, with plain HTTP: bodies in every encoding, headers, ranges, the envelope."""

from __future__ import annotations

import httpx
import pytest
from openai import APIStatusError

ENVELOPE = {"message", "type", "param", "code"}


def test_json_bodies_on_every_post(http, done_video, small):
    created = http.post("/v1/videos", json={"prompt": "json", "seconds": 1, "size": "160x96"})
    assert created.status_code == 200, created.text
    assert created.json()["seconds"] == "1" and created.json()["status"] == "queued"

    source = {"video": {"id": done_video.id}}
    for path, body in (
        (f"/v1/videos/{done_video.id}/remix", {"prompt": "again", "strength": 0.5}),
        ("/v1/videos/edits", {"prompt": "edit", **source}),
        ("/v1/videos/extensions", {"prompt": "more", "seconds": "4", **source}),
    ):
        answer = http.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["object"] == "video"
    # A plain id for `video` works too, as does a url-encoded form.
    assert http.post("/v1/videos/edits", json={"prompt": "e", "video": done_video.id}).is_success
    form = http.post("/v1/videos", data={"prompt": "form", **small, "seed": "5"})
    assert form.status_code == 200 and form.json()["moviola"]["seed"] == 5
    bracketed = http.post("/v1/videos/edits", data={"prompt": "e", "video[id]": done_video.id})
    assert bracketed.status_code == 200, bracketed.text


def test_bodies_that_are_not_objects_are_400(http):
    for content, kind in ((b"[1]", "application/json"), (b"{", "application/json")):
        answer = http.post("/v1/videos", content=content, headers={"content-type": kind})
        assert answer.status_code == 400 and set(answer.json()["error"]) == ENVELOPE
    answer = http.post("/v1/videos", content=b"<x/>", headers={"content-type": "text/xml"})
    assert answer.status_code == 400
    missing = http.post("/v1/videos", json={"size": "160x96"}).json()["error"]
    assert missing["param"] == "prompt" and missing["message"] == "prompt is required"


def test_retrieve_says_how_often_to_poll(http, done_video):
    answer = http.get(f"/v1/videos/{done_video.id}")
    assert answer.headers["openai-poll-after-ms"] == "100"
    assert answer.headers["x-request-id"].startswith("req_")


def test_range_requests_on_content(http, done_video, done_mp4):
    whole = http.get(f"/v1/videos/{done_video.id}/content")
    assert whole.headers["content-type"] == "video/mp4"
    assert int(whole.headers["content-length"]) == len(done_mp4) == len(whole.content)
    assert whole.headers["accept-ranges"] == "bytes"

    part = http.get(f"/v1/videos/{done_video.id}/content", headers={"range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(done_mp4)}"
    assert part.content == done_mp4[100:200]
    tail = http.get(f"/v1/videos/{done_video.id}/content", headers={"range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == done_mp4[-10:]

    for variant, kind in (("thumbnail", "image/webp"), ("spritesheet", "image/jpeg")):
        answer = http.get(f"/v1/videos/{done_video.id}/content", params={"variant": variant})
        assert answer.headers["content-type"] == kind
    bad = http.get(f"/v1/videos/{done_video.id}/content", params={"variant": "poster"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "variant"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=999999999-",  # past the end
        "bytes=200-100",  # backwards
        "bytes=abc",
        "bytes=",
    ],
)
def test_a_range_that_cannot_be_served_is_416_in_the_envelope(client, done_video, done_mp4, header):
    with pytest.raises(APIStatusError) as caught:
        client.videos.download_content(done_video.id, extra_headers={"range": header})
    assert caught.value.status_code == 416
    assert caught.value.response.headers["content-range"] == f"bytes */{len(done_mp4)}"
    assert set(caught.value.body) == ENVELOPE
    assert caught.value.body["code"] == "range_not_satisfiable"


def test_a_range_in_a_unit_other_than_bytes_is_ignored(client, done_video, done_mp4):
    # RFC 9110: a server must ignore a Range in a unit it does not know, and send it all.
    whole = client.videos.download_content(done_video.id, extra_headers={"range": "items=0-1"})
    assert whole.response.status_code == 200 and whole.read() == done_mp4


def test_unknown_routes_and_methods_answer_in_the_envelope(http):
    for method, path, status in (
        ("GET", "/v1/nothing", 404),
        ("GET", "/nothing", 404),  # `/` itself is the Studio
        ("PUT", "/v1/videos", 405),
        ("DELETE", "/v1/videos/characters/char_1", 405),
    ):
        answer = http.request(method, path)
        assert answer.status_code == status
        assert set(answer.json()["error"]) == ENVELOPE


def test_a_streamed_body_is_cut_off_at_the_limit(make_server):
    server = make_server(env={"MOVIOLA_WORKERS": "0", "MOVIOLA_MAX_UPLOAD_BYTES": "1000"}).start()

    def chunks():  # no Content-Length: the server must count
        yield b'{"prompt": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    answer = httpx.post(
        f"{server.url}/v1/videos", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "header",
    [
        # uvicorn itself rewrites the client address from X-Forwarded-For (it trusts
        # 127.0.0.1); these two reach Moviola's own check untouched.
        {"x-real-ip": "203.0.113.9"},
        {"forwarded": "for=203.0.113.9"},
    ],
)
def test_requests_through_a_proxy_are_not_local(http, header):
    answer = http.get("/v1/videos", headers=header)
    assert answer.status_code == 401


def test_openapi_documents_the_bodies(http):
    schema = http.get("/openapi.json").json()
    create = schema["paths"]["/v1/videos"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(create)
    assert "CreateVideoRequest" in schema["components"]["schemas"]
    assert http.get("/docs").status_code == 200


def test_health_and_metrics(http, done_video):
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["workers"][0]["alive"] is True
    metrics = http.get("/metrics").text
    for name in (
        "moviola_queue_depth",
        'moviola_videos{status="completed"}',
        'moviola_stage_seconds_count{stage="denoising"}',
        "moviola_worker_restarts_total",
    ):
        assert name in metrics


@pytest.mark.parametrize("path", ["/v1/videos/video_x", "/v1/videos/video_x/content"])
def test_unknown_videos_are_404_in_the_envelope(http, path):
    answer = http.get(path)
    assert answer.status_code == 404 and answer.json()["error"]["param"] == "video_id"


def test_deeply_nested_bodies_are_refused_not_crashed_on(http):
    deep_json = "[" * 100_000 + "]" * 100_000
    answer = http.post(
        "/v1/videos", content=deep_json, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and "nested" in answer.json()["error"]["message"]
    deep_field = "a" + "[0]" * 3000
    answer = http.post("/v1/videos", data={deep_field: "x", "prompt": "a"})
    assert answer.status_code == 400 and "nested" in answer.json()["error"]["message"]
