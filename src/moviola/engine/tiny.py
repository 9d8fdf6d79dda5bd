"""The `tiny` test models: real diffusers classes, tiny random weights, built in code.

They make noise, not pictures. They exist so that every path real weights take — loading,
text/image/video conditioning, progress, cancel, chaining, encoding — runs in about a second on a
CPU with no download. `tiny` has the shape of Wan 2.2 TI2V-5B (one set of components serving
text, image and video input); `tiny-ltx` has the shape of an LTX-Video condition pipeline.
Dimensions follow diffusers' own pipeline tests.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from moviola.engine.catalogue import Capability, FrameRule, ModelSpec

_NOISE = "A test model with random weights: it makes noise, not pictures."

TINY = ModelSpec(
    id="tiny",
    name="Tiny test model (Wan 2.2 TI2V shape)",
    family="wan-ti2v",
    repo_id=None,
    pipelines={
        Capability.TEXT: "WanPipeline",
        Capability.IMAGE: "WanImageToVideoPipeline",
        Capability.VIDEO: "WanVideoToVideoPipeline",
    },
    native_sizes=((160, 96), (96, 160), (128, 128)),
    size_multiple=32,  # 16× VAE × 2×2 patches, as Wan 2.2 TI2V-5B
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=33,  # small, so that a few seconds already chain segments
    default_steps=2,
    default_guidance=5.0,
    flow_shift=5.0,
    license="Apache-2.0",
    vram_gb=0.0,
    description=_NOISE,
    is_test_model=True,
)

TINY_LTX = ModelSpec(
    id="tiny-ltx",
    name="Tiny test model (LTX-Video shape)",
    family="ltx",
    repo_id=None,
    pipelines={
        Capability.TEXT: "LTXConditionPipeline",
        Capability.IMAGE: "LTXConditionPipeline",
        Capability.VIDEO: "LTXConditionPipeline",
    },
    native_sizes=((160, 96), (96, 160), (128, 128)),
    size_multiple=32,
    fps=24,
    frame_rule=FrameRule(8),
    max_frames=33,
    default_steps=2,
    default_guidance=3.0,
    license="Apache-2.0",
    vram_gb=0.0,
    description=_NOISE,
    is_test_model=True,
)

TINY_MODELS: tuple[ModelSpec, ...] = (TINY, TINY_LTX)

# Written beside a saved tiny pipeline so that loading the folder knows which entry it is.
MARKER_FILE = "moviola.json"


def tiny_tokenizer() -> Any:
    """A character-level tokenizer built in code: every prompt maps to distinct ids, no download."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab.update({c: i + 3 for i, c in enumerate(chars)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )


_TEXT_ENCODER: dict[str, Any] = dict(
    vocab_size=128,
    d_model=32,  # must equal Wan's text_dim / LTX's caption_channels
    d_ff=37,
    d_kv=8,
    num_heads=4,
    num_layers=2,
    relative_attention_num_buckets=8,
)


def build_tiny_pipeline(spec: ModelSpec) -> Any:
    """The base pipeline of a tiny entry, deterministic and independent of the global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        if spec.id == TINY.id:
            return _build_wan_ti2v()
        if spec.id == TINY_LTX.id:
            return _build_ltx()
    raise ValueError(f"{spec.id!r} is not a tiny model")


def _build_wan_ti2v() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=48,
        out_channels=48,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(**_TEXT_ENCODER)).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=TINY.flow_shift
    )
    return WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        transformer_2=None,
        boundary_ratio=None,
        expand_timesteps=True,
    )


def _build_ltx() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae: Any = AutoencoderKLLTXVideo(  # diffusers declares no framewise (de)coding flags
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    # Tiny clips are a handful of frames; framewise (de)coding only pays off on long ones.
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(**_TEXT_ENCODER)).eval()
    return LTXConditionPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
    )


def save_tiny(spec: ModelSpec, folder: Path) -> Path:
    """Write a tiny entry as a diffusers folder, loadable like downloaded weights."""
    folder = Path(folder)
    pipe = build_tiny_pipeline(spec)
    pipe.save_pretrained(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"base": spec.id}, indent=2) + "\n")
    return folder
