"""Clips, sidecars and archives for the import tests, made here with PyAV and Pillow.

Every clip's frames come from its seed, so two clips with different seeds have different bytes
(and so different SHA-256s), and the same seed makes the same picture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from moviola.config import Settings


def _frames(seed: int, count: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, height // 8, width // 8, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2).repeat(count, axis=0)
    for index in range(count):  # a bar that moves: every frame differs
        frames[index, :, (index * 4) % width : (index * 4) % width + 4] = 255
    return frames


def write_clip(
    path: Path,
    seed: int = 0,
    *,
    frames: int = 8,
    size: tuple[int, int] = (64, 48),
    fps: int = 8,
    tags: dict[str, str] | None = None,
    container: str | None = None,
) -> Path:
    """A short clip at `path`: H.264 in MP4/MOV, VP9 in WebM, or a GIF, by suffix (or
    `container`, to write one format under another's name)."""
    width, height = size
    kind = container or path.suffix.lower().lstrip(".")
    codec, pix_fmt, fmt = {
        "mp4": ("libx264", "yuv420p", "mp4"),
        "mov": ("libx264", "yuv420p", "mov"),
        "webm": ("libvpx-vp9", "yuv420p", "webm"),
        "gif": ("gif", "rgb8", "gif"),
    }[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        for key, value in (tags or {}).items():
            out.metadata[key] = value
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for array in _frames(seed, frames, width, height):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def clip() -> Callable[..., Path]:
    """`clip(path, seed, frames=…, size=…, tags=…)` writes a clip and returns its path."""
    return write_clip


@pytest.fixture(scope="session")
def sidecar() -> Callable[..., Path]:
    """`sidecar(path, {...})` writes JSON; `sidecar(path, "text")` writes a .txt prompt."""

    def write(path: Path, content: dict | str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        return path

    return write


@pytest.fixture
def settings(tmp_path) -> Settings:
    """An empty library of its own."""
    return Settings(data_dir=tmp_path / "library")


@pytest.fixture
def fake_api():
    """`fake_api(answer, host=…)` serves HTTP on loopback and returns its base URL:
    `answer(request)` gets a `Request` (path, query, headers) and returns (status, headers,
    body). For what a real Videos-API server never does (loop, lie, redirect elsewhere);
    `.requests` lists what the server started last was asked."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    servers = []

    class Request:
        def __init__(self, handler: BaseHTTPRequestHandler):
            parts = urlsplit(handler.path)
            self.path = parts.path
            self.raw_path = handler.path
            self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.headers = {k.lower(): v for k, v in handler.headers.items()}

    def start(
        answer: Callable[[Request], tuple[int, dict[str, str], bytes]], host: str = "127.0.0.1"
    ) -> str:
        requests: list[Request] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                request = Request(self)
                requests.append(request)
                status, headers, body = answer(request)
                self.send_response(status)
                for name, value in {**headers, "content-length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((host, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        start.requests = requests
        return f"http://{host}:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
