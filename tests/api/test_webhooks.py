"""`moviola serve` sends signed webhooks that the `openai` SDK verifies."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openai import InvalidWebhookSignatureError, OpenAI

from moviola.jobs.outbox import generate_secret

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def receiver():
    received: list[tuple[bytes, dict[str, str]]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}/hook", received
    http.shutdown()


def test_a_completed_video_is_announced_with_a_verifiable_signature(make_server, receiver):
    url, received = receiver
    secret = generate_secret()
    server = make_server(
        env={"MOVIOLA_WEBHOOK_URLS": url, "MOVIOLA_WEBHOOK_SECRET": secret}
    ).start()
    video = server.client().videos.create_and_poll(
        prompt="a kite", extra_body={"size": "160x96", "seconds": "1"}
    )
    assert video.status == "completed"

    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(received) == 1
    body, headers = received[0]
    event = OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(body, headers)
    assert event.type == "video.completed"
    assert event.data.id == video.id
    assert headers["webhook-id"] == json.loads(body)["id"]
    with pytest.raises(InvalidWebhookSignatureError):
        OpenAI(api_key="x", webhook_secret=generate_secret()).webhooks.unwrap(body, headers)
