"""What the GPU benchmark runs: full-size Wan pipelines with random weights, built with no download.

Each `Kit` is one catalogue model at the size its goal is stated for: the transformer of the
catalogue's config (`build_transformer_on_meta` + `materialize`), a UMT5-XXL text encoder of the
published config, the published `AutoencoderKLWan` config, UniPC at the model's flow shift, and
Moviola's character tokenizer (the pipeline pads every prompt to 512 tokens, so the encoder does
the work the real one does). Random weights cost exactly what trained weights cost per step; only
what depends on the data (which steps a FirstBlockCache skips) differs, and MagCache's schedule
depends on its ratios alone.

`tiny_kit()` is the same thing at the `tiny` test model's dimensions, for the CPU run.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from moviola.engine import get_model
from moviola.engine.architectures import build_transformer_on_meta, materialize
from moviola.engine.catalogue import TransformerSpec
from moviola.engine.distilled import local_path, route_for
from moviola.engine.tiny import MARKER_FILE, TINY, build_tiny_pipeline, tiny_tokenizer

# google/umt5-xxl, the text encoder of every Wan model (`text_encoder/config.json`).
UMT5_XXL = MappingProxyType(
    {
        "vocab_size": 256384,
        "d_model": 4096,
        "d_kv": 64,
        "d_ff": 10240,
        "num_layers": 24,
        "num_heads": 64,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu",
        "dense_act_fn": "gelu_new",
        "layer_norm_epsilon": 1e-6,
        "scalable_attention": True,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
)
# Wan 2.1's VAE is `AutoencoderKLWan()` as diffusers defines it (the conversion script builds it
# with no arguments).
WAN21_VAE: Mapping[str, Any] = MappingProxyType({})
# Wan 2.2's 48-channel VAE: the conversion script's `vae22_diffusers_config`. The latents'
# per-channel scale and shift are left neutral: they cost nothing either way.
WAN22_VAE = MappingProxyType(
    {
        "base_dim": 160,
        "decoder_base_dim": 256,
        "z_dim": 48,
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
        "dropout": 0.0,
        "is_residual": True,
        "in_channels": 12,
        "out_channels": 12,
        "patch_size": 2,
        "scale_factor_spatial": 16,
        "scale_factor_temporal": 4,
        "latents_mean": [0.0] * 48,
        "latents_std": [1.0] * 48,
    }
)


@dataclass(frozen=True)
class Kit:
    """One model as the benchmark builds and runs it."""

    model: str  # the catalogue id (what the folder's marker names)
    folder_name: str  # the published repository's name, as a download would be called
    size: tuple[int, int]  # (width, height) of every row
    frames: int
    transformer: TransformerSpec
    text_encoder: Mapping[str, Any]  # UMT5Config keys
    vae: Mapping[str, Any]  # AutoencoderKLWan keys
    flow_shift: float
    expand_timesteps: bool  # Wan 2.2 TI2V's per-token timesteps
    lora_rank: int  # the rank of the `fast` route's published LoRA
    # Seconds each row takes here, roughly: a row is skipped when less than this is left.
    estimates: Mapping[str, float] = field(default_factory=dict)


# The ranks of the published step-distilled LoRAs (`moviola.engine.distilled.ROUTES`: CausVid
# bidirect2 1.3B rank 32, FastWan 2.2 5B rank 128; the test model's own is rank 4).
LORA_RANKS = {"wan2.1-t2v-1.3b": 32, "wan2.2-ti2v-5b": 128, TINY.id: 4}

# Rough H100 seconds per row at 10 steps (setup: probe, build, save; the Moviola rows: a
# warm-up that compiles, then the run).
_ESTIMATES = {
    "wan2.1-t2v-1.3b": {"setup": 60, "bare": 40, "quality": 100, "balanced": 60, "fast": 60},
    "wan2.2-ti2v-5b": {"setup": 90, "bare": 100, "quality": 180, "balanced": 110, "fast": 100},
}
FULL_SIZE = {
    "wan2.1-t2v-1.3b": ((832, 480), 81, WAN21_VAE, False),
    "wan2.2-ti2v-5b": ((1280, 704), 121, WAN22_VAE, True),
}


def kit(model: str) -> Kit:
    """The full-size kit of a catalogue model the benchmark knows (`FULL_SIZE`)."""
    if model not in FULL_SIZE:
        raise ValueError(f"the GPU benchmark runs {', '.join(FULL_SIZE)}; not {model!r}")
    spec = get_model(model)
    size, frames, vae, expand = FULL_SIZE[model]
    assert spec.transformer is not None and spec.repo_id is not None and spec.flow_shift
    return Kit(
        model=model,
        folder_name=spec.repo_id.split("/")[-1],
        size=size,
        frames=frames,
        transformer=spec.transformer,
        text_encoder=UMT5_XXL,
        vae=vae,
        flow_shift=spec.flow_shift,
        expand_timesteps=expand,
        lora_rank=LORA_RANKS[model],
        estimates=_ESTIMATES[model],
    )


def tiny_kit() -> Kit:
    """The same components at the `tiny` test model's dimensions (seconds on a CPU)."""
    pipe = build_tiny_pipeline(TINY)
    return Kit(
        model=TINY.id,
        folder_name="tiny-diffusers",
        size=TINY.native_sizes[0],
        frames=17,
        transformer=TransformerSpec(
            cls=type(pipe.transformer).__name__,
            config=_public(pipe.transformer.config),
            published_params=0.0,
        ),
        text_encoder=_public(pipe.text_encoder.config.to_dict()),
        vae=_public(pipe.vae.config),
        flow_shift=TINY.flow_shift or 1.0,
        expand_timesteps=True,
        lora_rank=LORA_RANKS[TINY.id],
        estimates={"setup": 20, "bare": 20, "quality": 20, "balanced": 20, "fast": 20},
    )


def _public(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def build(kit: Kit, device: str, dtype: Any, vae_dtype: Any) -> Any:
    """The kit's `WanPipeline` with random weights on `device` ("meta": no memory, no weights)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    transformer = build_transformer_on_meta(kit.transformer)
    with init_empty_weights(include_buffers=False):
        text_encoder = UMT5EncoderModel(UMT5Config(**kit.text_encoder)).eval()
        vae: Any = AutoencoderKLWan(**kit.vae)
    vae.eval()
    text_encoder.tie_weights()  # one embedding table, as loading the published weights gives
    if device != "meta":
        materialize(transformer, device, dtype, seed=0)
        materialize(text_encoder, device, dtype, seed=1)
        materialize(vae, device, vae_dtype, seed=2)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=kit.flow_shift
    )
    return WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        transformer_2=None,
        boundary_ratio=None,
        expand_timesteps=kit.expand_timesteps,
    )


def save(kit: Kit, device: str, dtype: Any, vae_dtype: Any, folder: Path) -> dict[str, Any]:
    """Build the kit on `device`, save it as a diffusers folder, free it, and say what the loader
    makes of the folder before and after its `moviola.json` marker is written."""
    pipe = build(kit, device, dtype, vae_dtype)
    params = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in (
            ("transformer", pipe.transformer),
            ("text_encoder", pipe.text_encoder),
            ("vae", pipe.vae),
        )
    }
    pipe.save_pretrained(folder)
    del pipe
    free(device)
    unmarked = loader_verdict(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"base": kit.model}) + "\n")
    return {
        "folder_gb": round(_folder_bytes(folder) / 1e9, 2),
        "params": params,
        "loader_without_marker": unmarked,
        "loader_with_marker": loader_verdict(folder),
    }


def loader_verdict(folder: Path) -> dict[str, Any]:
    """Which catalogue model Moviola takes `folder` for, and why (or why none)."""
    from moviola.engine.recognise import recognise
    from moviola.errors import MoviolaError

    try:
        found = recognise(folder)
    except MoviolaError as err:  # the folder's temporary path says nothing: name it alone
        return {"model": None, "error": str(err).replace(str(folder), folder.name)}
    return {
        "model": found.spec.id,
        "reasons": list(found.reasons),
        "tied_with": list(found.tied_with),
    }


def save_random_lora(kit: Kit, models_dir: Path) -> list[Path]:
    """Random LoRAs of the rank and layers of the kit's `fast` route, in the published files'
    layout (Wan's own key names, `lora_down`/`lora_up`, which diffusers converts on loading),
    written where the route looks for them under `models_dir`."""
    import torch
    from safetensors.torch import save_file

    spec = get_model(kit.model)
    route = route_for(spec)
    if route is None:
        raise ValueError(f"{kit.model} has no speed=fast route")
    shapes = _lora_shapes(kit)
    generator = torch.Generator().manual_seed(3)
    written = []
    for file in route.files:
        path = local_path(models_dir, spec, file)
        assert path is not None
        layers = {}
        for name, (fan_in, fan_out) in shapes.items():
            down = torch.randn(kit.lora_rank, fan_in, generator=generator) / fan_in**0.5
            up = torch.randn(fan_out, kit.lora_rank, generator=generator) * 0.01
            layers[f"diffusion_model.{name}.lora_down.weight"] = down.to(torch.bfloat16)
            layers[f"diffusion_model.{name}.lora_up.weight"] = up.to(torch.bfloat16)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(layers, str(path))
        written.append(path)
    return written


# diffusers' names of the layers a Wan step-distilled LoRA adapts, and the published files' names.
_WAN_LAYER_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}


def _lora_shapes(kit: Kit) -> dict[str, tuple[int, int]]:
    """(in, out) features of every adapted layer, by its name in the published layout."""
    model: Any = build_transformer_on_meta(kit.transformer)
    shapes = {}
    for index, block in enumerate(model.blocks):
        for ours, theirs in _WAN_LAYER_NAMES.items():
            layer = block.get_submodule(ours)
            shapes[f"blocks.{index}.{theirs}"] = (layer.in_features, layer.out_features)
    return shapes


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
