"""The application in process (no worker): failures nobody should see, and request limits."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from moviola.api.app import create_app
from moviola.config import Settings
from moviola.store.models import Video, new_id

LOCAL = ("127.0.0.1", 40000)


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**settings) -> TestClient:
        app = create_app(Settings(data_dir=tmp_path / "data", workers=0, **settings))

        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret detail /srv/internal")

        client = TestClient(
            app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False, client=LOCAL
        )
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_an_unexpected_error_is_a_500_without_internals(make_client):
    answer = make_client().get("/boom")
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["type"] == "server_error" and "secret" not in error["message"]
    assert answer.headers["x-request-id"] in error["message"]


def test_requests_per_minute(make_client):
    client = make_client(requests_per_minute=2)
    assert [client.get("/v1/videos").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/v1/videos")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_only_loopback_is_keyless(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", workers=0))
    with TestClient(app, client=("192.0.2.7", 40000)) as remote:
        answer = remote.get("/v1/videos")
    assert answer.status_code == 401 and "keys create" in answer.json()["error"]["message"]


def test_health_without_workers(make_client):
    health = make_client().get("/healthz")
    assert health.status_code == 200 and health.json()["workers"] == []


def insert(client: TestClient, **fields) -> str:
    row = Video(
        id=new_id("video"),
        seq=time.time_ns(),
        model="sora-2",
        engine_model="tiny",
        prompt="p",
        seconds="4",
        size="160x96",
        **fields,
    )
    with client.app.state.sessions.begin() as session:
        session.add(row)
    return row.id


def test_a_failed_video_says_why(make_client):
    client = make_client()
    video_id = insert(
        client, status="failed", error_code="generation_failed", error_message="out of memory"
    )
    video = client.get(f"/v1/videos/{video_id}").json()
    assert video["status"] == "failed"
    assert video["error"] == {"code": "generation_failed", "message": "out of memory"}
    assert video["completed_at"] is None and video["remixed_from_video_id"] is None
    conflict = client.post(f"/v1/videos/{video_id}/remix", json={"prompt": "again"})
    assert conflict.status_code == 409 and conflict.json()["error"]["param"] == "video_id"


def test_expiry_follows_the_retention_policy(make_client):
    client = make_client(retention_hours=2)
    done = time.time()
    video_id = insert(client, status="completed", completed_at=done, progress=100)
    video = client.get(f"/v1/videos/{video_id}").json()
    assert video["expires_at"] == int(done + 7200)


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "evil.example"},  # DNS rebinding: a page's own name, resolved to 127.0.0.1
        {"origin": "http://evil.example"},  # a cross-site form post
        {"origin": "null"},  # a sandboxed or file: page
    ],
)
def test_keyless_access_refuses_web_pages_from_elsewhere(make_client, headers):
    answer = make_client().post("/v1/videos", data={"prompt": "a"}, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "http://localhost:8000"},
        {"origin": "http://127.0.0.1:8000", "host": "localhost:8000"},
        {"host": "[::1]:8000"},
        {"host": "studio.localhost"},
    ],
)
def test_keyless_access_serves_local_programs_and_pages(make_client, headers):
    assert make_client().get("/v1/videos", headers=headers).status_code == 200
