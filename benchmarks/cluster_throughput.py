"""Throughput on a Ray cluster: N tiny jobs through 1 actor and through 2, beside the local
executor.

Starts a Ray head on loopback (`ray start --head`, in a temporary folder) and, one after the
other, three `moviola serve` servers on fresh data dirs (SQLite; the dispatch path is the same
on PostgreSQL): the local executor with one worker process, the Ray executor with one CPU actor,
and with two. Each first renders one job per renderer untimed (starting workers or actors, loading
the model), then N jobs are created at once and timed until the last completes. Prints, side by
side: jobs/minute, the scaling ratio of 2 actors over 1, and the dispatch overhead per job of
Ray over the local executor ((Ray 1-actor wall time − local wall time) / N, both rendering one
job at a time). Goals: overhead ≤ 50 ms per job; 2 actors ≥ 1.7× one where there are cores
for them (each tiny render uses one core: on a 2-core machine the API, the dispatcher and
the Ray processes share them with the actors, so expect less there).

    python benchmarks/cluster_throughput.py [--jobs 12]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

BIN = Path(sys.executable).parent
REQUEST = {"prompt": "a paper boat drifting", "model": "sora-2", "seconds": "1", "size": "160x96"}
BASE_ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=tiny",
    "MOVIOLA_X264_PRESET": "ultrafast",
    "MOVIOLA_C2PA_SIGN": "false",
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port}")


def stop_tree(process: subprocess.Popen) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(process.pid)
        procs = [parent, *parent.children(recursive=True)]
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    process.wait(15)


def run(root: Path, name: str, env: dict[str, str], jobs: int, renderers: int = 1) -> float:
    """Wall time of `jobs` jobs created at once, after untimed warm-up jobs."""
    port = free_port()
    data = root / name
    data.mkdir()
    server = subprocess.Popen(
        [BIN / "moviola", "serve", "--port", str(port)],
        env={**os.environ, **BASE_ENV, "MOVIOLA_DATA_DIR": str(data), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=30) as client:
            # As many warm-up jobs as renderers, so that each has loaded the model.
            warm = [client.post("/videos", json=REQUEST).json()["id"] for _ in range(renderers)]
            wait_done(client, warm)
            started = time.perf_counter()
            ids = [client.post("/videos", json=REQUEST).json()["id"] for _ in range(jobs)]
            wait_done(client, ids)
            return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(60)


def wait_done(client: httpx.Client, ids: list[str], timeout: float = 600) -> None:
    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs did not finish: {sorted(pending)}")
        for video_id in list(pending):
            status = client.get(f"/videos/{video_id}").json()["status"]
            if status == "failed":
                raise RuntimeError(f"{video_id} failed")
            if status == "completed":
                pending.discard(video_id)
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mvbench"))
    ray_port = free_port()
    head = subprocess.Popen(
        [
            *(BIN / "ray", "start", "--head", "--block", "--node-ip-address", "127.0.0.1"),
            *("--port", str(ray_port), "--num-cpus", "4", "--num-gpus", "0"),
            *("--include-dashboard=false", "--disable-usage-stats", "--temp-dir", root / "ray"),
        ],
        env={**os.environ, **BASE_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(ray_port)
        ray_env = {
            "MOVIOLA_EXECUTOR": "ray",
            "MOVIOLA_RAY_ADDRESS": f"127.0.0.1:{ray_port}",
            "MOVIOLA_RAY_GPUS_PER_ACTOR": "0",
        }
        n = args.jobs
        local = run(root, "local", {"MOVIOLA_WORKERS": "1"}, n)
        one_actor = {**ray_env, "MOVIOLA_RAY_ACTORS": "1", "MOVIOLA_RAY_NAMESPACE": "b1"}
        two_actors = {**ray_env, "MOVIOLA_RAY_ACTORS": "2", "MOVIOLA_RAY_NAMESPACE": "b2"}
        one = run(root, "ray1", one_actor, n)
        two = run(root, "ray2", two_actors, n, renderers=2)
    finally:
        stop_tree(head)
        shutil.rmtree(root, ignore_errors=True)

    print(f"{n} tiny jobs ({REQUEST['size']}, {REQUEST['seconds']} s), {os.cpu_count()} cores")
    print(f"{'executor':<22}{'wall s':>10}{'jobs/min':>12}")
    for label, wall in (("local, 1 worker", local), ("ray, 1 actor", one), ("ray, 2 actors", two)):
        print(f"{label:<22}{wall:>10.2f}{60 * n / wall:>12.1f}")
    print(f"scaling, 2 actors over 1: {one / two:.2f}x (goal ≥ 1.7x with a core per actor)")
    overhead_ms = 1000 * (one - local) / n
    print(f"dispatch overhead per job, ray over local: {overhead_ms:+.0f} ms (goal ≤ 50 ms)")


if __name__ == "__main__":
    main()
