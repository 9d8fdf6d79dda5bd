"""Real servers for the API tests: `moviola serve` in a subprocess, on a free loopback port.

The official `openai` SDK is the client. One server with a worker is shared by most tests; a
second one, with no worker (so jobs stay queued), API keys and small limits, serves the
tests of refusals. The crash test starts its own.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from PIL import Image

from moviola.store import db, keys

MOVIOLA = str(Path(sys.executable).parent / "moviola")
BASE_ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=tiny,sora-2-pro=tiny-ltx",
    "MOVIOLA_X264_PRESET": "ultrafast",
    "MOVIOLA_POLL_AFTER_MS": "100",  # the SDK's poll helper waits what the server says
    "MOVIOLA_LOG_FORMAT": "text",
    "HF_HUB_OFFLINE": "1",
    # One thread per worker: on a small shared CPU, torch's spinning thread pool otherwise
    # slows tiny renders down tenfold whenever anything else runs.
    "OMP_NUM_THREADS": "1",
}
SMALL = {"size": "160x96", "seconds": "1"}  # a job that renders in a fraction of a second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.env = {**os.environ, **BASE_ENV, "MOVIOLA_DATA_DIR": str(data_dir), **(env or {})}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [MOVIOLA, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not become healthy: {self.log.read_text()[-3000:]}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def client(self, api_key: str = "unused", **kwargs) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **kwargs)

    def sessions(self):
        engine = db.connect(f"sqlite:///{self.data_dir / 'moviola.db'}")
        return db.sessions(engine)

    def create_key(self, name: str = "test") -> str:
        _, secret = keys.create_key(self.sessions(), name)
        return secret


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    # Its image_url tests fetch from the test server itself, on loopback.
    running = Server(
        tmp_path_factory.mktemp("main") / "data", env={"MOVIOLA_FETCH_PRIVATE_URLS": "true"}
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def strict(tmp_path_factory) -> Server:
    """No worker (jobs stay queued), API keys required, small limits."""
    running = Server(
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


@pytest.fixture(scope="session")
def small() -> dict[str, str]:
    return dict(SMALL)


@pytest.fixture
def make_server(tmp_path):
    """Start extra servers; each is stopped at the end of the test."""
    started: list[Server] = []

    def make(data_dir: Path | None = None, env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir or tmp_path / f"data{len(started)}", env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
