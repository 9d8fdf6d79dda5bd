"""A diffusers folder is recognised as its catalogue model from the files its repository publishes.

`published/<id>/` holds each catalogue model's `model_index.json` and component configs (no
weights; see its README). The tests copy one, without a `moviola.json`, to where a user would
have it: a folder named as the repository, a Hugging Face cache snapshot, or a plain `weights/`.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from moviola.engine import UnknownModelError, get_model
from moviola.engine.architectures import build_transformer_on_meta
from moviola.engine.catalogue import catalogue
from moviola.engine.loading import resolve_model
from moviola.engine.recognise import recognise, same_value
from moviola.engine.tiny import MARKER_FILE

PUBLISHED = Path(__file__).parent / "published"
OPEN_IDS = [spec.id for spec in catalogue().values() if not spec.is_test_model]
TRANSFORMERS = ("transformer", "transformer_2")

by_model = pytest.mark.parametrize("model_id", OPEN_IDS)


def published_copy(tmp_path: Path, model_id: str, where: str | None = None) -> Path:
    """The published folder of `model_id` at `tmp_path / where` (by default named as its
    repository, as `hf download --local-dir` leaves it), with no marker in it."""
    repo = get_model(model_id).repo_id
    assert repo is not None
    folder = tmp_path / (where or repo.split("/")[-1])
    shutil.copytree(PUBLISHED / model_id, folder)
    assert not (folder / MARKER_FILE).exists()
    return folder


def edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def drop_json_key(path: Path, key: str) -> None:
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))


# --- every catalogue model ------------------------------------------------------------------


def test_every_catalogue_model_has_a_published_folder():
    assert sorted(p.name for p in PUBLISHED.iterdir() if p.is_dir()) == sorted(OPEN_IDS)


@by_model
def test_a_published_folder_is_recognised_as_its_model(tmp_path, model_id):
    found = recognise(published_copy(tmp_path, model_id))
    assert found.spec.id == model_id
    assert not found.spec.is_test_model
    assert not found.tied_with
    pipeline = next(iter(found.spec.pipelines.values()))
    assert any(pipeline in reason for reason in found.reasons)


@pytest.mark.parametrize("model_id", ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b"])
def test_the_wan_folders_once_taken_for_the_test_model_plan_as_themselves(tmp_path, model_id):
    folder = published_copy(tmp_path, model_id, "weights")
    spec, weights = resolve_model(str(folder))
    published = get_model(model_id)
    assert weights == folder
    assert spec.id == str(folder) and spec.repo_id is None
    assert not spec.is_test_model
    assert spec.native_sizes == published.native_sizes
    assert spec.default_steps == published.default_steps
    assert spec.max_frames == published.max_frames


# --- evidence beyond the transformer ----------------------------------------------------------


def test_a_second_transformer_in_the_index_means_wan22_a14b(tmp_path):
    two = published_copy(tmp_path, "wan2.2-t2v-a14b", "two")
    assert recognise(two).spec.id == "wan2.2-t2v-a14b"
    # The same experts, one of them: the Wan 2.1 14B architecture.
    one = published_copy(tmp_path, "wan2.2-t2v-a14b", "one")
    edit_json(one / "model_index.json", transformer_2=[None, None], boundary_ratio=None)
    shutil.rmtree(one / "transformer_2")
    found = recognise(one)
    assert found.spec.id == "wan2.1-t2v-14b"
    assert "not wan2.2-t2v-a14b: transformers: one here (transformer), two in wan2.2-t2v-a14b" in (
        found.reasons
    )


def test_components_are_evidence_and_a_missing_one_is_reported(tmp_path):
    folder = published_copy(tmp_path, "wan2.1-i2v-14b-480p")
    found = recognise(folder)
    assert any("image_encoder (CLIPVisionModelWithProjection)" in r for r in found.reasons)
    edit_json(folder / "model_index.json", image_encoder=[None, None])
    shutil.rmtree(folder / "image_encoder")
    found = recognise(folder)
    assert found.spec.id == "wan2.1-i2v-14b-480p"  # its transformer still says so
    assert any("missing here: image_encoder" in r for r in found.reasons)


def test_a_key_the_folder_leaves_out_is_the_class_default(tmp_path):
    """diffusers loads a key a config leaves out at the class's default, and so do we."""
    wan = published_copy(tmp_path, "wan2.1-t2v-1.3b")
    drop_json_key(wan / "transformer" / "config.json", "qk_norm")  # default: rms_norm_across_heads
    found = recognise(wan)
    assert found.spec.id == "wan2.1-t2v-1.3b"
    assert any("not stated here: transformer.qk_norm" in r for r in found.reasons)
    # An LTX-2.3 folder without its gated attention would load as LTX-2.3 without it: no match.
    ltx = published_copy(tmp_path, "ltx-2.3-distilled")
    drop_json_key(ltx / "transformer" / "config.json", "gated_attn")
    with pytest.raises(UnknownModelError, match=r"gated_attn: not stated \(so false\) here"):
        recognise(ltx)


# --- lists, tuples and numbers ---------------------------------------------------------------


def test_json_values_compare_with_the_catalogue_as_values():
    assert same_value([1, 2, 2], (1, 2, 2))
    assert same_value([[1, 3, 5]], ((1, 3, 5),))
    assert not same_value([1, 2, 1], (1, 2, 2))
    assert not same_value([1, 2], (1, 2, 2))
    assert same_value(1, 1.0)
    assert same_value(1e-06, 0.000001)
    assert same_value(0.1 + 0.2, 0.3)
    assert not same_value(True, 1)
    assert not same_value("16", 16)


def test_a_folder_stores_lists_where_the_catalogue_has_tuples(tmp_path):
    folder = published_copy(tmp_path, "wan2.1-t2v-1.3b")
    config = json.loads((folder / "transformer" / "config.json").read_text())
    assert config["patch_size"] == [1, 2, 2]
    assert get_model("wan2.1-t2v-1.3b").transformer.config["patch_size"] == (1, 2, 2)
    assert recognise(folder).spec.id == "wan2.1-t2v-1.3b"


# --- entries with the same architecture: the folder's name --------------------------------------


@pytest.mark.parametrize(
    ("where", "model_id"),
    [
        ("Wan2.1-I2V-14B-720P-Diffusers", "wan2.1-i2v-14b-720p"),
        ("Wan2.1-I2V-14B-480P-Diffusers", "wan2.1-i2v-14b-480p"),
        (
            "hub/models--Wan-AI--Wan2.1-I2V-14B-720P-Diffusers/snapshots/0b4ff1a",
            "wan2.1-i2v-14b-720p",
        ),
        ("my-720p-weights", "wan2.1-i2v-14b-720p"),
        ("wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-480p"),
    ],
)
def test_480p_and_720p_are_told_apart_by_the_folder_name(tmp_path, where, model_id):
    # Both published folders are alike to the last byte but for the resolution they serve.
    folder = published_copy(tmp_path, "wan2.1-i2v-14b-480p", where)
    found = recognise(folder)
    assert found.spec.id == model_id
    assert not found.tied_with
    assert any(r.startswith("the folder's name") for r in found.reasons)


def test_a_folder_whose_name_says_nothing_is_a_tie_decided_in_catalogue_order(tmp_path):
    found = recognise(published_copy(tmp_path, "wan2.1-i2v-14b-720p", "weights"))
    assert found.spec.id == "wan2.1-i2v-14b-480p"  # listed first
    assert found.tied_with == ("wan2.1-i2v-14b-720p",)
    assert MARKER_FILE in found.reasons[-1] and "first in the catalogue" in found.reasons[-1]


def test_the_marker_wins_over_everything(tmp_path):
    folder = published_copy(tmp_path, "wan2.1-i2v-14b-480p", "Wan2.1-I2V-14B-480P-Diffusers")
    (folder / MARKER_FILE).write_text(json.dumps({"base": "wan2.1-i2v-14b-720p"}))
    found = recognise(folder)
    assert found.spec.id == "wan2.1-i2v-14b-720p"
    assert found.reasons == (f"{MARKER_FILE} names wan2.1-i2v-14b-720p",)


# --- refusals ----------------------------------------------------------------------------------


def test_a_foreign_architecture_is_refused_naming_the_nearest_entry(tmp_path):
    folder = published_copy(tmp_path, "wan2.1-t2v-1.3b", "wan-1.3b-pruned")
    edit_json(folder / "transformer" / "config.json", num_layers=20)
    with pytest.raises(UnknownModelError) as err:
        recognise(folder)
    message = err.value.message
    assert "nearest is wan2.1-t2v-1.3b (Wan-AI/Wan2.1-T2V-1.3B-Diffusers)" in message
    assert "transformer.num_layers: 20 here, 30 in wan2.1-t2v-1.3b" in message
    assert f"add {MARKER_FILE}" in message and '{"base": "wan2.1-t2v-1.3b"}' in message
    assert err.value.code == "model_not_found"


def test_a_pipeline_no_catalogue_model_uses_is_refused(tmp_path):
    folder = tmp_path / "sd"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "unet": ["diffusers", "UNet2DConditionModel"],
            }
        )
    )
    with pytest.raises(UnknownModelError, match=r"pipeline: StableDiffusionPipeline here"):
        recognise(folder)


def test_a_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match=r"no model_index\.json"):
        recognise(tmp_path)


# --- component sizes, for the memory planner -------------------------------------------------


def _build_on_meta(folder: Path, name: str, library: str, cls_name: str) -> Any:
    """The component `name` of `folder`, built from its config on the meta device by the class
    model_index.json names, as loading would build it (tied weights counted once)."""
    from accelerate import init_empty_weights

    path = folder / name
    if library == "transformers":
        import transformers

        config = transformers.AutoConfig.from_pretrained(path)
        with init_empty_weights(include_buffers=False):
            model = getattr(transformers, cls_name)._from_config(config)
        model.tie_weights()  # as from_pretrained does: T5's shared embedding, Gemma's lm_head
        return model
    import diffusers

    # A class of a pipeline's own package is listed under the package's name ("ltx2").
    module = (
        diffusers
        if library == "diffusers"
        else importlib.import_module(f"diffusers.pipelines.{library}")
    )
    cls = getattr(module, cls_name)
    with init_empty_weights(include_buffers=False):
        return cls.from_config(cls.load_config(path))


_PARAMS: dict[tuple[str, str, str], int] = {}


def _params(folder: Path, name: str, library: str, cls_name: str) -> int:
    # Keyed by the config's text: the Wan models share one text encoder, built once.
    key = (library, cls_name, (folder / name / "config.json").read_text())
    if key not in _PARAMS:
        model = _build_on_meta(folder, name, library, cls_name)
        _PARAMS[key] = sum(p.numel() for p in model.parameters())
    return _PARAMS[key]


@by_model
def test_component_sizes_match_the_catalogue(model_id):
    spec = get_model(model_id)
    assert spec.transformer is not None
    folder = PUBLISHED / model_id
    index = json.loads((folder / "model_index.json").read_text())
    experts = TRANSFORMERS[: spec.transformer.count]
    others = {}
    for name, value in index.items():
        config = folder / name / "config.json"
        if name.startswith("_") or name in experts or not config.is_file():
            continue
        others[name] = _params(folder, name, *value)
    assert set(others) == set(spec.component_params)
    for name, counted in others.items():
        assert abs(counted / spec.component_params[name] - 1) < 0.01, (name, counted)

    # Each published transformer is the catalogue's: the same config, so the same size.
    catalogued = build_transformer_on_meta(spec.transformer)
    keys = {k for k in catalogued.config if not k.startswith("_")}
    size = sum(p.numel() for p in catalogued.parameters())
    for name in experts:
        assert index[name] == ["diffusers", spec.transformer.cls]
        built = _build_on_meta(folder, name, *index[name])
        assert {k for k in built.config if not k.startswith("_")} == keys
        for key in keys:
            assert same_value(built.config[key], catalogued.config[key]), (name, key)
        assert sum(p.numel() for p in built.parameters()) == size
