"""`moviola import` and `moviola export` as a user runs them: progress, summary, report, and an
import that is killed midway and run again."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import openai
import pytest

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def moviola(*args, env=None, timeout=300):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=timeout,
    )


def clip(path: Path, seed: int, frames: int = 8, suffix_format: str | None = None) -> Path:
    """A small H.264 MP4 (or GIF) whose pixels, and so bytes, depend on `seed`."""
    fmt = suffix_format or ("gif" if path.suffix == ".gif" else "mp4")
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        codec, pix_fmt = ("gif", "rgb8") if fmt == "gif" else ("libx264", "yuv420p")
        stream = out.add_stream(codec, rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for _ in range(frames):
            array = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def library_rows(data_dir: Path) -> list[dict]:
    db = data_dir / "moviola.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        connection.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in connection.execute("select * from videos order by seq")]
        except sqlite3.OperationalError:  # the schema is being created
            return []


def test_import_shows_progress_a_summary_and_writes_a_report(tmp_path):
    clip(tmp_path / "src" / "a.mp4", 1)
    clip(tmp_path / "src" / "nested" / "b.gif", 2)
    (tmp_path / "src" / "nested" / "b.txt").write_text("a dancing cat")
    (tmp_path / "src" / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 50)
    report = tmp_path / "report.json"

    done = moviola("import", tmp_path / "src", "--data-dir", tmp_path / "lib", "--report", report)
    assert done.returncode == 1  # one video failed: scripts can tell
    assert "importing" in done.stderr and "3/3" in done.stderr  # the progress bar
    assert "imported 2" in done.stdout and "failed 1" in done.stdout
    assert f"failed {tmp_path / 'src' / 'broken.mp4'}: " in done.stdout.replace("\n", "")

    written = json.loads(report.read_text())
    assert written["counts"]["imported"] == 2 and written["counts"]["failed"] == 1
    entries = {Path(v["location"]).name: v for v in written["videos"]}
    assert entries["b.gif"]["found"] == {"prompt": "sidecar txt"}
    assert entries["broken.mp4"]["reason"]

    again = moviola("import", tmp_path / "src", "--data-dir", tmp_path / "lib")
    assert "imported 0" in again.stdout and "skipped 2 as duplicate" in again.stdout


def test_dry_run_lists_and_writes_nothing(tmp_path):
    clip(tmp_path / "src" / "a.mp4", 1)
    done = moviola("import", tmp_path / "src", "--data-dir", tmp_path / "lib", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"would import {tmp_path / 'src' / 'a.mp4'}" in done.stdout
    assert "nothing was written" in done.stdout
    assert not (tmp_path / "lib").exists()


def test_nothing_to_import_is_a_clear_error(tmp_path):
    done = moviola("import", "--data-dir", tmp_path / "lib")
    assert done.returncode == 2
    assert "give folders, archives or videos to import" in done.stderr


def test_an_import_killed_at_any_moment_finishes_with_every_video_once(tmp_path):
    sources = [clip(tmp_path / "src" / f"{i:02d}.mp4", i, frames=16) for i in range(24)]
    archive = tmp_path / "src" / "more.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(24, 32):
            sources.append(clip(tmp_path / "zipped" / f"{i}.mp4", i, frames=16))
            out.write(sources[-1], f"inner/{i}.mp4")
    library = tmp_path / "lib"
    command = [MOVIOLA, "import", str(tmp_path / "src"), "--data-dir", str(library)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    kills = []
    for _ in range(6):  # kill it again and again, each time once it has made some progress
        seen = len(library_rows(library))
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if len(library_rows(library)) > seen:
                time.sleep(0.03 * len(kills))  # a different moment each time
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        process.wait()
        if process.returncode == 0:
            break
        kills.append(len(library_rows(library)))
    assert kills and kills[0] < len(sources)  # it really was killed midway

    done = moviola("import", tmp_path / "src", "--data-dir", library)
    assert done.returncode == 0, done.stderr

    rows = library_rows(library)
    assert len(rows) == len(sources)
    assert sorted(r["content_sha256"] for r in rows) == sorted(sha(s) for s in sources)
    for row in rows:
        assert row["status"] == "completed"
        for entry in json.loads(row["files"]).values():
            assert sha(entry["path"]) == entry["sha256"]
    blobs = library / "blobs"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(r["id"] for r in rows)
    assert not list(blobs.glob("*/.importing"))


KEPT = ("prompt", "model", "size", "seconds", "remixed_from_video_id", "content_sha256")
KEPT += ("created_at", "credentials", "params")


def test_export_then_import_into_an_empty_data_dir_gives_the_same_library(tmp_path):
    src = tmp_path / "src"
    clip(src / "parent.mp4", 1)
    parent = {"id": "gen_1", "prompt": "a kite", "created_at": 1_700_000_000}
    (src / "parent.json").write_text(json.dumps(parent))
    clip(src / "child.gif", 2)
    child = {"id": "gen_2", "prompt": "the kite, at night", "remixed_from_video_id": "gen_1"}
    (src / "child.json").write_text(json.dumps({**child, "model": "sora-2"}))
    first = tmp_path / "first"
    assert moviola("import", src, "--data-dir", first).returncode == 0

    for dest in (tmp_path / "export", tmp_path / "export.zip"):
        exported = moviola("export", dest, "--data-dir", first)
        assert exported.returncode == 0, exported.stderr
        assert "exported 2 videos" in exported.stdout
        second = tmp_path / f"second-{dest.name}"
        done = moviola("import", dest, "--data-dir", second)
        assert done.returncode == 0, done.stderr

        before = {r["id"]: r for r in library_rows(first)}
        after = {r["id"]: r for r in library_rows(second)}
        assert set(before) == set(after)
        for video_id, row in after.items():
            was = before[video_id]
            for name in KEPT:
                assert row[name] == was[name], name
            files, files_before = json.loads(row["files"]), json.loads(was["files"])
            for variant in ("video", "thumbnail", "spritesheet"):
                assert files[variant]["sha256"] == files_before[variant]["sha256"]
                assert files[variant]["mime"] == files_before[variant]["mime"]
            origin = json.loads(row["origin"])
            assert origin["source"] == "export"
            assert origin["earlier"]["original_id"] == json.loads(was["origin"])["original_id"]
        child = next(r for r in after.values() if r["prompt"] == "the kite, at night")
        assert child["remixed_from_video_id"] is not None


def test_export_filters(tmp_path):
    src = tmp_path / "src"
    for i, prompt in enumerate(["a red fox", "a blue whale", "a red kite"]):
        clip(src / f"{i}.mp4", i)
        made = f"2025-0{i + 1}-01T00:00:00Z"
        (src / f"{i}.json").write_text(json.dumps({"prompt": prompt, "created_at": made}))
    library = tmp_path / "lib"
    assert moviola("import", src, "--data-dir", library).returncode == 0

    def exported(*filters):
        dest = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        done = moviola("export", dest, "--data-dir", library, *filters)
        assert done.returncode == 0, done.stderr
        manifest = json.loads((dest / "manifest.json").read_text())
        return sorted(v["prompt"] for v in manifest["videos"])

    assert exported("--search", "RED") == ["a red fox", "a red kite"]
    assert exported("--since", "2025-02-01") == ["a blue whale", "a red kite"]
    assert exported("--until", "2025-02-01") == ["a red fox"]
    bad = moviola("export", tmp_path / "x", "--data-dir", library, "--since", "someday")
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_an_owners_imports_show_through_the_api_as_completed(tmp_path, make_server):
    src = tmp_path / "src"
    clip(src / "loop.gif", 1)
    (src / "loop.txt").write_text("a looping wave")
    library = tmp_path / "lib"
    created = moviola("keys", "create", "creator", env={"MOVIOLA_DATA_DIR": str(library)})
    secret = created.stdout.strip()
    (key_id,) = library_keys(library)
    done = moviola("import", src, "--data-dir", library, "--owner", key_id)
    assert done.returncode == 0, done.stderr
    unknown = moviola("import", src, "--data-dir", library, "--owner", "key_nobody")
    assert unknown.returncode == 2 and "no live API key" in unknown.stderr

    server = make_server(data_dir=library).start()
    client = server.client(secret)
    (video,) = list(client.videos.list())
    assert video.status == "completed" and video.prompt == "a looping wave"
    assert video.model_extra["moviola"]["kind"] == "import"
    assert video.model_extra["moviola"]["origin"]["source"] == "folder"
    assert client.videos.retrieve(video.id).size == "64x48"
    content = client.videos.download_content(video.id)
    assert content.response.headers["content-type"] == "image/gif"
    assert content.read() == (src / "loop.gif").read_bytes()
    assert client.videos.download_content(video.id, variant="thumbnail").read()[:4] == b"RIFF"
    with pytest.raises(openai.AuthenticationError):
        server.client("sk-wrong").videos.list()


def library_keys(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "moviola.db") as connection:
        return [r[0] for r in connection.execute("select id from api_keys")]
