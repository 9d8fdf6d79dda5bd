"""The open-model catalogue entries agree with installed diffusers and with the published models.

Nothing is downloaded: transformers are built on the meta device from each entry's config, and
pipelines are checked through their classes' signatures.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import diffusers
import pytest
import torch

from moviola.engine.architectures import build_transformer_on_meta, count_parameters, materialize
from moviola.engine.catalogue import Capability, FrameRule, ModelSpec, TransformerSpec
from moviola.engine.open_models import OPEN_MODELS

BY_ID = {spec.id: spec for spec in OPEN_MODELS}
IDS = [spec.id for spec in OPEN_MODELS]

REQUIRED_IDS = {
    "wan2.1-t2v-1.3b",
    "wan2.1-t2v-14b",
    "wan2.1-i2v-14b-480p",
    "wan2.1-i2v-14b-720p",
    "wan2.2-ti2v-5b",
    "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b",
    "ltx-video",
    "ltx-2",
    "hunyuanvideo-1.5",
    "cogvideox-5b",
}
FAMILIES = {"wan", "wan-ti2v", "ltx", "ltx2", "hunyuanvideo15", "cogvideox"}
# Flow-matching families whose scheduler takes a fixed shift.
SHIFTED_FAMILIES = {"wan", "wan-ti2v", "hunyuanvideo15"}
# Per-request arguments the engine sets itself; a call default must not shadow them.
REQUEST_KWARGS = {
    "prompt",
    "negative_prompt",
    "image",
    "video",
    "conditions",
    "height",
    "width",
    "num_frames",
    "num_inference_steps",
    "guidance_scale",
    "strength",
    "generator",
    "latents",
    "output_type",
    "return_dict",
}
# A two-head, one-layer Wan transformer: enough to run a forward pass on the CPU.
_TINY_WAN = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "in_channels": 4,
    "out_channels": 4,
    "text_dim": 16,
    "freq_dim": 16,
    "ffn_dim": 32,
    "num_layers": 1,
    "rope_max_seq_len": 32,
}
SRC = Path(__file__).resolve().parents[2] / "src" / "moviola" / "engine"

by_model = pytest.mark.parametrize("spec", OPEN_MODELS, ids=IDS)


def _pipeline(name: str) -> type:
    cls = getattr(diffusers, name, None)
    assert cls is not None, f"diffusers {diffusers.__version__} has no {name}"
    return cls


def _init_params(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {
        name: p
        for name, p in params.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _required(cls: type) -> set[str]:
    return {name for name, p in _init_params(cls).items() if p.default is inspect.Parameter.empty}


def _first_pipeline(spec: ModelSpec) -> type:
    return _pipeline(next(iter(spec.pipelines.values())))


def test_required_ids_present_and_unique():
    assert len(IDS) == len(set(IDS))
    assert set(IDS) >= REQUIRED_IDS, REQUIRED_IDS - set(IDS)


@by_model
def test_entry_is_complete(spec: ModelSpec):
    assert spec.family in FAMILIES
    assert spec.repo_id and "/" in spec.repo_id
    assert spec.name and spec.description and spec.license
    assert spec.pipelines and all(isinstance(c, Capability) for c in spec.pipelines)
    assert spec.native_sizes and spec.fps > 0 and spec.vram_gb > 0
    assert spec.default_steps > 0 and spec.default_guidance >= 1.0
    assert spec.transformer is not None and spec.transformer.count in (1, 2)
    assert not spec.is_test_model
    if spec.family in SHIFTED_FAMILIES:
        assert spec.flow_shift is not None and spec.flow_shift > 0


@by_model
def test_native_sizes_divide_by_size_multiple(spec: ModelSpec):
    for width, height in spec.native_sizes:
        assert width % spec.size_multiple == 0, (width, height)
        assert height % spec.size_multiple == 0, (width, height)


@by_model
def test_frame_rule_accepts_max_frames(spec: ModelSpec):
    assert spec.frame_rule.accepts(spec.max_frames)
    assert spec.max_seconds_per_segment > 0


@by_model
def test_pipelines_exist_and_take_the_transformer_class(spec: ModelSpec):
    assert spec.transformer is not None
    for name in spec.pipelines.values():
        params = _init_params(_pipeline(name))
        assert "transformer" in params, name
        annotation = str(params["transformer"].annotation)
        assert re.search(rf"\b{spec.transformer.cls}\b", annotation), (name, annotation)
        if spec.transformer.count == 2:
            assert "transformer_2" in params, name


@by_model
def test_other_pipelines_can_be_built_with_from_pipe(spec: ModelSpec):
    """Each further pipeline needs only what the first has, and keeps everything the repo ships."""
    assert spec.transformer is not None
    first = _first_pipeline(spec)
    first_params = set(_init_params(first))
    shipped = _required(first) | {"transformer"}
    if spec.transformer.count == 2:
        shipped.add("transformer_2")
    for name in list(spec.pipelines.values())[1:]:
        other = _pipeline(name)
        missing = _required(other) - first_params
        assert not missing, f"{name} needs {missing}, which {first.__name__} does not have"
        optional = set(getattr(other, "_optional_components", None) or [])
        assert optional <= set(_init_params(other)), (name, optional)
        dropped = shipped - set(_init_params(other))
        assert not dropped, f"{name} would drop {dropped} from {first.__name__}"


@by_model
def test_call_defaults_are_call_parameters(spec: ModelSpec):
    assert not set(spec.call_defaults) & REQUEST_KWARGS
    for name in set(spec.pipelines.values()):
        params = inspect.signature(_pipeline(name).__call__).parameters
        unknown = set(spec.call_defaults) - set(params)
        assert not unknown, f"{name}.__call__ takes no {unknown}"


@by_model
def test_chain_model_continues_with_an_image_mode(spec: ModelSpec):
    if spec.supports(Capability.IMAGE):
        assert spec.chain_model is None
        return
    assert spec.chain_model in BY_ID, spec.chain_model
    chain = BY_ID[spec.chain_model]
    assert chain.supports(Capability.IMAGE)
    assert chain.family == spec.family
    assert chain.fps == spec.fps
    assert chain.frame_rule == spec.frame_rule


def test_two_expert_models_set_the_second_guidance():
    for spec in OPEN_MODELS:
        assert spec.transformer is not None
        if spec.transformer.count == 2:
            assert "guidance_scale_2" in spec.call_defaults, spec.id


@by_model
def test_transformer_reproduces_published_size(spec: ModelSpec):
    assert spec.transformer is not None
    model = build_transformer_on_meta(spec.transformer)
    assert type(model).__name__ == spec.transformer.cls
    params = list(model.parameters())
    assert params and all(p.is_meta for p in params)
    # Every config key reached the model's config unchanged.
    for key, value in spec.transformer.config.items():
        got = model.config[key]
        if isinstance(value, tuple):
            got = tuple(got)
        assert got == value, (key, got, value)
    counted = count_parameters(spec.transformer)
    published = spec.transformer.published_params * spec.transformer.count
    assert abs(counted / published - 1) < 0.03, f"{counted / 1e9:.3f}B vs {published / 1e9:.3f}B"


def test_count_parameters_multiplies_by_count():
    one = TransformerSpec(cls="WanTransformer3DModel", config=_TINY_WAN, published_params=1.0)
    two = TransformerSpec(
        cls="WanTransformer3DModel", config=_TINY_WAN, published_params=1.0, count=2
    )
    assert count_parameters(two) == 2 * count_parameters(one) > 0
    assert count_parameters(BY_ID["wan2.2-t2v-a14b"]) == count_parameters(
        BY_ID["wan2.2-t2v-a14b"].transformer
    )


def test_build_rejects_unknown_class_and_unknown_config_key():
    with pytest.raises(ValueError, match="NoSuchTransformer"):
        build_transformer_on_meta(
            TransformerSpec(cls="NoSuchTransformer", config={}, published_params=1.0)
        )
    with pytest.raises(TypeError):
        build_transformer_on_meta(
            TransformerSpec(
                cls="WanTransformer3DModel",
                config={**_TINY_WAN, "no_such_key": 1},
                published_params=1.0,
            )
        )


def test_materialize_gives_a_runnable_model():
    spec = TransformerSpec(cls="WanTransformer3DModel", config=_TINY_WAN, published_params=1.0)
    model = materialize(build_transformer_on_meta(spec), "cpu", torch.float32)
    assert not any(p.is_meta for p in model.parameters())
    assert not any(b.is_meta for b in model.buffers())
    with torch.no_grad():
        out = model(
            hidden_states=torch.randn(1, 4, 2, 8, 8),
            timestep=torch.tensor([500]),
            encoder_hidden_states=torch.randn(1, 5, 16),
            return_dict=False,
        )[0]
    assert out.shape == (1, 4, 2, 8, 8)
    assert torch.isfinite(out).all()


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["open_models.py", "architectures.py"])
def test_modules_do_not_import_torch_at_import_time(module: str):
    assert not _top_level_imports(SRC / module) & {"torch", "diffusers", "accelerate"}


def test_frame_rules_match_the_vae_temporal_compression():
    # 4x temporal VAEs (Wan, HunyuanVideo 1.5, CogVideoX) and 8x ones (LTX, LTX-2).
    temporal = {"wan": 4, "wan-ti2v": 4, "hunyuanvideo15": 4, "cogvideox": 4, "ltx": 8, "ltx2": 8}
    for spec in OPEN_MODELS:
        assert spec.frame_rule.offset == 1, spec.id
        assert spec.frame_rule.step % temporal[spec.family] == 0, spec.id
        assert isinstance(spec.frame_rule, FrameRule)
