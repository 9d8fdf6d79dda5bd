"""Loading weights: local folders, the Hugging Face cache, and a clear error when absent."""

import json
import time

import numpy as np
import pytest

from moviola.engine import (
    Engine,
    GenerationRequest,
    UnknownModelError,
    WeightsNotFoundError,
    get_model,
)
from moviola.engine.loading import resolve_model, spec_for_folder
from moviola.engine.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny(get_model("tiny"), tmp_path_factory.mktemp("weights") / "tiny")


def test_a_saved_tiny_model_is_a_plain_diffusers_folder(tiny_folder):
    index = json.loads((tiny_folder / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert (tiny_folder / "transformer" / "config.json").is_file()


def test_a_folder_loads_through_from_pretrained_and_matches_the_built_model(engine, tiny_folder):
    req = dict(prompt="a tram at night", frames=9, seed=5)
    from_folder = Engine().generate(GenerationRequest(model=str(tiny_folder), **req))
    built = engine.generate(GenerationRequest(model="tiny", **req))
    assert np.array_equal(from_folder.frames, built.frames)


def test_models_dir_takes_precedence_for_an_id(tmp_path, tiny_folder):
    import shutil

    shutil.copytree(tiny_folder, tmp_path / "tiny")
    spec, weights = resolve_model("tiny", tmp_path)
    assert spec.id == "tiny" and weights == tmp_path / "tiny"


def test_a_tiny_folder_without_its_marker_is_refused_not_guessed(tmp_path, tiny_folder):
    """Test models are never the match of an unmarked folder, and the tiny transformer has no
    published architecture: once it passed as "some Wan" by a loose match, now the folder is
    refused with the nearest entry and the marker that would settle it.
    (tests/engine/test_recognise.py has real published folders recognised.)"""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_folder, folder)
    (folder / "moviola.json").unlink()
    with pytest.raises(UnknownModelError, match=r"nearest is wan2\.2-ti2v-5b") as err:
        spec_for_folder(folder)
    assert "moviola.json" in err.value.message and "nearest is tiny" not in err.value.message


def test_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(UnknownModelError, match=r"model_index\.json"):
        resolve_model(str(tmp_path))


def test_missing_weights_fail_fast_and_name_the_pull_command(tmp_path):
    started = time.monotonic()
    with pytest.raises(WeightsNotFoundError, match=r"moviola models pull wan2\.2-ti2v-5b") as err:
        Engine(models_dir=tmp_path).generate(GenerationRequest("a fox", model="wan2.2-ti2v-5b"))
    assert time.monotonic() - started < 10
    assert err.value.code == "model_not_downloaded"
