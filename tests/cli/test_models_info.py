"""`moviola models info FOLDER`: which catalogue model a diffusers folder holds, and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from moviola.cli import app

PUBLISHED = Path(__file__).parents[1] / "engine" / "published"


def info(target: Path | str) -> tuple[int, str]:
    """The exit code and the output with its table spacing squeezed to single spaces."""
    # Wide enough that no evidence line is wrapped.
    done = CliRunner().invoke(app, ["models", "info", str(target)], env={"COLUMNS": "400"})
    return done.exit_code, " ".join(done.output.split())


def test_a_folder_prints_its_model_and_the_evidence(tmp_path):
    folder = tmp_path / "Wan2.2-TI2V-5B-Diffusers"
    shutil.copytree(PUBLISHED / "wan2.2-ti2v-5b", folder)
    code, out = info(folder)
    assert code == 0, out
    assert "holds wan2.2-ti2v-5b (Wan2.2 TI2V 5B)" in out
    assert "• model_index.json names WanPipeline, the pipeline wan2.2-ti2v-5b loads" in out
    assert "• transformer: WanTransformer3DModel with wan2.2-ti2v-5b's architecture" in out
    assert "• not wan2.1-t2v-1.3b: transformer.ffn_dim: 14336 here, 8960 in" in out
    # Then the catalogue's entry for the model it holds.
    assert "Wan-AI/Wan2.2-TI2V-5B-Diffusers" in out
    assert "1280x704" in out


def test_a_folder_that_could_be_two_models_says_so(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(PUBLISHED / "wan2.1-i2v-14b-720p", folder)
    code, out = info(folder)
    assert code == 0, out
    assert "holds wan2.1-i2v-14b-480p" in out
    assert "or perhaps wan2.1-i2v-14b-720p" in out
    assert 'add moviola.json with {"base": "<model id>"} to choose' in out


def test_a_folder_of_no_catalogue_model_is_refused_with_the_nearest(tmp_path):
    folder = tmp_path / "wan-1.3b-pruned"
    shutil.copytree(PUBLISHED / "wan2.1-t2v-1.3b", folder)
    config = folder / "transformer" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "num_layers": 20}))
    code, out = info(folder)
    assert code == 2
    assert "nearest is wan2.1-t2v-1.3b" in out
    assert "num_layers: 20 here, 30 in wan2.1-t2v-1.3b" in out


def test_an_id_still_prints_the_catalogue_entry():
    code, out = info("wan2.1-t2v-1.3b")
    assert code == 0, out
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in out
    assert "holds" not in out
