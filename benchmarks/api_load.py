"""The Videos API under load, and what the server adds to a generation.

Starts a real `moviola serve` (tiny model, temporary data dir) and prints:

1. polling load: N concurrent clients repeating `GET /v1/videos/{id}` for a few seconds while a
   tiny job renders — requests/s, p50 and p99 latency (goal on a 2-core machine: ≥ 1,000 req/s,
   p99 ≤ 50 ms);
2. queue pickup: from `create` returning to the worker starting the job, on an idle server
   (goal ≤ 100 ms), read from the job's row;
3. end to end: a tiny job through the API (create → completed, polled every 20 ms) against the
   same request through `moviola generate`, side by side (goal ≤ 1.2×). The CLI pays for
   starting Python and loading the model each time; the server keeps both warm, so the
   comparison is also given against the CLI's own reported in-process time.

    python benchmarks/api_load.py [--clients 200] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MOVIOLA = str(Path(sys.executable).parent / "moviola")
REQUEST = {"prompt": "a paper boat drifting", "model": "sora-2", "seconds": "2", "size": "320x192"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "MOVIOLA_DATA_DIR": str(data_dir),
        "MOVIOLA_MODEL_ALIASES": "sora-2=tiny",
        "HF_HUB_OFFLINE": "1",
    }
    server = subprocess.Popen(
        [MOVIOLA, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become healthy within 60 s")


def wait_done(client: httpx.Client, video_id: str, every: float = 0.02) -> dict:
    while True:
        video = client.get(f"/v1/videos/{video_id}").json()
        if video["status"] in ("completed", "failed"):
            return video
        time.sleep(every)


async def poll_load(base: str, video_id: str, clients: int, duration: float) -> list[float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def one_client() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await client.get(f"/v1/videos/{video_id}")
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        server = start_server(data_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                warm = client.post("/v1/videos", json=REQUEST).json()  # loads the model
                wait_done(client, warm["id"])

                # 2. queue pickup on an idle server.
                pickups = []
                for _ in range(5):
                    video = client.post("/v1/videos", json=REQUEST).json()
                    wait_done(client, video["id"])
                    with sqlite3.connect(data_dir / "moviola.db") as db:
                        created, started = db.execute(
                            "select created_at, started_at from videos where id = ?",
                            (video["id"],),
                        ).fetchone()
                    pickups.append(started - created)

                # 3. end to end, warm server.
                api_times = []
                for _ in range(3):
                    started = time.perf_counter()
                    video = client.post("/v1/videos", json=REQUEST).json()
                    wait_done(client, video["id"])
                    api_times.append(time.perf_counter() - started)

                # 1. polling load while a job renders.
                running = client.post("/v1/videos", json={**REQUEST, "seconds": "8"}).json()
                latencies = asyncio.run(poll_load(base, running["id"], args.clients, args.duration))
                wait_done(client, running["id"])
        finally:
            server.terminate()
            server.wait(timeout=30)

        cli_times = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [
                    MOVIOLA,
                    "generate",
                    REQUEST["prompt"],
                    "--model",
                    "tiny",
                    "--seconds",
                    "2",
                    "--size",
                    REQUEST["size"],
                    "-o",
                    str(Path(tmp) / "cli.mp4"),
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"},
            )
            cli_times.append(time.perf_counter() - started)

    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    rate = len(latencies) / args.duration
    api, cli = statistics.median(api_times), statistics.median(cli_times)
    print(f"polling: {args.clients} clients for {args.duration:g} s while a job renders")
    print(
        f"  {rate:,.0f} req/s   p50 {p50:.1f} ms   p99 {p99:.1f} ms   "
        f"(goal ≥ 1,000 req/s, p99 ≤ 50 ms)"
    )
    print(
        f"queue pickup when idle: median {statistics.median(pickups) * 1000:.0f} ms, "
        f"max {max(pickups) * 1000:.0f} ms (goal ≤ 100 ms)"
    )
    print(
        f"tiny job end to end: API {api:.2f} s, `moviola generate` {cli:.2f} s "
        f"→ {api / cli:.2f}x (goal ≤ 1.2x)"
    )


if __name__ == "__main__":
    main()
