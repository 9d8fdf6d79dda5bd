"""`moviola generate --speed` and `moviola models pull MODEL --fast`, as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

from moviola import media

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def moviola(*args, data_dir: Path):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir)},
        timeout=300,
    )


def test_generate_fast_renders_the_distilled_steps(tmp_path):
    done = moviola(
        "generate", "a paper boat", "--model", "tiny", "--frames", "9", "--speed", "fast",
        "-o", tmp_path / "boat.mp4", data_dir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 steps" in done.stdout  # the tiny route's, not the model's 2
    assert media.probe(tmp_path / "boat.mp4").frames == 9


def test_generate_refuses_fast_for_a_model_without_a_distilled_route(tmp_path):
    done = moviola(
        "generate", "rain", "--model", "tiny-ltx", "--speed", "fast", "-o", tmp_path / "x.mp4",
        data_dir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no step-distilled LoRA" in done.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_generate_refuses_fast_before_loading_when_the_lora_is_missing(tmp_path):
    model = tmp_path / "models" / "wan2.1-t2v-1.3b"
    model.mkdir(parents=True)
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    done = moviola(
        "generate", "rain", "--model", "wan2.1-t2v-1.3b", "--speed", "fast",
        "-o", tmp_path / "x.mp4", data_dir=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert "moviola models pull wan2.1-t2v-1.3b --fast" in done.stderr


def test_pull_fast_saves_the_test_model_and_its_lora(tmp_path):
    done = moviola("models", "pull", "tiny", "--fast", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "tiny" / "model_index.json").is_file()
    assert (tmp_path / "models" / "loras" / "tiny" / "tiny_distilled_lora.safetensors").is_file()
    refused = moviola("models", "pull", "ltx-video", "--fast", data_dir=tmp_path)
    assert refused.returncode != 0 and "step-distilled already" in refused.stderr
