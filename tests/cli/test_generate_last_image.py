"""`moviola generate --image FIRST --last-image LAST`: a video between two frames, no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from moviola import media

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def generate(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MOVIOLA, "generate", "dawn to dusk", "--frames", "5", "--seed", "3", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def test_last_image_ends_the_video_on_a_model_made_for_two_frames(tmp_path):
    Image.new("RGB", (160, 96), (200, 80, 20)).save(tmp_path / "first.png")
    Image.new("RGB", (160, 96), (20, 80, 220)).save(tmp_path / "blue.png")
    Image.new("RGB", (160, 96), (30, 200, 60)).save(tmp_path / "green.png")
    made = {}
    for last in ("blue", "green"):
        out = tmp_path / f"{last}.mp4"
        done = generate(
            "--model",
            "tiny-flf2v",
            "--image",
            tmp_path / "first.png",
            "--last-image",
            tmp_path / f"{last}.png",
            "-o",
            out,
        )
        assert done.returncode == 0, done.stderr
        made[last], _ = media.decode_frames(out)
    assert made["blue"].shape == (5, 96, 160, 3)
    assert not np.array_equal(made["blue"], made["green"])  # same seed, another last frame


def test_last_image_on_a_model_that_cannot_take_one_exits_2(tmp_path):
    Image.new("RGB", (160, 96), (200, 80, 20)).save(tmp_path / "first.png")
    done = generate(
        "--model",
        "tiny",
        "--image",
        tmp_path / "first.png",
        "--last-image",
        tmp_path / "first.png",
        "-o",
        tmp_path / "out.mp4",
    )
    assert done.returncode == 2
    assert "cannot end on a given frame" in done.stderr and "tiny-flf2v" in done.stderr
    assert not (tmp_path / "out.mp4").exists()
