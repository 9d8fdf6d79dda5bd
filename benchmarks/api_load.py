"""The Videos API under load, and what the server adds to a generation.

Starts a real `moviola serve` (tiny model, temporary data dir) and prints:

1. polling while a tiny job renders, two ways (goal on a 2-core machine: ≥ 1,000 req/s,
   p99 ≤ 50 ms):
   - throughput: N connections repeating `GET /v1/videos/{id}` back to back, through `wrk` when
     it is installed (a Python client saturates before the server does), else httpx;
   - latency: N clients each polling at the pace the server asks for (`openai-poll-after-ms`,
     as the SDK does), p50 and p99. Closed-loop latency with N clients is N / throughput by
     Little's law, whatever the server does, so it is not the figure a polling client sees;
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


async def poll_load(
    base: str, video_id: str, clients: int, duration: float, every: float | None
) -> list[float]:
    """`clients` pollers for `duration` s: back to back (`every` None) or each every `every` s,
    starting spread over one interval as independent clients would."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def one_client(index: int) -> None:
            if every:
                await asyncio.sleep(every * index / clients)
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await client.get(f"/v1/videos/{video_id}")
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                if every:
                    await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies


def wrk(url: str, clients: int, duration: float) -> tuple[float, float, float] | None:
    """(requests/s, p50 ms, p99 ms) from `wrk`, or None when it is not installed."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(duration))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return rate, ms("50%"), ms("99%")


def percentiles(latencies: list[float]) -> tuple[float, float]:
    latencies = sorted(latencies)
    return (latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000)


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

                # 1. polling while a job renders.
                running = client.post("/v1/videos", json={**REQUEST, "seconds": "20"}).json()
                answer = client.get(f"/v1/videos/{running['id']}")
                poll_every = int(answer.headers["openai-poll-after-ms"]) / 1000
                url = f"{base}/v1/videos/{running['id']}"
                saturated = wrk(url, args.clients, args.duration)
                if saturated is None:
                    closed = asyncio.run(
                        poll_load(base, running["id"], args.clients, args.duration, None)
                    )
                    saturated = (len(closed) / args.duration, *percentiles(closed))
                paced = asyncio.run(
                    poll_load(base, running["id"], args.clients, args.duration, poll_every)
                )
                still = client.get(f"/v1/videos/{running['id']}").json()["status"]
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

    api, cli = statistics.median(api_times), statistics.median(cli_times)
    rate, sat50, sat99 = saturated
    p50, p99 = percentiles(paced)
    print(
        f"polling by {args.clients} clients for {args.duration:g} s while a job renders "
        f"(still {still} at the end)"
    )
    print(
        f"  back to back: {rate:,.0f} req/s, p50 {sat50:.0f} ms, p99 {sat99:.0f} ms "
        "(goal ≥ 1,000 req/s)"
    )
    print(
        f"  each every {poll_every * 1000:.0f} ms as the SDK polls: "
        f"{len(paced) / args.duration:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "(goal p99 ≤ 50 ms)"
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
