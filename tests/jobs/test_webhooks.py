"""Webhook delivery to a real HTTP receiver, verified with the real `openai` SDK."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openai import InvalidWebhookSignatureError, OpenAI
from sqlalchemy import update

from moviola.config import Settings
from moviola.errors import MoviolaError
from moviola.jobs import queue
from moviola.jobs.outbox import Outbox, endpoint_name, generate_secret
from moviola.store import db
from moviola.store.models import Video, WebhookEvent, new_id

SECRET = generate_secret()


class Receiver:
    """A loopback HTTP server that records every request and answers the statuses given."""

    def __init__(self):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answered in order; 200 once used up
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(db.sqlite_url(tmp_path))
    db.migrate(engine)
    yield db.sessions(engine)
    engine.dispose()


def settings(tmp_path, *urls, **overrides):
    return Settings(data_dir=tmp_path, webhook_urls=list(urls), webhook_secret=SECRET, **overrides)


def finish_job(sessions, *, failed=False) -> str:
    """A job taken through the queue to completed (or failed), as a worker would."""
    video_id = new_id("video")
    with sessions.begin() as session:
        session.add(
            Video(
                id=video_id,
                seq=time.time_ns(),
                model="tiny",
                engine_model="tiny",
                seconds="1",
                size="64x64",
                max_attempts=1,
            )
        )
    assert queue.claim(sessions, "w1").id == video_id
    if failed:
        queue.fail(sessions, video_id, "w1", code="boom", message="it broke", retry=False)
    else:
        assert queue.complete(sessions, video_id, "w1", files={}, result={})
    return video_id


def event_of(sessions, video_id) -> WebhookEvent:
    with sessions() as session:
        return session.query(WebhookEvent).filter_by(video_id=video_id).one()


def make_due(sessions, event_id):
    """Time passes: the event's next attempt is now."""
    with sessions.begin() as session:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(next_attempt_at=time.time() - 1)
        )


def unwrap(request, secret=SECRET):
    headers, body = request
    return OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(body, headers)


def test_a_completed_job_is_delivered_signed_and_the_sdk_verifies_it(tmp_path, sessions, receiver):
    video_id = finish_job(sessions)
    event = event_of(sessions, video_id)

    assert Outbox(settings(tmp_path, receiver.url), sessions).deliver_due() == 1

    [request] = receiver.requests
    headers, body = request
    verified = unwrap(request)
    assert verified.type == "video.completed"
    assert verified.data.id == video_id
    assert verified.id == event.id == headers["webhook-id"]
    assert json.loads(body) == {
        "id": event.id,
        "object": "event",
        "created_at": int(event.created_at),
        "type": "video.completed",
        "data": {"id": video_id},
    }
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    with pytest.raises(InvalidWebhookSignatureError):
        unwrap(request, secret=generate_secret())

    delivered = event_of(sessions, video_id)
    assert delivered.delivered_at is not None and delivered.last_error is None
    assert delivered.attempts == 1
    assert Outbox(settings(tmp_path, receiver.url), sessions).deliver_due() == 0
    assert len(receiver.requests) == 1  # delivered once, never again


def test_a_failed_job_sends_video_failed(tmp_path, sessions, receiver):
    video_id = finish_job(sessions, failed=True)
    Outbox(settings(tmp_path, receiver.url), sessions).deliver_due()
    verified = unwrap(receiver.requests[0])
    assert (verified.type, verified.data.id) == ("video.failed", video_id)


def test_a_failing_receiver_is_retried_later_with_the_same_event_id(tmp_path, sessions, receiver):
    receiver.statuses = [500]
    video_id = finish_job(sessions)
    outbox = Outbox(settings(tmp_path, receiver.url), sessions)

    assert outbox.deliver_due() == 0
    event = event_of(sessions, video_id)
    assert event.delivered_at is None and event.attempts == 1
    assert event.next_attempt_at > time.time() + 3  # backed off (5 s, less jitter)
    assert "HTTP 500" in event.last_error and "127.0.0.1" in event.last_error
    assert "/hooks" not in event.last_error  # an endpoint's path may hold its secret

    assert outbox.deliver_due() == 0  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    make_due(sessions, event.id)
    assert outbox.deliver_due() == 1
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == event.id
    assert first[1] == second[1]
    assert unwrap(second).data.id == video_id
    event = event_of(sessions, video_id)
    assert event.delivered_at is not None and event.attempts == 2 and event.last_error is None


def test_a_pending_event_survives_a_restart(tmp_path, sessions, receiver):
    receiver.statuses = [503]
    video_id = finish_job(sessions)
    Outbox(settings(tmp_path, receiver.url), sessions).deliver_due()
    make_due(sessions, event_of(sessions, video_id).id)

    # A new process: its own engine and outbox, the same database.
    engine = db.connect(db.sqlite_url(tmp_path))
    try:
        restarted = Outbox(settings(tmp_path, receiver.url), db.sessions(engine))
        assert restarted.deliver_due() == 1
    finally:
        engine.dispose()
    assert len(receiver.requests) == 2
    assert event_of(sessions, video_id).delivered_at is not None


def test_an_unreachable_url_records_the_error_and_backs_off(tmp_path, sessions):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    video_id = finish_job(sessions)
    outbox = Outbox(settings(tmp_path, f"http://127.0.0.1:{port}/hooks"), sessions)

    assert outbox.deliver_due() == 0
    first = event_of(sessions, video_id)
    assert "ConnectError" in first.last_error and first.delivered_at is None
    assert first.next_attempt_at > time.time() + 3

    make_due(sessions, first.id)
    outbox.deliver_due()
    second = event_of(sessions, video_id)
    assert second.attempts == 2
    assert second.next_attempt_at > time.time() + 20  # the second wait is longer (30 s)


def test_it_gives_up_after_the_configured_attempts(tmp_path, sessions, receiver):
    receiver.statuses = [500, 500, 500]
    video_id = finish_job(sessions)
    outbox = Outbox(settings(tmp_path, receiver.url, webhook_max_attempts=2), sessions)
    for _ in range(3):
        outbox.deliver_due()
        make_due(sessions, event_of(sessions, video_id).id)
    event = event_of(sessions, video_id)
    assert len(receiver.requests) == 2
    assert event.attempts == 2 and event.delivered_at is None
    assert "gave up after 2 attempts" in event.last_error


def test_every_url_gets_the_event_and_only_failed_ones_are_retried(tmp_path, sessions, receiver):
    other = Receiver()
    try:
        other.statuses = [500]
        video_id = finish_job(sessions)
        outbox = Outbox(settings(tmp_path, receiver.url, other.url), sessions)
        assert outbox.deliver_due() == 0
        assert "HTTP 500" in event_of(sessions, video_id).last_error
        make_due(sessions, event_of(sessions, video_id).id)
        assert outbox.deliver_due() == 1
        assert (len(receiver.requests), len(other.requests)) == (1, 2)
        assert unwrap(other.requests[1]).data.id == video_id
    finally:
        other.close()


def test_the_thread_delivers_without_being_asked(tmp_path, sessions, receiver):
    outbox = Outbox(settings(tmp_path, receiver.url), sessions, poll_s=0.05)
    outbox.start()
    try:
        video_id = finish_job(sessions)
        deadline = time.time() + 10
        while not receiver.requests and time.time() < deadline:
            time.sleep(0.02)
    finally:
        outbox.stop()
    assert unwrap(receiver.requests[0]).data.id == video_id


def test_without_urls_events_are_settled_and_nothing_is_sent(tmp_path, sessions):
    video_id = finish_job(sessions)
    assert Outbox(Settings(data_dir=tmp_path), sessions).deliver_due() == 1
    assert event_of(sessions, video_id).delivered_at is not None


@pytest.mark.parametrize(
    ("secret", "reason"),
    [(None, "SECRET is not set"), ("hunter2", "whsec_"), ("whsec_!!!", "base64")],
)
def test_urls_without_a_usable_secret_refuse_to_start(tmp_path, sessions, secret, reason):
    config = Settings(
        data_dir=tmp_path, webhook_urls=["http://127.0.0.1:9/"], webhook_secret=secret
    )
    with pytest.raises(MoviolaError, match=reason):
        Outbox(config, sessions)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/s3cr3t?token=x", "https://hooks.example.com/…"),
        ("http://user:pw@10.0.0.5:8080/", "http://10.0.0.5:8080"),
        ("https://example.com", "https://example.com"),
    ],
)
def test_logs_and_errors_name_an_endpoint_by_its_host_only(url, shown):
    assert endpoint_name(url) == shown
