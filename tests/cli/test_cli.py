"""The `moviola` command through its installed entry point, as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moviola import media

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def moviola(*args, cwd=None, env=None):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_help_lists_the_commands_and_does_not_import_torch():
    done = moviola("--help")
    assert done.returncode == 0
    assert "generate" in done.stdout and "models" in done.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from moviola.cli import app; "
            "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["False", "False"]


def test_generate_writes_video_thumbnail_and_spritesheet(tmp_path):
    done = moviola(
        "generate",
        "a paper boat at dawn",
        "--model",
        "tiny",
        "--seconds",
        "3",
        "--size",
        "720x1280",
        "--seed",
        "42",
        "-o",
        tmp_path / "boat.mp4",
    )
    assert done.returncode == 0, done.stderr
    info = media.probe(tmp_path / "boat.mp4")
    assert (info.width, info.height, info.frames, info.fps) == (720, 1280, 48, 16)
    assert (tmp_path / "boat.thumb.webp").stat().st_size > 0
    assert (tmp_path / "boat.sprite.jpg").stat().st_size > 0
    assert "seed" in done.stdout and "42" in done.stdout
    assert "test model" in done.stdout + done.stderr
    for stage in ("denoising", "decoding", "writing"):
        assert stage in done.stdout
    assert "2 segment(s)" in done.stdout


def test_generate_names_the_file_after_the_prompt_and_seed(tmp_path):
    done = moviola(
        "generate", "Hello, World!", "--model", "tiny", "--frames", "5", "--seed", "3", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hello-world-3.mp4").is_file()


def test_image_and_video_inputs(tmp_path):
    from PIL import Image

    Image.new("RGB", (320, 200), (200, 40, 40)).save(tmp_path / "first.png")
    done = moviola(
        "generate",
        "it moves",
        "--model",
        "tiny-ltx",
        "--image",
        tmp_path / "first.png",
        "--frames",
        "9",
        "-o",
        tmp_path / "i2v.mp4",
    )
    assert done.returncode == 0, done.stderr
    source = np.random.default_rng(0).integers(0, 255, (20, 96, 160, 3), dtype=np.uint8)
    media.write_mp4(source, tmp_path / "source.mp4", fps=16)
    done = moviola(
        "generate",
        "as a watercolour",
        "--model",
        "tiny",
        "--video",
        tmp_path / "source.mp4",
        "--strength",
        "0.5",
        "-o",
        tmp_path / "v2v.mp4",
    )
    assert done.returncode == 0, done.stderr
    info = media.probe(tmp_path / "v2v.mp4")
    assert (info.width, info.height, info.frames) == (160, 96, 20)
    done = moviola(
        "generate",
        "and on",
        "--model",
        "tiny",
        "--extend",
        tmp_path / "source.mp4",
        "--seconds",
        "1",
        "-o",
        tmp_path / "longer.mp4",
    )
    assert done.returncode == 0, done.stderr
    assert media.probe(tmp_path / "longer.mp4").frames == 20 + 16


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--size", "big"], "WIDTHxHEIGHT"),
        (["--seconds", "0"], "seconds must be greater than 0"),
        (["--seconds", "-3"], "seconds must be greater than 0"),
        (["--model", "no-such-model"], "unknown model"),
        (["--image", "missing.png"], "missing.png"),
        (["--video", "missing.mp4"], "missing.mp4"),
        (["--memory", "huge"], "memory must be one of"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, reason):
    done = moviola("generate", "a fox", "--model", "tiny", *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and reason in lines[0], done.stderr
    assert not list(tmp_path.glob("*.mp4"))


def test_a_prompt_over_the_limit(tmp_path):
    done = moviola(
        "generate",
        "x" * 40,
        "--model",
        "tiny",
        cwd=tmp_path,
        env={"MOVIOLA_MAX_PROMPT_CHARS": "32"},
    )
    assert done.returncode == 2 and "limit is 32" in done.stderr


def test_a_corrupt_video_is_a_clear_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(2000))
    done = moviola(
        "generate", "x", "--model", "tiny", "--video", tmp_path / "bad.mp4", cwd=tmp_path
    )
    assert done.returncode == 2 and "bad.mp4" in done.stderr


def test_missing_weights_name_the_pull_command(tmp_path):
    done = moviola("generate", "a fox", "--model", "wan2.2-ti2v-5b", cwd=tmp_path)
    assert done.returncode == 1
    assert "moviola models pull wan2.2-ti2v-5b" in done.stderr


def test_aliases_resolve(tmp_path):
    done = moviola(
        "generate",
        "a fox",
        "--model",
        "sora-2-2025-10-06",
        "--frames",
        "5",
        "-o",
        tmp_path / "a.mp4",
        env={"MOVIOLA_MODEL_ALIASES": "sora-2=tiny"},
    )
    assert done.returncode == 0, done.stderr


def test_models_list_and_info():
    done = moviola("models", "list")
    assert done.returncode == 0
    for model in ("wan2.2-ti2v-5b", "ltx-video", "cogvideox-5b", "tiny"):
        assert model in done.stdout
    info = moviola("models", "info", "wan2.1-i2v-14b-720p")
    assert info.returncode == 0
    assert "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers" in info.stdout
    assert moviola("models", "info", "nope").returncode == 2


def test_models_pull_tiny_saves_a_loadable_folder(tmp_path):
    done = moviola("models", "pull", "tiny", env={"MOVIOLA_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / "tiny" / "model_index.json").is_file()
    listed = moviola("models", "list", env={"MOVIOLA_DATA_DIR": str(tmp_path)})
    assert "local" in listed.stdout


def test_pulling_without_a_network_fails_cleanly(tmp_path):
    done = moviola("models", "pull", "cogvideox-5b", env={"MOVIOLA_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.startswith("error") and "THUDM/CogVideoX-5b" in done.stderr


def test_generate_with_a_model_that_makes_sound_writes_its_sound(tmp_path):
    out = tmp_path / "rain.mp4"
    done = moviola(
        "generate", "rain on a tin roof", "--model", "tiny-ltx2", "--seconds", "1", "-o", out
    )
    assert done.returncode == 0, done.stderr
    assert "sound" in done.stdout and "48000 Hz" in done.stdout
    info = media.probe(out)
    assert info.audio is not None and info.audio.codec == "aac"
    assert abs(info.audio.duration - info.duration) < 1 / 24
    silent = moviola(
        "generate",
        "rain",
        "--model",
        "tiny-ltx2",
        "--seconds",
        "1",
        "--audio",
        "none",
        "-o",
        tmp_path / "quiet.mp4",
    )
    assert silent.returncode == 0, silent.stderr
    assert media.probe(tmp_path / "quiet.mp4").audio is None


def test_generate_refuses_an_unknown_sound_option(tmp_path):
    done = moviola(
        "generate", "rain", "--model", "tiny", "--audio", "loud", "-o", tmp_path / "x.mp4"
    )
    assert done.returncode == 2
    assert "audio must be one of" in done.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_models_list_info_and_pull_know_the_soundtrack_models(tmp_path):
    listed = moviola("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "stable-audio-open-1.0" in listed.stdout and "tiny-audio" in listed.stdout
    info = moviola("models", "info", "stable-audio-open-1.0")
    assert info.returncode == 0 and "stabilityai/stable-audio-open-1.0" in info.stdout
    pulled = moviola("models", "pull", "tiny-audio", "--to", tmp_path / "tiny-audio")
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "tiny-audio" / "model_index.json").is_file()
