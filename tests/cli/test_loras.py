"""`moviola loras` and `moviola generate --lora` through the installed entry point, against a
data dir of their own, with LoRA files made with peft for the tiny transformer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moviola import media

MOVIOLA = str(Path(sys.executable).parent / "moviola")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def moviola(data_dir):
    def run(*args):
        return subprocess.run(
            [MOVIOLA, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"},
            timeout=300,
        )

    return run


def test_add_list_and_remove(moviola, data_dir, tiny_loras):
    added = moviola("loras", "add", str(tiny_loras["diffusers"]), "--name", "style")
    assert added.returncode == 0, added.stderr
    assert "added style" in added.stdout and "fits tiny" in added.stdout
    kohya = moviola("loras", "add", str(tiny_loras["kohya"]))
    assert kohya.returncode == 0, kohya.stderr
    assert "kohya keys" in kohya.stdout

    listed = moviola("loras", "list")
    assert listed.returncode == 0, listed.stderr
    assert "style" in listed.stdout and "tiny-style-kohya" in listed.stdout
    record = json.loads((data_dir / "loras" / "style.json").read_text())
    assert record["fits"][0] == "tiny" and record["layout"] == "diffusers"

    taken = moviola("loras", "add", str(tiny_loras["other"]), "--name", "Style")
    assert taken.returncode == 1 and "is in the library already" in taken.stderr

    removed = moviola("loras", "remove", "style")
    assert removed.returncode == 0, removed.stderr
    assert "style.json" not in os.listdir(data_dir / "loras")
    assert moviola("loras", "remove", "style").returncode == 1


def test_a_file_that_is_no_lora_is_refused_and_changes_nothing(moviola, data_dir, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    refused = moviola("loras", "add", str(junk))
    assert refused.returncode == 2
    assert "error (file): junk.safetensors is not a safetensors file" in refused.stderr
    assert not (data_dir / "loras").exists() or not os.listdir(data_dir / "loras")


def test_generate_with_a_lora_at_its_scale(moviola, tiny_loras, tmp_path):
    assert moviola("loras", "add", str(tiny_loras["diffusers"]), "--name", "style").returncode == 0
    base = ["generate", "a lighthouse", "-m", "tiny", "--frames", "9", "--seed", "3"]

    def render(name, *extra):
        out = tmp_path / f"{name}.mp4"
        done = moviola(*base, "-o", str(out), *extra)
        assert done.returncode == 0, done.stderr
        frames, _ = media.decode_frames(out)
        return frames

    plain = render("plain")
    assert np.array_equal(render("zero", "--lora", "style:0"), plain)
    assert not np.array_equal(render("styled", "--lora", "style:1"), plain)


def test_generate_refuses_a_lora_made_for_another_model(moviola, tiny_loras, tmp_path):
    assert moviola("loras", "add", str(tiny_loras["tiny-ltx"]), "--name", "ltx").returncode == 0
    refused = moviola(
        "generate", "a lighthouse", "-m", "tiny", "--lora", "ltx:1", "-o", str(tmp_path / "x.mp4")
    )
    assert refused.returncode == 2
    assert "error (loras): LoRA 'ltx'" in refused.stderr and "does not fit tiny" in refused.stderr
    unknown = moviola("generate", "a lighthouse", "-m", "tiny", "--lora", "nowhere:1")
    assert unknown.returncode == 2 and "no LoRA named 'nowhere'" in unknown.stderr
    assert not (tmp_path / "x.mp4").exists()
