"""User LoRAs: the library knows which models a file fits, and a job applies its LoRAs to the warm
pipeline at their scales, leaving nothing behind.

The LoRA files are made with peft for the tiny transformer (the `tiny_loras` fixture): one in
diffusers' layout, the same weights in original Wan and kohya keys, another for `tiny`, and one
for `tiny-ltx`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from moviola.engine import (
    CancelToken,
    Engine,
    GenerationCancelled,
    GenerationRequest,
    lora_run,
    plan,
)
from moviola.engine.lora_files import LoraFileError, classify
from moviola.engine.lora_library import LoraLibrary
from moviola.engine.loras import LoraUse
from moviola.errors import ConflictError, InvalidRequestError, NotFoundError


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_loras):
    """A library holding every test LoRA under its fixture name."""
    lib = LoraLibrary(tmp_path_factory.mktemp("library"))
    for name, path in tiny_loras.items():
        lib.add(path, name)
    return lib


def request(*uses, model="tiny", **kwargs):
    kwargs.setdefault("seed", 5)
    kwargs.setdefault("frames", 9)
    return GenerationRequest("a lighthouse in a storm", model=model, loras=uses, **kwargs)


def frames(engine, *uses, **kwargs):
    return engine.generate(request(*uses, **kwargs)).frames


def use(library, name, scale=1.0):
    return LoraUse(library.get(name), scale)


# --- the library -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "layout"),
    [("diffusers", "diffusers"), ("original-wan", "original-wan"), ("kohya", "kohya")],
)
def test_each_key_layout_is_read_through_diffusers_converters(library, name, layout):
    lora = library.get(name)
    assert lora.layout == layout
    assert "tiny" in lora.fits and "tiny-ltx" not in lora.fits
    assert (lora.rank, lora.layers) == (4, 20)  # 2 blocks × (2 × 4 attention + 2 FFN) layers


def test_a_lora_records_the_family_it_was_made_for(library):
    assert library.get("tiny-ltx").fits == ("tiny-ltx",)
    assert library.get("diffusers").base.startswith("Tiny test model (Wan 2.2 TI2V shape)")
    assert [lora.name for lora in library.fitting(_spec("tiny-ltx"))] == ["tiny-ltx"]


def wan_lora(path, width, blocks=1, image=False):
    """A LoRA in original Wan keys for a Wan transformer `width` wide (only its shapes matter)."""
    tensors = {}
    layers = ["self_attn.q", "self_attn.o", "cross_attn.k"] + (
        ["cross_attn.k_img"] if image else []
    )
    for block in range(blocks):
        for layer in layers:
            key = f"diffusion_model.blocks.{block}.{layer}"
            tensors[f"{key}.lora_down.weight"] = torch.zeros(4, width)
            tensors[f"{key}.lora_up.weight"] = torch.zeros(width, 4)
            tensors[f"{key}.alpha"] = torch.tensor(4.0)
    if image:  # an I2V LoRA carries both image projections
        for block in range(blocks):
            key = f"diffusion_model.blocks.{block}.cross_attn.v_img"
            tensors[f"{key}.lora_down.weight"] = torch.zeros(4, width)
            tensors[f"{key}.lora_up.weight"] = torch.zeros(width, 4)
    save_file(tensors, path)
    return path


def test_the_size_is_found_from_the_layer_widths_of_the_catalogue(tmp_path):
    small = classify(wan_lora(tmp_path / "a.safetensors", 1536))
    assert "wan2.1-t2v-1.3b" in small.fits
    large = classify(wan_lora(tmp_path / "b.safetensors", 5120))
    assert "wan2.1-t2v-14b" in large.fits and "wan2.2-t2v-a14b" in large.fits
    assert not set(small.fits) & set(large.fits)  # 1536 wide is not 5120 wide
    assert "wan2.2-ti2v-5b" not in small.fits + large.fits  # 3072 wide
    # Image cross-attention: only the Wan 2.1 I2V models have it.
    i2v = classify(wan_lora(tmp_path / "c.safetensors", 5120, image=True))
    assert set(i2v.fits) <= {m for m in large.fits if "i2v" in m or "flf2v" in m}
    assert "wan2.1-i2v-14b-480p" in i2v.fits and "wan2.1-t2v-14b" not in i2v.fits


def test_a_lora_of_a_size_no_model_has_is_refused_with_the_reason(tmp_path):
    with pytest.raises(LoraFileError) as refused:
        classify(wan_lora(tmp_path / "odd.safetensors", 2000))
    assert "fits no model in the catalogue" in refused.value.message
    assert "2000" in refused.value.message  # the layer width that matched nothing


def test_a_bad_or_non_lora_file_changes_nothing(tmp_path):
    lib = LoraLibrary(tmp_path / "library")
    text = tmp_path / "notes.safetensors"
    text.write_text("not a safetensors file")
    model = tmp_path / "model.safetensors"
    save_file({"blocks.0.attn1.to_q.weight": torch.zeros(4, 4)}, model)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    for path, why in [
        (text, "not a safetensors file"),
        (model, "holds no LoRA weights"),
        (truncated, "not a safetensors file"),
        (tmp_path / "missing.safetensors", "not a safetensors file"),
    ]:
        with pytest.raises(LoraFileError) as refused:
            lib.add(path)
        assert why in refused.value.message
    assert lib.all() == []
    assert not (tmp_path / "library").exists() or not any((tmp_path / "library").iterdir())


def test_names_are_unique_whatever_the_case_and_remove_takes_a_lora_out(tmp_path, tiny_loras):
    lib = LoraLibrary(tmp_path)
    added = lib.add(tiny_loras["diffusers"])
    assert added.name == "tiny-style"  # the file's name unless given
    with pytest.raises(ConflictError):
        lib.add(tiny_loras["other"], "TINY-STYLE")
    with pytest.raises(InvalidRequestError):
        lib.add(tiny_loras["other"], "../escape")
    assert [lora.name for lora in lib.all()] == ["tiny-style"]
    record = json.loads((tmp_path / "tiny-style.json").read_text())
    assert record["fits"][0] == "tiny" and record["sha256"] == added.sha256
    lib.remove("tiny-style")
    assert lib.all() == [] and not added.file.exists()
    with pytest.raises(NotFoundError):
        lib.remove("tiny-style")


def test_an_unknown_name_in_a_request_is_refused_naming_loras(library):
    with pytest.raises(InvalidRequestError) as refused:
        library.uses([{"name": "nowhere", "scale": 1}])
    assert refused.value.param == "loras" and "nowhere" in refused.value.message


# --- checking a request --------------------------------------------------------------------------


def test_a_lora_for_another_family_is_refused_naming_it(library):
    with pytest.raises(InvalidRequestError) as refused:
        plan(request(use(library, "tiny-ltx")))
    assert refused.value.param == "loras"
    assert "'tiny-ltx'" in refused.value.message and "does not fit tiny" in refused.value.message
    plan(request(use(library, "tiny-ltx"), model="tiny-ltx", frames=9))  # its own model: fine


@pytest.mark.parametrize(
    ("scales", "why"),
    [((3.0,), "-2 to 2"), ((float("nan"),), "finite"), ((1, 1, 1, 1, 1), "at most 4")],
)
def test_scales_and_counts_are_checked(library, scales, why):
    lora = library.get("diffusers")
    uses = [LoraUse(replace(lora, name=f"copy-{i}"), s) for i, s in enumerate(scales)]
    with pytest.raises(InvalidRequestError) as refused:
        plan(request(*uses))
    assert refused.value.param == "loras" and why in refused.value.message


def test_the_same_lora_twice_is_refused(library):
    with pytest.raises(InvalidRequestError, match="twice"):
        plan(request(use(library, "diffusers"), use(library, "diffusers", 0.5)))


# --- applying ------------------------------------------------------------------------------------


def test_scale_0_gives_the_frames_of_no_lora_and_scale_1_others(engine, library):
    plain = frames(engine)
    assert np.array_equal(frames(engine, use(library, "diffusers", 0.0)), plain)
    styled = frames(engine, use(library, "diffusers", 1.0))
    assert not np.array_equal(styled, plain)
    assert np.array_equal(frames(engine, use(library, "diffusers", 1.0)), styled)  # same seed
    half = frames(engine, use(library, "diffusers", 0.5))
    assert not np.array_equal(half, styled) and not np.array_equal(half, plain)


def test_every_key_layout_gives_the_same_frames(engine, library):
    styled = frames(engine, use(library, "diffusers"))
    assert np.array_equal(frames(engine, use(library, "original-wan")), styled)
    assert np.array_equal(frames(engine, use(library, "kohya")), styled)


def test_the_warm_pipeline_is_kept_and_a_job_after_renders_as_on_a_fresh_engine(library):
    warm = Engine()
    frames(warm)
    [pipe] = _loaded(warm)
    transformer = pipe.transformer
    frames(warm, use(library, "diffusers"), use(library, "other", -0.7))
    [again] = _loaded(warm)
    assert again is pipe and again.transformer is transformer  # no reload
    assert {use(library, n).lora.adapter for n in ("diffusers", "other")} <= set(
        transformer.peft_config
    )  # kept loaded, hot
    assert np.array_equal(frames(warm), frames(Engine()))
    assert not any(layer.merged for layer in _lora_layers(transformer))  # never fused


def test_fast_with_a_user_lora_runs_both_and_leaves_both_off(engine, library):
    active = []

    def record(module, args):
        if type(module).__name__ == "WanTransformer3DModel":
            active.append(_active_adapters(module))

    plain = frames(engine)
    fast = frames(engine, speed="fast")
    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        both = frames(engine, use(library, "other", 0.8), speed="fast")
    finally:
        handle.remove()
    adapter = library.get("other").adapter
    assert active and all(a == {"moviola-fast", adapter} for a in active)
    assert not np.array_equal(both, fast)
    assert not any(_active_adapters(m) for m in _denoisers(engine))
    assert np.array_equal(frames(engine), plain)


def test_a_cancelled_job_leaves_no_adapter_active(engine, library):
    plain = frames(engine)
    calls = {"n": 0}

    def stop_midway() -> bool:
        calls["n"] += 1
        return calls["n"] > 6

    with pytest.raises(GenerationCancelled):
        engine.generate(request(use(library, "diffusers")), cancel=CancelToken(check=stop_midway))
    assert not any(_active_adapters(m) for m in _denoisers(engine))
    assert np.array_equal(frames(engine), plain)


def test_a_failed_call_leaves_no_adapter_active(library):
    from moviola.engine.tiny import TINY, build_tiny_pipeline

    pipe = build_tiny_pipeline(TINY)
    with pytest.raises(RuntimeError), lora_run.loras_applied(pipe, [use(library, "diffusers")]):
        assert _active_adapters(pipe.transformer) == {library.get("diffusers").adapter}
        raise RuntimeError("the model failed")
    assert not _active_adapters(pipe.transformer)


def test_loaded_loras_are_bounded_least_recently_used_first(library, monkeypatch):
    from moviola.engine.tiny import TINY, build_tiny_pipeline

    monkeypatch.setattr(lora_run, "MAX_LOADED", 2)
    pipe = build_tiny_pipeline(TINY)
    names = ["diffusers", "other", "kohya"]
    for name in names:
        with lora_run.loras_applied(pipe, [use(library, name)]):
            pass
    adapters = [library.get(n).adapter for n in names]
    assert lora_run.loaded(pipe) == adapters[1:]  # the first, least recently used, is gone
    assert adapters[0] not in pipe.transformer.peft_config


def test_a_two_expert_lora_loads_each_file_into_its_expert(library, tiny_loras, tmp_path):
    import copy

    from moviola.engine.tiny import TINY, build_tiny_pipeline

    pipe = build_tiny_pipeline(TINY)  # Wan 2.2 A14B's shape: a second, low-noise expert
    pipe.register_modules(transformer_2=copy.deepcopy(pipe.transformer))
    pipe.register_to_config(boundary_ratio=0.875)
    lora = library.get("diffusers")
    two = LoraUse(replace(lora, low_noise_file=library.get("other").file))
    with lora_run.loras_applied(pipe, [two]):
        for expert in (pipe.transformer, pipe.transformer_2):
            assert _active_adapters(expert) == {lora.adapter}
    high = pipe.transformer.blocks[0].attn1.to_q.lora_B[lora.adapter].weight
    low = pipe.transformer_2.blocks[0].attn1.to_q.lora_B[lora.adapter].weight
    assert not torch.equal(high, low)  # each expert got its own file's weights
    assert not _active_adapters(pipe.transformer) and not _active_adapters(pipe.transformer_2)


# --- helpers -------------------------------------------------------------------------------------


def _spec(model_id):
    from moviola.engine import get_model

    return get_model(model_id)


def _loaded(engine):
    """The base pipelines `engine` holds loaded."""
    return [base for base, _ in engine.pipelines._bases.values()]


def _lora_layers(model):
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _active_adapters(model) -> set[str]:
    """The adapters that change `model`'s output now: on, and at a weight other than 0."""
    active = set()
    for layer in _lora_layers(model):
        if layer.disable_adapters:
            continue
        active |= {a for a in layer.active_adapters if a in layer.lora_A and layer.scaling[a]}
    return active


def _denoisers(engine):
    return [base.transformer for base in _loaded(engine) if hasattr(base, "transformer")]
