"""How fast the Studio's library renders with a big library (goal: ≤ 200 ms a page with 10,000
videos in the database).

Fills a fresh database with N videos (default 10,000; a mix of statuses, models and prompts),
starts a real `moviola serve` on it (no workers: nothing renders), and times each page from the
request to its last byte over loopback, which is the server's time plus a fraction of a
millisecond. Side by side: the same pages on an empty library, and the API's own list
(`GET /v1/videos?limit=24`) on the full one.

    python benchmarks/studio_library.py [--videos 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from moviola.store import db
from moviola.store.models import Video

MOVIOLA = str(Path(sys.executable).parent / "moviola")
WORDS = [
    "kite",
    "lighthouse",
    "storm",
    "harbour",
    "fox",
    "snow",
    "comet",
    "dunes",
    "rain",
    "roof",
    "heron",
    "orchard",
    "quarry",
    "river",
    "city",
    "night",
    "dawn",
    "forest",
    "train",
    "ocean",
    "desert",
    "mountain",
    "bridge",
    "market",
    "garden",
    "cat",
    "dog",
    "robot",
]
STATUSES = ["completed"] * 8 + ["failed", "queued"]
MODELS = ["sora-2", "sora-2-pro", "tiny"]


def fill(data_dir: Path, count: int) -> None:
    engine = db.connect(f"sqlite:///{data_dir / 'moviola.db'}")
    db.migrate(engine)
    rng = random.Random(1)
    rows = []
    now = time.time()
    for i in range(count):
        status = rng.choice(STATUSES)
        video_id = f"video_{i:032x}"
        folder = data_dir / "blobs" / video_id
        rows.append(
            {
                "id": video_id,
                "seq": i + 1,
                "owner": None,
                "kind": "create",
                "status": status,
                "progress": 100 if status == "completed" else 0,
                "model": rng.choice(MODELS),
                "engine_model": "tiny",
                "prompt": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))),
                "seconds": "4",
                "size": "1280x720",
                "params": {"seed": rng.randrange(2**31)},
                "created_at": now - count + i,
                "result": {"frames": 97} if status == "completed" else None,
                "files": (
                    {
                        name: {"path": str(folder / file), "bytes": 1_000_000, "sha256": "0" * 64}
                        for name, file in (
                            ("video", "video.mp4"),
                            ("thumbnail", "video.thumb.webp"),
                            ("spritesheet", "video.sprite.jpg"),
                        )
                    }
                    if status == "completed"
                    else None
                ),
                "error_message": "out of memory" if status == "failed" else None,
            }
        )
    with engine.begin() as connection:
        for start in range(0, len(rows), 1000):
            connection.execute(Video.__table__.insert(), rows[start : start + 1000])
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "MOVIOLA_DATA_DIR": str(data_dir),
        "MOVIOLA_WORKERS": "0",
        "MOVIOLA_MODEL_ALIASES": "sora-2=tiny,sora-2-pro=tiny-ltx",
        "HF_HUB_OFFLINE": "1",
    }
    process = subprocess.Popen(
        [MOVIOLA, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and p95 in milliseconds, and the number of cards on the page."""
    for _ in range(3):
        client.get(path)  # warm: templates compiled, caches filled
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    samples.sort()
    cards = response.text.count('class="card"')
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], cards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    deep = args.videos // 2
    pages = [
        ("library, first page", "/library"),
        (f"library, {deep:,} videos deep", f"/library?before={deep}"),
        ("search 'kite storm'", "/library?q=kite+storm"),
        ("failed only", "/library?status=failed"),
        ("one model", "/library?model=sora-2-pro"),
        ("queue", "/queue"),
    ]
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="moviola-bench-") as tmp:
        for label, count in (("full", args.videos), ("empty", 0)):
            data_dir = Path(tmp) / label
            data_dir.mkdir()
            started = time.perf_counter()
            fill(data_dir, count)
            if count:
                print(f"filled {count:,} videos in {time.perf_counter() - started:.1f} s")
            process, url = serve(data_dir)
            try:
                with httpx.Client(base_url=url, timeout=30) as client:
                    results[label] = {
                        name: timed(client, path, args.repeat) for name, path in pages
                    }
                    if count:
                        results[label]["API list (baseline)"] = timed(
                            client, "/v1/videos?limit=24", args.repeat
                        )
            finally:
                process.terminate()
                process.wait(30)

    full, empty = results["full"], results["empty"]
    api = full["API list (baseline)"][0]
    print(f"\n{'page':32} {'cards':>5} {'median':>9} {'p95':>9} {'empty lib':>10} {'vs API':>7}")
    for name, _ in pages:
        median, p95, cards = full[name]
        print(
            f"{name:32} {cards:5d} {median:7.1f}ms {p95:7.1f}ms {empty[name][0]:8.1f}ms"
            f" {median / api:6.1f}x"
        )
    print(f"{'API list (baseline)':32} {'':5} {api:7.1f}ms {full['API list (baseline)'][1]:7.1f}ms")
    worst = max(full[name][1] for name, _ in pages)
    verdict = "meets" if worst <= 200 else "MISSES"
    print(f"\nslowest p95 {worst:.1f} ms with {args.videos:,} videos: {verdict} the 200 ms goal")


if __name__ == "__main__":
    main()
