"""How fast the Studio's pages render as the library grows (goal: ≤ 200 ms a page with 10,000
videos in the database).

Fills fresh databases with N videos each (10,000, and 100,000 with `--big`; several owners, a mix
of statuses, models and prompts, and one family of remixes and extensions for the video page's
lineage), starts a real `moviola serve` on each (no workers: nothing renders), and times each
page from the request to its last byte over loopback, which is the server's time plus a
fraction of a millisecond. Side by side: the same pages on an empty library, at each size, and
the API's own list (`GET /v1/videos?limit=24`) as the baseline. A page whose time grows with
the library shows it here; the query plan of the library's page query is checked too (it must
walk the `(owner, seq)` index, never sort).

    python benchmarks/studio_library.py [--big] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from moviola.jobs.service import Caller
from moviola.store import db
from moviola.store.models import Video
from moviola.studio import library

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
# The keyless local user (whose library the benchmark reads) and three keys' creators.
OWNERS = [None, "key_a", "key_b", "key_c"]
FAMILY = "video_" + "f" * 32  # the root of the lineage shown on the video page


def _files(data_dir: Path, video_id: str) -> dict:
    folder = data_dir / "blobs" / video_id
    return {
        name: {"path": str(folder / file), "bytes": 1_000_000, "sha256": "0" * 64}
        for name, file in (
            ("video", "video.mp4"),
            ("thumbnail", "video.thumb.webp"),
            ("spritesheet", "video.sprite.jpg"),
        )
    }


def fill(data_dir: Path, count: int) -> None:
    engine = db.connect(f"sqlite:///{data_dir / 'moviola.db'}")
    db.migrate(engine)
    rng = random.Random(1)
    rows = []
    now = time.time()
    for i in range(count):
        status = rng.choice(STATUSES)
        video_id = f"video_{i:032x}"
        rows.append(
            {
                "id": video_id,
                "seq": i + 1,
                "owner": OWNERS[i % len(OWNERS)],
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
                "files": _files(data_dir, video_id) if status == "completed" else None,
                "error_message": "out of memory" if status == "failed" else None,
            }
        )
    if count:
        rows += _family(data_dir, count, now)
    with engine.begin() as connection:
        for start in range(0, len(rows), 2000):
            connection.execute(Video.__table__.insert(), rows[start : start + 2000])
    engine.dispose()


def _family(data_dir: Path, count: int, now: float) -> list[dict]:
    """A root, five remixes of it and two extensions of each: a lineage of 16."""
    base = {
        "owner": None,
        "status": "completed",
        "progress": 100,
        "model": "sora-2",
        "engine_model": "tiny",
        "seconds": "4",
        "size": "1280x720",
        "params": {"seed": 1},
        "created_at": now,
        "result": {"frames": 97},
        "error_message": None,
        # Every row of one insert names the same columns.
        "remixed_from_video_id": None,
        "source_video_id": None,
    }
    rows = [{**base, "id": FAMILY, "seq": count + 1, "kind": "create", "prompt": "a lighthouse"}]
    seq = count + 2
    for r in range(5):
        remix_id = f"video_{'e' * 30}{r:02x}"
        rows.append(
            {
                **base,
                "id": remix_id,
                "seq": seq,
                "kind": "remix",
                "prompt": f"the lighthouse, take {r}",
                "remixed_from_video_id": FAMILY,
            }
        )
        seq += 1
        for e in range(2):
            rows.append(
                {
                    **base,
                    "id": f"video_{'d' * 28}{r:02x}{e:02x}",
                    "seq": seq,
                    "kind": "extend",
                    "prompt": "and then the storm",
                    "source_video_id": remix_id,
                }
            )
            seq += 1
    for row in rows:
        row["files"] = _files(data_dir, row["id"])
    return rows


def plans(data_dir: Path) -> list[str]:
    """The query plans of the library's page queries: each must use an index, never a sort."""
    engine = db.connect(f"sqlite:///{data_dir / 'moviola.db'}")
    found = []
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        for name, options in [
            ("first page", {}),
            ("deep page", {"before": 5000}),
            ("search", {"search": "zebra"}),
            ("one status", {"status": "failed"}),
        ]:
            for caller in (Caller(None), Caller("key_a")):
                query = library.page_query(caller, **options).compile(
                    dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
                )
                plan = " / ".join(
                    row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}")).all()
                )
                if "TEMP B-TREE" in plan or "USING INDEX" not in plan:
                    raise SystemExit(f"the {name} query does not use its index: {plan}")
                found.append(f"{name} ({caller.owner or 'keyless'}): {plan}")
    engine.dispose()
    return found


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
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and p95 in milliseconds, and the number of videos the page shows."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    samples.sort()
    if path.startswith("/v1/"):
        shown = len(response.json()["data"])
    else:  # cards, queue rows, lineage entries: each links to its video
        shown = len(set(re.findall(r'href="/videos/(video_[0-9a-f]{32})"', response.text)))
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="also 100,000 videos (slow to fill)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.big else [10_000]

    pages = [
        ("library, first page", "/library"),
        ("library, 2,500 videos deep", "/library?before=10000"),
        ("search 'kite storm'", "/library?q=kite+storm"),
        ("search matching nothing", "/library?q=zebra"),
        ("failed only", "/library?status=failed"),
        ("one model", "/library?model=sora-2-pro"),
        ("queue", "/queue"),
        ("video page with lineage", f"/videos/{FAMILY}"),
        ("API list (baseline)", "/v1/videos?limit=24"),
    ]
    results: dict[int, dict[str, tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="moviola-bench-") as tmp:
        for count in [0, *sizes]:
            data_dir = Path(tmp) / str(count)
            data_dir.mkdir()
            started = time.perf_counter()
            fill(data_dir, count)
            if count:
                print(f"filled {count:,} videos in {time.perf_counter() - started:.1f} s")
                if count == sizes[-1]:
                    print("query plans:", *plans(data_dir), sep="\n  ")
            process, url = serve(data_dir)
            try:
                with httpx.Client(base_url=url, timeout=60) as client:
                    # Warm every page first (templates compiled, caches filled), and let the
                    # server's start-up work (recovery, the first sweep) finish.
                    for _ in range(3):
                        for _, path in pages:
                            client.get(path)
                    time.sleep(2)
                    results[count] = {
                        name: timed(client, path, args.repeat)
                        for name, path in pages
                        if count or "lineage" not in name
                    }
            finally:
                process.terminate()
                process.wait(30)

    largest = sizes[-1]
    api = results[largest]["API list (baseline)"][0]
    head = f"{'page':28} {'shown':>5} {'empty':>8}"
    head += "".join(f" {f'{n // 1000}k median':>11} {f'{n // 1000}k p95':>9}" for n in sizes)
    print(f"\n{head} {'vs API':>7}")
    for name, _ in pages:
        row = results[largest][name]
        empty = results[0].get(name)
        line = f"{name:28} {row[2]:5d} {f'{empty[0]:.1f}ms' if empty else '-':>8}"
        for n in sizes:
            median, p95, _ = results[n][name]
            line += f" {median:9.1f}ms {p95:7.1f}ms"
        print(f"{line} {row[0] / api:6.1f}x")
    for n in sizes:
        worst = max(results[n][name][1] for name, _ in pages)
        verdict = "meets" if worst <= 200 else "MISSES"
        print(f"slowest p95 with {n:,} videos: {worst:.1f} ms ({verdict} the 200 ms goal)")


if __name__ == "__main__":
    main()
