"""Every test runs offline, against an empty Hugging Face cache and its own data dir.

`make_server` starts real `moviola serve` processes (a subprocess on a free loopback port, the
tiny models behind the `sora-2` aliases) for any test that needs one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from moviola.store import db, keys

_HOME = Path(tempfile.mkdtemp(prefix="moviola-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_HOME / "hf")
os.environ["MOVIOLA_DATA_DIR"] = str(_HOME / "data")
os.environ.pop("MOVIOLA_CONFIG", None)


@pytest.fixture(scope="session")
def engine():
    """One engine for the session: tiny pipelines load once and stay cached, as in a worker."""
    from moviola.engine import Engine

    return Engine(models_dir=_HOME / "data" / "models", max_loaded=4)


MOVIOLA = str(Path(sys.executable).parent / "moviola")
BASE_ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=tiny,sora-2-pro=tiny-ltx",
    "MOVIOLA_SOUNDTRACK_MODEL": "tiny-audio",
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


@pytest.fixture(scope="session")
def server_class() -> type[Server]:
    """For session-scoped servers: `server_class(data_dir, env).start()`, stopped by the caller."""
    return Server


@pytest.fixture(scope="session")
def small() -> dict[str, str]:
    """Size and length of a job that renders in a fraction of a second."""
    return dict(SMALL)
