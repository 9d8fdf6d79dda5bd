"""`moviola models plan`: how a request fits a GPU, printed before anything loads."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MOVIOLA = str(Path(sys.executable).parent / "moviola")
PUBLISHED = Path(__file__).parents[1] / "engine" / "published"


def moviola(*args, env=None):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
        timeout=120,
    )


def test_plan_prints_every_placement_and_the_one_chosen():
    done = moviola("models", "plan", "wan2.1-t2v-1.3b", "--size", "832x480", "--seconds", "5",
                   "--gpu-memory", "24")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "832x480, 81 frames per call, on GPU: 24.0 GB" in done.stdout
    for placement in ("resident", "encoder_offload", "model_offload + fp8", "group_offload"):
        assert placement in done.stdout
    assert re.search(r"plan \(auto\): resident, VAE untiled: peak ≈ \d+\.\d GB", done.stdout)


def test_plan_follows_the_gpu_size_and_the_preference():
    small = moviola("models", "plan", "wan2.1-t2v-1.3b", "--gpu-memory", "8")
    assert "plan (auto): group_offload" in small.stdout
    low = moviola("models", "plan", "wan2.1-t2v-1.3b", "--gpu-memory", "80", "--memory", "low")
    assert "plan (low): group_offload, VAE tiled" in low.stdout


def test_plan_exits_2_with_what_it_needs_when_nothing_fits():
    done = moviola("models", "plan", "wan2.1-t2v-14b", "--size", "1280x720", "--gpu-memory", "4")
    assert done.returncode == 2
    assert re.search(r"needs ≈(\d+\.\d) GB .* the largest device has 4\.0 GB", done.stderr)


def test_plan_uses_a_folders_own_configs(tmp_path):
    folder = tmp_path / "Wan2.1-T2V-1.3B-Diffusers"
    shutil.copytree(PUBLISHED / "wan2.1-t2v-1.3b", folder)
    by_folder = moviola("models", "plan", folder, "--gpu-memory", "24")
    by_id = moviola("models", "plan", "wan2.1-t2v-1.3b", "--gpu-memory", "24")
    assert by_folder.returncode == 0, by_folder.stderr
    weights = re.compile(r"weights ≈ [\d.]+ GB \(denoiser [\d.]+, encoders [\d.]+")
    assert weights.search(by_folder.stdout)[0] == weights.search(by_id.stdout)[0]
