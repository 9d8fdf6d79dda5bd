"""The `tiny` test models: real diffusers classes, tiny random weights, built in code.

They make noise, not pictures. They exist so that every path real weights take — loading,
text/image/video conditioning, progress, cancel, chaining, encoding — runs in about a second on a
CPU with no download. `tiny` has the shape of Wan 2.2 TI2V-5B (one set of components serving
text, image and video input); `tiny-flf2v` the shape of Wan 2.1 FLF2V (a video between a first
and a last frame, with the CLIP image encoder); `tiny-ltx` has the shape of an LTX-Video
condition pipeline;
`tiny-ltx2` has the shape of LTX-2 (picture and sound from one transformer, Gemma 3 text
encoder, 32x/8x video VAE, mel VAE and vocoder); `tiny-vace` has the shape of Wan 2.1 VACE
(reference images and a first frame through a control stream: `tiny` routes characters and
reference images to it). `tiny-audio` (`build_tiny_stable_audio`) is a
Stable Audio Open shaped text-to-audio pipeline for soundtracks. Dimensions follow diffusers' own
pipeline tests, except where the real model's shape is as cheap.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from types import MappingProxyType
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
    reference_model="tiny-vace",
)

# diffusers' Wan 2.2 TI2V image path (`expand_timesteps`) takes `last_image` and ignores it:
# the pipeline pins the first latent frame only. A last frame needs the Wan 2.1 FLF2V layout.
TINY_FLF2V = ModelSpec(
    id="tiny-flf2v",
    name="Tiny test model (Wan 2.1 FLF2V shape: first and last frame)",
    family="wan",
    repo_id=None,
    pipelines=MappingProxyType({Capability.IMAGE: "WanImageToVideoPipeline"}),
    native_sizes=((160, 96), (96, 160), (128, 128)),
    size_multiple=16,  # 8× VAE × 2×2 patches, as Wan 2.1
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=33,
    default_steps=2,
    default_guidance=5.0,
    flow_shift=16.0,  # as Wan 2.1 FLF2V
    license="Apache-2.0",
    vram_gb=0.0,
    description=_NOISE,
    is_test_model=True,
    last_frame=True,
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

TINY_LTX2 = ModelSpec(
    id="tiny-ltx2",
    name="Tiny test model (LTX-2 shape, with sound)",
    family="ltx2",
    repo_id=None,
    pipelines=MappingProxyType(
        {
            Capability.TEXT: "LTX2Pipeline",
            Capability.IMAGE: "LTX2ImageToVideoPipeline",
            Capability.VIDEO: "LTX2ConditionPipeline",  # video frames as an LTX2VideoCondition
        },
    ),
    native_sizes=((160, 96), (96, 160), (128, 128)),
    size_multiple=32,  # VAE 32x spatial (4x4 patches, three 2x stages), patch 1, as LTX-2
    fps=24,
    frame_rule=FrameRule(8),  # VAE 8x temporal, as LTX-2
    max_frames=33,
    default_steps=2,
    default_guidance=4.0,  # as LTX-2: the CFG pass runs
    license="Apache-2.0",
    vram_gb=0.0,
    description=_NOISE + " It makes noise for sound too.",
    is_test_model=True,
    audio=True,
    call_defaults=MappingProxyType(
        {
            "frame_rate": 24.0,
            # The pipelines' default ([28]) names a block of the 48-layer LTX-2, and the tiny one
            # has two: point spatio-temporal guidance at the last, so that it perturbs a block.
            "spatio_temporal_guidance_blocks": [1],
        },
    ),
)

TINY_VACE = ModelSpec(
    id="tiny-vace",
    name="Tiny test model (Wan 2.1 VACE shape: references)",
    family="wan",
    repo_id=None,
    pipelines=MappingProxyType(
        {Capability.TEXT: "WanVACEPipeline", Capability.IMAGE: "WanVACEPipeline"}
    ),
    native_sizes=((160, 96), (96, 160), (128, 128)),
    size_multiple=16,  # 8× VAE × 2×2 patches, as Wan 2.1
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=33,
    default_steps=2,
    default_guidance=5.0,
    flow_shift=3.0,
    license="Apache-2.0",
    vram_gb=0.0,
    description=_NOISE + " Its reference images and first frame change the noise.",
    is_test_model=True,
    takes_references=True,
)

TINY_MODELS: tuple[ModelSpec, ...] = (TINY, TINY_FLF2V, TINY_LTX, TINY_LTX2, TINY_VACE)

# The text-to-audio test model (Stable Audio Open shape), for soundtracks.
TINY_SOUNDTRACK_ID = "tiny-audio"
TINY_AUDIO_SAMPLING_RATE = 44100  # as Stable Audio Open
TINY_AUDIO_CHANNELS = 2  # stereo, as Stable Audio Open
_AUDIO_DOWNSAMPLING = (2, 4, 4, 8, 8)  # Stable Audio Open's Oobleck VAE: hop 2048 samples
_AUDIO_LATENT_FRAMES = 216  # the transformer's sample_size (1024 in Stable Audio Open)
# The longest sound one call makes (the pipeline's max_audio_length_in_s): 216 × 2048 / 44100.
TINY_AUDIO_MAX_SECONDS: float = (
    _AUDIO_LATENT_FRAMES * math.prod(_AUDIO_DOWNSAMPLING) / TINY_AUDIO_SAMPLING_RATE
)

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
        if spec.id == TINY_FLF2V.id:
            return _build_wan_flf2v()
        if spec.id == TINY_LTX.id:
            return _build_ltx()
        if spec.id == TINY_LTX2.id:
            return _build_ltx2()
        if spec.id == TINY_VACE.id:
            return _build_wan_vace()
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


def _build_wan_flf2v() -> Any:
    """Wan 2.1 FLF2V at diffusers' test size: 16-channel Wan 2.1 VAE, a 36-channel transformer
    (noise, mask and the two frames' latents) whose image cross-attention takes the CLIP tokens
    of both frames, each with a learned position."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        UMT5Config,
        UMT5EncoderModel,
    )

    clip_tokens = 4 * 4 + 1  # 4×4 patches and the class token
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
        added_kv_proj_dim=24,  # heads × head dim
        pos_embed_seq_len=2 * clip_tokens,
    )
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=4,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(**_TEXT_ENCODER)).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=TINY_FLF2V.flow_shift
    )
    return WanImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=4, size=4),
    )


def _build_wan_vace() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    # The Wan 2.1 VAE (16 channels, 8× spatial, 4× temporal), which WanVACEPipeline assumes.
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    # Default init shrinks the signal at every stage: a red and a blue reference encoded alike,
    # and the decoder drew the same frames from any latents. Variance-keeping weights carry a
    # reference's (and a first frame's) content through to the frames.
    _redraw_image_convolutions(vae, gain=1.5)
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0, 1],
        vace_in_channels=96,  # 16 inactive + 16 reactive latent channels + an 8×8 pixel mask
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(**_TEXT_ENCODER)).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=TINY_VACE.flow_shift
    )
    return _in_eval_mode(
        WanVACEPipeline(
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tiny_tokenizer(),
        )
    )


def _redraw_image_convolutions(model: Any, gain: float) -> None:
    """Normal weights of std `gain / sqrt(fan_in)` and zero biases for every 2-D and 3-D
    convolution of `model` (an image or video VAE), drawn from the global RNG."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Conv3d):
                fan_in = module.in_channels * math.prod(module.kernel_size)
                module.weight.normal_(0.0, gain / math.sqrt(fan_in))
                if module.bias is not None:
                    module.bias.zero_()


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


# --- LTX-2 ---------------------------------------------------------------------------------------
# Gemma 3's hidden size: the connectors' width (heads × head dim) and the transformer's
# caption_channels must equal it, as 3840 does for Gemma-3-12B in LTX-2.
_GEMMA_WIDTH = 32
_GEMMA_LAYERS = 2  # the pipeline stacks every layer's hidden state: the connectors take layers + 1
_GEMMA_SPECIALS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)


def _gemma_tokenizer() -> Any:
    """A character-level Gemma tokenizer built in code: Gemma's own class (so it saves and loads as
    one), one token per printable ASCII character, and UTF-8 bytes for everything else, so that
    every prompt, in any script, maps to distinct ids."""
    from transformers import GemmaTokenizer

    vocab = {token: i for i, token in enumerate(_GEMMA_SPECIALS)}
    for char in string.ascii_letters + string.digits + string.punctuation + "▁":  # ▁: a space
        vocab[char] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    return GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=True, model_max_length=1024)


def _build_ltx2() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    tokenizer = _gemma_tokenizer()
    torch.manual_seed(0)
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config=Gemma3TextConfig(
                vocab_size=len(tokenizer),
                hidden_size=_GEMMA_WIDTH,
                intermediate_size=37,
                num_hidden_layers=_GEMMA_LAYERS,
                num_attention_heads=2,
                num_key_value_heads=1,
                head_dim=16,
                query_pre_attn_scalar=16,
                max_position_embeddings=1024,
                sliding_window=64,
                layer_types=["sliding_attention", "full_attention"],  # Gemma 3 has both kinds
            ),
            # Unused by text prompts, but part of the class; the smallest Siglip that fits.
            vision_config=SiglipVisionConfig(
                hidden_size=16,
                intermediate_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=16,
                patch_size=4,
            ),
            mm_tokens_per_image=4,
            boi_token_index=_GEMMA_SPECIALS.index("<start_of_image>"),
            eoi_token_index=_GEMMA_SPECIALS.index("<end_of_image>"),
            image_token_index=_GEMMA_SPECIALS.index("<image_soft_token>"),
        )
    ).eval()
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=_GEMMA_WIDTH,
        text_proj_in_factor=_GEMMA_LAYERS + 1,
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=16,
        video_connector_num_layers=1,
        # LTX-2 replaces the padding of its 1024 prompt tokens with 128 learned registers and
        # attends to them all. Random registers drown a short prompt (five characters of 1024
        # tokens): every prompt gave the same picture. Without them the padding is masked out.
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=16,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
    )
    torch.manual_seed(0)
    vae: Any = AutoencoderKLLTX2Video(  # diffusers declares no framewise (de)coding flags
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        # LTX-2's layout at a tiny width: 4x4 patches, then 2x spatial, 2x temporal and two 2x
        # spatio-temporal stages (32x, 8x); the decoder undoes it in three residual stages.
        block_out_channels=(8, 16, 32, 32),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        # As LTX-2's config says: the class would derive 64x from the four scaling flags.
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        # LTX-2's mel VAE (16 kHz, hop 160: 100 mel frames a second; 4x down in time and mel)
        # at a tiny width. The latent statistics have base_channels entries and are applied to
        # the packed latent (latent_channels × mel_bins / 4): the two must agree.
        base_channels=8,
        output_channels=2,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=16,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=2 * 16,  # audio VAE output channels × mel bins
        hidden_channels=64,  # halved at each upsampling: 2 channels at the last
        out_channels=2,  # stereo, as LTX-2
        # LTX-2's upsampling (6·5·2·2·2 = 240 samples a mel frame: 100 × 240 = 24 kHz).
        upsample_kernel_sizes=[16, 15, 8, 4, 4],
        upsample_factors=[6, 5, 2, 2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=24000,
    )
    # Variance-keeping weights; the doubled last layer gives an RMS of about 0.2, short of the
    # vocoder's final tanh.
    _redraw_convolutions(vocoder, gain=1.0, last=vocoder.conv_out, last_gain=2.0)
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=2 * 4,  # audio latent channels × latent mel bins
        audio_out_channels=2 * 4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=_GEMMA_WIDTH,
    )
    return _in_eval_mode(
        LTX2Pipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(),
            vae=vae,
            audio_vae=audio_vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            connectors=connectors,
            transformer=transformer,
            vocoder=vocoder,
        )
    )


def _in_eval_mode(pipe: Any) -> Any:
    """Every model of `pipe` in eval mode, as `from_pretrained` leaves them: a built pipeline
    then gives what its saved folder gives, to the bit."""
    import torch

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipe


def _redraw_convolutions(model: Any, gain: float, last: Any, last_gain: float) -> None:
    """Re-draw the 1-D convolutions of a waveform decoder so that its output follows its input.

    PyTorch's default init shrinks the signal at each upsampling stage of a vocoder or an audio
    VAE decoder until the biases alone set the output: the same waveform for every prompt and
    seed. Normal weights of std `gain / sqrt(fan_in)` (`last_gain` for `last`, the output
    convolution) and zero biases carry the input's variation through to the sound. Weight-normed
    convolutions (Stable Audio's VAE) get the same weights through their `weight_g` × `weight_v`.
    """
    import torch

    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                continue
            conv: Any = module  # weight norm's parameters are not in torch's types
            fan_in: float = module.in_channels * module.kernel_size[0]
            if isinstance(module, torch.nn.ConvTranspose1d):
                fan_in /= module.stride[0]  # each output sample sees kernel / stride taps
            std = (last_gain if module is last else gain) / math.sqrt(fan_in)
            if hasattr(conv, "weight_v"):  # weight norm: weight = weight_g · v / |v|
                weight = torch.randn_like(conv.weight_v) * std
                dims = [d for d in range(weight.ndim) if conv.weight_g.shape[d] == 1]
                conv.weight_v.copy_(weight)
                conv.weight_g.copy_(weight.norm(dim=dims, keepdim=True))
            else:
                conv.weight.normal_(0.0, std)
            if conv.bias is not None:
                conv.bias.zero_()


# --- Stable Audio Open shape ---------------------------------------------------------------------


def _t5_tokenizer() -> Any:
    """A character-level T5 tokenizer built in code (T5's own class, so it saves and loads as one);
    at most 128 tokens, as Stable Audio Open's."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(c, -1.0) for c in string.ascii_letters + string.digits + string.punctuation]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=128)


def build_tiny_stable_audio() -> Any:
    """The `tiny-audio` text-to-audio pipeline: a `StableAudioPipeline` with tiny random weights,
    44.1 kHz stereo, up to `TINY_AUDIO_MAX_SECONDS` a call, deterministic and independent of the
    global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return _build_stable_audio()


def _build_stable_audio() -> Any:
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(**{**_TEXT_ENCODER, "vocab_size": len(tokenizer)}))
    text_encoder.eval()
    torch.manual_seed(0)
    projection_model = StableAudioProjectionModel(
        text_encoder_dim=_TEXT_ENCODER["d_model"],
        conditioning_dim=16,
        min_value=0,  # Stable Audio Open's range of the seconds it is conditioned on
        max_value=512,
    )
    torch.manual_seed(0)
    vae: Any = AutoencoderOobleck(
        encoder_hidden_size=8,  # twice the latent channels: a mean and a scale each
        downsampling_ratios=list(_AUDIO_DOWNSAMPLING),
        channel_multiples=[1, 2, 4, 8, 16],
        decoder_channels=4,
        decoder_input_channels=4,
        audio_channels=TINY_AUDIO_CHANNELS,
        sampling_rate=TINY_AUDIO_SAMPLING_RATE,
    )
    # Found by trial: the snake activations and residual units make the gain a knife-edge
    # (0.6: near silence, 0.8: peaks of 20). 0.65 and a quiet last layer give an RMS of about 0.1.
    _redraw_convolutions(vae.decoder, gain=0.65, last=vae.decoder.conv2, last_gain=0.3)
    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=_AUDIO_LATENT_FRAMES,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        out_channels=4,
        cross_attention_dim=16,
        time_proj_dim=16,
        global_states_input_dim=2 * 16,  # the start and end seconds' embeddings, side by side
        cross_attention_input_dim=16,
    )
    return _in_eval_mode(
        StableAudioPipeline(
            vae=vae,
            text_encoder=text_encoder,
            projection_model=projection_model,
            tokenizer=tokenizer,
            transformer=transformer,
            # Stable Audio Open's scheduler (its defaults are that repo's config); needs torchsde.
            scheduler=CosineDPMSolverMultistepScheduler(),
        )
    )


def save_tiny(spec: ModelSpec, folder: Path) -> Path:
    """Write a tiny entry as a diffusers folder, loadable like downloaded weights."""
    folder = Path(folder)
    pipe = build_tiny_pipeline(spec)
    pipe.save_pretrained(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"base": spec.id}, indent=2) + "\n")
    return folder


def save_tiny_stable_audio(folder: Path) -> Path:
    """Write `tiny-audio` as a diffusers folder, loadable like downloaded weights."""
    folder = Path(folder)
    build_tiny_stable_audio().save_pretrained(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"base": TINY_SOUNDTRACK_ID}, indent=2) + "\n")
    return folder


# --- A step-distilled LoRA for `tiny` (what `speed=fast` loads) -------------------------------

TINY_DISTILLED_LORA = "tiny_distilled_lora.safetensors"
_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")


def build_tiny_distilled_lora() -> dict[str, Any]:
    """The `tiny` model's step-distilled LoRA, built in code: random rank-4 adapters on every
    attention and feed-forward projection of its transformer, deterministic and independent of
    the global RNG, as a diffusers-format state dict (`transformer.…lora_A.weight` keys). It
    distils nothing (the model is noise too); it changes the frames as a real one would."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = build_tiny_pipeline(TINY).transformer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        # Random A and B (peft's default zero B would leave the model unchanged).
        config = LoraConfig(
            r=4, lora_alpha=4, target_modules=list(_LORA_TARGETS), init_lora_weights=False
        )
        transformer.add_adapter(config)
    layers = get_peft_model_state_dict(transformer)
    return {f"transformer.{name}": tensor.contiguous() for name, tensor in layers.items()}


def save_tiny_distilled_lora(folder: Path) -> Path:
    """Write the `tiny` LoRA as a diffusers LoRA file (what `load_lora_weights` reads)."""
    from diffusers import WanPipeline

    folder = Path(folder)
    layers = build_tiny_distilled_lora()
    WanPipeline.save_lora_weights(
        folder,
        transformer_lora_layers={k.removeprefix("transformer."): v for k, v in layers.items()},
        weight_name=TINY_DISTILLED_LORA,
    )
    return folder / TINY_DISTILLED_LORA
