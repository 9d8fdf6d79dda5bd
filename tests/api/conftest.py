"""Real servers for the API tests: `moviola serve` in a subprocess, on a free loopback port.

The official `openai` SDK is the client. One server with a worker is shared by most tests; a
second one, with no worker (so jobs stay queued), API keys and small limits, serves the
tests of refusals. The crash test starts its own.
"""

from __future__ import annotations

import io

import httpx
import pytest
from openai import OpenAI
from PIL import Image


@pytest.fixture(scope="session")
def server(tmp_path_factory, server_class):
    # Its image_url tests fetch from the test server itself, on loopback.
    running = server_class(
        tmp_path_factory.mktemp("main") / "data", env={"MOVIOLA_FETCH_PRIVATE_URLS": "true"}
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def strict(tmp_path_factory, server_class):
    """No worker (jobs stay queued), API keys required, small limits."""
    running = server_class(
        tmp_path_factory.mktemp("strict") / "data",
        env={
            "MOVIOLA_WORKERS": "0",
            "MOVIOLA_MAX_UPLOAD_BYTES": "100000",
            "MOVIOLA_MAX_QUEUED_PER_KEY": "1",
        },
    ).start()
    running.create_key("first")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server) -> OpenAI:
    return server.client()


@pytest.fixture(scope="session")
def http(server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        yield raw


@pytest.fixture(scope="session")
def done_video(client):
    """A small completed video, 4 s long, for the tests that work from one."""
    video = client.videos.create_and_poll(prompt="a paper boat", size="160x96", seconds="4")
    assert video.status == "completed", video.error
    return video


@pytest.fixture(scope="session")
def done_mp4(client, done_video) -> bytes:
    return client.videos.download_content(done_video.id).read()


def png(width: int = 160, height: int = 96) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def make_png():
    return png
