"""`/healthz` and `/metrics` are public, for probes and scrapers; what names a video is not."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from moviola.api.app import create_app
from moviola.config import Settings
from moviola.jobs.supervisor import WorkerStatus
from moviola.store import keys


@pytest.fixture
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", workers=0))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 40000)):
        # One worker, busy with a job.
        busy = WorkerStatus("worker-0", 4242, "cpu", True, 0, current_job="video_running")
        app.state.background.supervisor.status = lambda: [busy]
        yield app


def from_(app, address: str) -> TestClient:
    # Outside `with`: the running app's state is kept, not started again.
    return TestClient(app, base_url="http://127.0.0.1:8000", client=(address, 40000))


def current_jobs(app, headers=None, address="127.0.0.1"):
    health = from_(app, address).get("/healthz", headers=headers)
    assert health.status_code == 200 and health.json()["workers"][0]["alive"]
    return [w["current_job"] for w in health.json()["workers"]]


def test_with_no_key_the_local_user_sees_the_running_jobs(app):
    assert current_jobs(app) == ["video_running"]
    assert current_jobs(app, address="192.0.2.7") == [None]  # not from elsewhere


def test_once_a_key_exists_running_jobs_show_only_with_one(app):
    _, secret = keys.create_key(app.state.sessions, "ops")
    assert current_jobs(app) == [None]
    assert current_jobs(app, {"authorization": "Bearer sk-wrong"}) == [None]
    assert current_jobs(app, {"authorization": f"Bearer {secret}"}) == ["video_running"]


def test_counts_stay_public_once_a_key_exists(app):
    keys.create_key(app.state.sessions, "ops")
    http = from_(app, "192.0.2.7")
    health = http.get("/healthz").json()
    assert (health["queued"], health["in_progress"]) == (0, 0)
    assert "moviola_queue_depth 0.0" in http.get("/metrics").text


def test_an_assistant_that_cannot_answer_is_reported_without_failing_the_probe(app):
    health = from_(app, "192.0.2.7").get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assistant = health.json()["assistant"]
    assert (assistant["backend"], assistant["ready"]) == ("local", False)
    assert "is not on this machine" in assistant["reason"]
