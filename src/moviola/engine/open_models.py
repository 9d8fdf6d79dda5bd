"""Catalogue entries for the open-weight video models Moviola runs through diffusers.

Plain data only: nothing here imports torch or diffusers. Transformer configs use the diffusers
class's own `__init__` keywords, taken from the conversion scripts in diffusers' `scripts/`
folder (`convert_wan_to_diffusers.py`, `convert_ltx2_to_diffusers.py`,
`convert_hunyuan_video1_5_to_diffusers.py`, `convert_cogvideox_to_diffusers.py`) or, for
LTX-Video 13B, from Lightricks' `ltxv-13b` transformer config. `tests/engine/test_open_models.py`
builds each one on the meta device and checks its size against `published_params`.

`vram_gb` figures are estimates, not measurements: bf16 weights of the transformer(s), text
encoder and VAE all resident on the GPU, plus activations and an untiled VAE decode at the first
native size and the default frame count.
"""

from __future__ import annotations

from types import MappingProxyType

from moviola.engine.catalogue import Capability, FrameRule, ModelSpec, TransformerSpec

_T2V, _I2V, _V2V = Capability.TEXT, Capability.IMAGE, Capability.VIDEO

# Sizes are (width, height).
_WAN_480P = ((832, 480), (480, 832))
_WAN_720P = ((1280, 720), (720, 1280))

# --- Wan 2.1 / 2.2 ------------------------------------------------------------------------------
# WanTransformer3DModel configs from diffusers scripts/convert_wan_to_diffusers.py.
_WAN_COMMON = {
    "patch_size": (1, 2, 2),
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-6,
    "freq_dim": 256,
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
}
_WAN_1_3B = {
    **_WAN_COMMON,
    "num_attention_heads": 12,
    "num_layers": 30,
    "ffn_dim": 8960,
    "in_channels": 16,
    "out_channels": 16,
}
_WAN_14B_T2V = {
    **_WAN_COMMON,
    "num_attention_heads": 40,
    "num_layers": 40,
    "ffn_dim": 13824,
    "in_channels": 16,
    "out_channels": 16,
}
# Wan 2.1 I2V: 16 noise + 4 mask + 16 image-latent channels in, plus CLIP ViT-H image tokens fed
# through extra cross-attention K/V projections.
_WAN_14B_I2V_CLIP = {
    **_WAN_14B_T2V,
    "in_channels": 36,
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
}
# Wan 2.2 I2V-A14B conditions on the VAE latent of the first frame only: no CLIP branch.
_WAN22_14B_I2V = {**_WAN_14B_T2V, "in_channels": 36}
# Wan 2.2 TI2V-5B: 48-channel Wan2.2 VAE (16x spatial, 4x temporal).
_WAN22_5B = {
    **_WAN_COMMON,
    "num_attention_heads": 24,
    "num_layers": 30,
    "ffn_dim": 14336,
    "in_channels": 48,
    "out_channels": 48,
}

WAN21_T2V_1_3B = ModelSpec(
    id="wan2.1-t2v-1.3b",
    name="Wan2.1 T2V 1.3B",
    family="wan",
    repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    pipelines=MappingProxyType({_T2V: "WanPipeline", _V2V: "WanVideoToVideoPipeline"}),
    native_sizes=_WAN_480P,  # Wan2.1 README: 1.3B is a 480P model
    size_multiple=16,  # VAE 8x spatial * patch 2
    fps=16,
    frame_rule=FrameRule(4),  # VAE 4x temporal
    max_frames=81,
    default_steps=50,
    default_guidance=5.0,
    flow_shift=3.0,  # diffusers Wan docs: 2.0-5.0 at 480p; repo scheduler ships 3.0
    license="Apache-2.0",
    vram_gb=20.0,  # estimate: umT5-XXL encoder ~11 GB + 2.8 GB transformer + decode
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_1_3B),
        # "1.3B" is a rounded name: the released checkpoint holds 1.42B parameters
        # (wan2.1_t2v_1.3B_bf16.safetensors is 2.84 GB at 2 bytes per parameter).
        published_params=1.42e9,
    ),
    chain_model="wan2.1-i2v-14b-480p",
    reference_model="wan2.1-vace-1.3b",
    # Every other component's size, counted on the meta device from its published config.
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.1 text-to-video, 1.3B: fast 480p, fits consumer GPUs",
)

WAN21_T2V_14B = ModelSpec(
    id="wan2.1-t2v-14b",
    name="Wan2.1 T2V 14B",
    family="wan",
    repo_id="Wan-AI/Wan2.1-T2V-14B-Diffusers",
    pipelines=MappingProxyType({_T2V: "WanPipeline", _V2V: "WanVideoToVideoPipeline"}),
    native_sizes=_WAN_720P + _WAN_480P,  # Wan2.1 README: 14B T2V supports 480P and 720P
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=50,
    default_guidance=5.0,
    flow_shift=5.0,  # 720p (Wan2.1 generate.py default; diffusers docs)
    license="Apache-2.0",
    vram_gb=48.0,  # estimate: 28.6 GB transformer + 11 GB text encoder + 720p activations
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_14B_T2V),
        published_params=14e9,
    ),
    chain_model="wan2.1-i2v-14b-720p",
    reference_model="wan2.1-vace-14b",
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.1 text-to-video, 14B: 720p or 480p, high quality",
)

# Wan 2.1 I2V: the "14B" name counts the shared backbone; the image cross-attention K/V add
# 40 layers * 2 * 5120^2 = 2.1B, and the released checkpoint holds 16.4B parameters
# (wan2.1_i2v_480p_14B_bf16.safetensors is 32.8 GB at 2 bytes per parameter).
_WAN21_I2V_PARAMS = 16.4e9

WAN21_I2V_14B_480P = ModelSpec(
    id="wan2.1-i2v-14b-480p",
    name="Wan2.1 I2V 14B 480P",
    family="wan",
    repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
    pipelines=MappingProxyType({_I2V: "WanImageToVideoPipeline"}),
    native_sizes=_WAN_480P,
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=40,  # Wan2.1 generate.py: 40 steps for i2v
    default_guidance=5.0,
    flow_shift=3.0,  # Wan2.1 generate.py and diffusers docs: 3.0 for 480p i2v
    license="Apache-2.0",
    vram_gb=45.0,  # estimate: 32.8 GB transformer + 11 GB text encoder + 1.3 GB CLIP
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_14B_I2V_CLIP),
        published_params=_WAN21_I2V_PARAMS,
    ),
    component_params=MappingProxyType(
        {"text_encoder": 5.681e9, "vae": 0.1269e9, "image_encoder": 0.6321e9}
    ),
    description="Wan 2.1 image-to-video, 14B at 480p",
    reference_model="wan2.1-vace-14b",
)

WAN21_I2V_14B_720P = ModelSpec(
    id="wan2.1-i2v-14b-720p",
    name="Wan2.1 I2V 14B 720P",
    family="wan",
    repo_id="Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
    pipelines=MappingProxyType({_I2V: "WanImageToVideoPipeline"}),
    native_sizes=_WAN_720P,
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=40,
    default_guidance=5.0,
    flow_shift=5.0,  # 720p
    license="Apache-2.0",
    vram_gb=52.0,  # estimate, as 480P plus 720p activations and decode
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_14B_I2V_CLIP),
        published_params=_WAN21_I2V_PARAMS,
    ),
    component_params=MappingProxyType(
        {"text_encoder": 5.681e9, "vae": 0.1269e9, "image_encoder": 0.6321e9}
    ),
    description="Wan 2.1 image-to-video, 14B at 720p",
    reference_model="wan2.1-vace-14b",
)

# Wan 2.1 FLF2V: the I2V 720P architecture conditioned on a first and a last frame. The CLIP
# tokens of both frames go through the image cross-attention side by side, each with a learned
# position (`pos_embed_seq_len`: 2 × 257 CLIP tokens), the one key that tells its folder from
# I2V 720P's. Every call needs both frames (diffusers' convert_wan_to_diffusers.py, and the
# flow shift of 16 its scheduler ships).
_WAN_14B_FLF2V = {**_WAN_14B_I2V_CLIP, "pos_embed_seq_len": 257 * 2}

WAN21_FLF2V_14B_720P = ModelSpec(
    id="wan2.1-flf2v-14b-720p",
    name="Wan2.1 FLF2V 14B 720P",
    family="wan",
    repo_id="Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
    pipelines=MappingProxyType({_I2V: "WanImageToVideoPipeline"}),
    native_sizes=_WAN_720P,  # Wan2.1 README: FLF2V-14B is a 720P model
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=50,  # Wan2.1 generate.py: 50 steps for flf2v
    default_guidance=5.0,
    flow_shift=16.0,  # convert_wan_to_diffusers.py: the FLF2V scheduler's shift
    license="Apache-2.0",
    vram_gb=52.0,  # estimate, as I2V 720P: the same weights but for 0.7M position embeddings
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_14B_FLF2V),
        published_params=_WAN21_I2V_PARAMS,
    ),
    component_params=MappingProxyType(
        {"text_encoder": 5.681e9, "vae": 0.1269e9, "image_encoder": 0.6321e9}
    ),
    description="Wan 2.1 first-and-last-frame to video, 14B at 720p: the frames between two",
    last_frame=True,
)

# WanVideoToVideoPipeline derives its latent grid from the Wan2.1 VAE (8x); moviola.engine.loading
# corrects it from the 16x Wan2.2 VAE's own config. Without `expand_timesteps` every token gets
# the same timestep, which is what TI2V's text-to-video mode gives them anyway.
WAN22_TI2V_5B = ModelSpec(
    id="wan2.2-ti2v-5b",
    name="Wan2.2 TI2V 5B",
    family="wan-ti2v",
    repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    # model_index.json names WanPipeline (expand_timesteps=True); from_pipe carries that config
    # over to WanImageToVideoPipeline.
    pipelines=MappingProxyType(
        {_T2V: "WanPipeline", _I2V: "WanImageToVideoPipeline", _V2V: "WanVideoToVideoPipeline"}
    ),
    native_sizes=((1280, 704), (704, 1280)),  # Wan2.2 README: 720P = 1280*704 / 704*1280
    size_multiple=32,  # Wan2.2 VAE 16x spatial * patch 2
    fps=24,  # Wan2.2 wan/configs/wan_ti2v_5B.py sample_fps
    frame_rule=FrameRule(4),
    max_frames=121,  # wan_ti2v_5B.py frame_num
    default_steps=50,  # wan_ti2v_5B.py sample_steps
    default_guidance=5.0,  # wan_ti2v_5B.py sample_guide_scale
    flow_shift=5.0,  # wan_ti2v_5B.py sample_shift
    license="Apache-2.0",
    vram_gb=30.0,  # estimate: 10 GB transformer + 11 GB text encoder + 720p 48-channel decode
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN22_5B),
        published_params=5e9,
    ),
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.7047e9}),
    description="Wan 2.2 text+image-to-video, 5B: 720p at 24 fps on one consumer GPU",
    # No VACE model of its size: the 1.3B one, which fits wherever the 5B model does.
    reference_model="wan2.1-vace-1.3b",
)

# Wan 2.2 A14B: two alike 14B experts, `transformer` (high noise) above the boundary timestep
# and `transformer_2` (low noise) below it; `boundary_ratio` is in the repo's model_index.json.
# In diffusers `guidance_scale` drives `transformer` and `guidance_scale_2` `transformer_2`.
WAN22_T2V_A14B = ModelSpec(
    id="wan2.2-t2v-a14b",
    name="Wan2.2 T2V A14B",
    family="wan",
    repo_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
    # WanVideoToVideoPipeline takes no transformer_2, so it would drop the low-noise expert.
    pipelines=MappingProxyType({_T2V: "WanPipeline"}),
    native_sizes=_WAN_720P + _WAN_480P,  # Wan2.2 README: A14B supports 480P and 720P
    size_multiple=16,
    fps=16,  # Wan2.2 shared_config sample_fps
    frame_rule=FrameRule(4),
    max_frames=81,  # Wan2.2 shared_config frame_num
    default_steps=40,  # wan/configs/wan_t2v_A14B.py sample_steps
    default_guidance=4.0,  # wan_t2v_A14B.py sample_guide_scale = (3.0 low, 4.0 high)
    flow_shift=12.0,  # wan_t2v_A14B.py sample_shift
    license="Apache-2.0",
    vram_gb=80.0,  # estimate: 2 x 28.6 GB experts + 11 GB text encoder + 720p activations
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN_14B_T2V),
        published_params=14e9,
        count=2,
    ),
    chain_model="wan2.2-i2v-a14b",
    reference_model="wan2.1-vace-14b",
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.2 text-to-video, two 14B experts (MoE): best Wan quality, 720p",
    call_defaults=MappingProxyType({"guidance_scale_2": 3.0}),
)

WAN22_I2V_A14B = ModelSpec(
    id="wan2.2-i2v-a14b",
    name="Wan2.2 I2V A14B",
    family="wan",
    repo_id="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
    pipelines=MappingProxyType({_I2V: "WanImageToVideoPipeline"}),
    native_sizes=_WAN_720P + _WAN_480P,
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=40,  # wan/configs/wan_i2v_A14B.py sample_steps
    default_guidance=3.5,  # wan_i2v_A14B.py sample_guide_scale = (3.5, 3.5)
    flow_shift=5.0,  # wan_i2v_A14B.py sample_shift
    license="Apache-2.0",
    vram_gb=80.0,  # estimate, as T2V-A14B
    transformer=TransformerSpec(
        cls="WanTransformer3DModel",
        config=MappingProxyType(_WAN22_14B_I2V),
        published_params=14e9,
        count=2,
    ),
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.2 image-to-video, two 14B experts (MoE), 720p",
    reference_model="wan2.1-vace-14b",
    call_defaults=MappingProxyType({"guidance_scale_2": 3.5}),
)

# --- Wan 2.1 VACE (reference-to-video) ------------------------------------------------------
# WanVACETransformer3DModel: the Wan 2.1 T2V backbone plus VACE blocks that read a control
# stream (reference images, a first frame, masks) and add hints into every `vace_layers` block.
# Configs from diffusers scripts/convert_wan_to_diffusers.py ("Wan-VACE-1.3B", "Wan-VACE-14B");
# the stream is 16 inactive + 16 reactive latent channels and an 8x8 pixel mask per latent
# pixel: 96 channels in. VACE serves characters and reference images for the Wan (and
# sora-2-pro's LTX-2) entries; it renders from a prompt, and from a first frame, which is also
# how it continues its own segments, so the references hold on every segment.
_WAN_VACE_1_3B = {
    **_WAN_1_3B,
    "vace_layers": tuple(range(0, 30, 2)),
    "vace_in_channels": 96,
}
_WAN_VACE_14B = {
    **_WAN_14B_T2V,
    "vace_layers": tuple(range(0, 40, 5)),
    "vace_in_channels": 96,
}
# VACE's calls: a first frame is the control video's frame 0 (mask black: kept) before grey
# frames (mask white: generated); reference images are prepended as latent frames of their own.
_VACE_PIPELINES = MappingProxyType({_T2V: "WanVACEPipeline", _I2V: "WanVACEPipeline"})

WAN21_VACE_1_3B = ModelSpec(
    id="wan2.1-vace-1.3b",
    name="Wan2.1 VACE 1.3B",
    family="wan",
    repo_id="Wan-AI/Wan2.1-VACE-1.3B-diffusers",
    pipelines=_VACE_PIPELINES,
    native_sizes=_WAN_480P,  # Wan2.1 README: VACE 1.3B is a 480P model
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=50,
    default_guidance=5.0,
    flow_shift=3.0,  # the converted repo's scheduler (diffusers' VACE example: 3.0 at 480p)
    license="Apache-2.0",
    vram_gb=22.0,  # estimate: 4.3 GB transformer + 11 GB text encoder + hints and decode
    transformer=TransformerSpec(
        cls="WanVACETransformer3DModel",
        config=MappingProxyType(_WAN_VACE_1_3B),
        # The 1.42B backbone plus 15 VACE blocks and their projections, counted on the meta
        # device from the conversion script's config.
        published_params=2.154e9,
    ),
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.1 VACE 1.3B: characters and reference images into a 480p video",
    takes_references=True,
)

WAN21_VACE_14B = ModelSpec(
    id="wan2.1-vace-14b",
    name="Wan2.1 VACE 14B",
    family="wan",
    repo_id="Wan-AI/Wan2.1-VACE-14B-diffusers",
    pipelines=_VACE_PIPELINES,
    native_sizes=_WAN_720P + _WAN_480P,  # Wan2.1 README: VACE 14B supports 480P and 720P
    size_multiple=16,
    fps=16,
    frame_rule=FrameRule(4),
    max_frames=81,
    default_steps=50,
    default_guidance=5.0,
    flow_shift=3.0,  # the converted repo's scheduler (diffusers' VACE example: 5.0 at 720p)
    license="Apache-2.0",
    vram_gb=56.0,  # estimate: 34.7 GB transformer + 11 GB text encoder + 720p hints and decode
    transformer=TransformerSpec(
        cls="WanVACETransformer3DModel",
        config=MappingProxyType(_WAN_VACE_14B),
        # The 14B backbone plus 8 VACE blocks: 17.3B counted on the meta device, as ComfyUI's
        # repackaged wan2.1_vace_14B_fp16.safetensors (34.7 GB at 2 bytes per parameter).
        published_params=17.34e9,
    ),
    component_params=MappingProxyType({"text_encoder": 5.681e9, "vae": 0.1269e9}),
    description="Wan 2.1 VACE 14B: characters and reference images into a 720p or 480p video",
    takes_references=True,
)

# --- LTX-Video 0.9.7 distilled (13B) ------------------------------------------------------------
# The repo's model_index.json names LTXConditionPipeline, which serves text, first-frame and
# video conditioning alike. Transformer: Lightricks ltxv-13b config (48 layers, 32 heads x 128,
# T5-XXL 4096-wide captions).
LTX_VIDEO = ModelSpec(
    id="ltx-video",
    name="LTX-Video 0.9.7 13B distilled",
    family="ltx",
    repo_id="Lightricks/LTX-Video-0.9.7-distilled",
    pipelines=MappingProxyType(
        {_T2V: "LTXConditionPipeline", _I2V: "LTXConditionPipeline", _V2V: "LTXConditionPipeline"},
    ),
    # LTX-Video README (0.9.6 onward): default 1216x704 at 30 fps.
    native_sizes=((1216, 704), (704, 1216)),
    size_multiple=32,  # VAE 32x spatial, patch 1
    fps=30,
    frame_rule=FrameRule(8),  # VAE 8x temporal
    max_frames=257,  # model card: best below 257 frames
    # Guidance- and timestep-distilled: guidance 1.0 (no CFG), 4-10 steps (diffusers LTX docs).
    # The docs' best results use custom `timesteps` [1000, 993, 987, 981, 975, 909, 725, 0.03].
    default_steps=8,
    default_guidance=1.0,
    license="LTXV Open Weights License",
    vram_gb=40.0,  # estimate: 26 GB transformer + 9.5 GB T5-XXL + VAE decode
    transformer=TransformerSpec(
        cls="LTXVideoTransformer3DModel",
        config=MappingProxyType(
            {
                "in_channels": 128,
                "out_channels": 128,
                "num_attention_heads": 32,
                "attention_head_dim": 128,
                "cross_attention_dim": 4096,
                "num_layers": 48,
                "caption_channels": 4096,
            },
        ),
        published_params=13e9,
    ),
    component_params=MappingProxyType({"text_encoder": 4.762e9, "vae": 1.247e9}),
    description="LTX-Video 13B distilled: text, image or video to video in 8 steps",
    # diffusers LTX docs for 0.9.7 distilled: timestep-aware VAE decode settings, no noise on
    # conditioning images; frame_rate conditions the RoPE time scale.
    call_defaults=MappingProxyType(
        {
            "decode_timestep": 0.05,
            "decode_noise_scale": 0.025,
            "image_cond_noise_scale": 0.0,
            "frame_rate": 30,
        },
    ),
)

# --- LTX-2 (19B audio+video) ----------------------------------------------------------------
# Transformer: diffusers scripts/convert_ltx2_to_diffusers.py, version "2.0" (48 layers; 4096-wide
# video stream, 2048-wide audio stream). The count includes the audio stream.
LTX_2 = ModelSpec(
    id="ltx-2",
    name="LTX-2 19B",
    family="ltx2",
    repo_id="Lightricks/LTX-2",
    pipelines=MappingProxyType(
        {
            _T2V: "LTX2Pipeline",
            _I2V: "LTX2ImageToVideoPipeline",
            _V2V: "LTX2ConditionPipeline",  # video frames as an LTX2VideoCondition
        },
    ),
    native_sizes=((768, 512), (512, 768)),  # diffusers LTX-2 docs: one-stage 768x512
    size_multiple=32,  # VAE 32x spatial, patch 1
    fps=24,  # diffusers LTX-2 docs and LTX2Pipeline frame_rate default
    frame_rule=FrameRule(8),  # VAE 8x temporal
    max_frames=481,  # LTX-2 technical report: up to 20 s; 20 s at 24 fps
    default_steps=40,  # diffusers LTX-2 docs, stage 1
    default_guidance=4.0,
    license="LTX-2 Community License",
    vram_gb=70.0,  # estimate: 38 GB transformer + 24 GB Gemma-3-12B + VAEs and vocoder
    transformer=TransformerSpec(
        cls="LTX2VideoTransformer3DModel",
        config=MappingProxyType(
            {
                "in_channels": 128,
                "out_channels": 128,
                "num_attention_heads": 32,
                "attention_head_dim": 128,
                "cross_attention_dim": 4096,
                "audio_in_channels": 128,
                "audio_out_channels": 128,
                "audio_num_attention_heads": 32,
                "audio_attention_head_dim": 64,
                "audio_cross_attention_dim": 2048,
                "num_layers": 48,
                "caption_channels": 3840,
                # The conversion script's "2.0" value; the class defaults to "interleaved".
                "rope_type": "split",
            },
        ),
        published_params=19e9,
    ),
    component_params=MappingProxyType(
        {
            "text_encoder": 12.19e9,  # Gemma-3-12B, vision tower included
            "connectors": 1.432e9,
            "vae": 1.223e9,
            "audio_vae": 0.0532e9,
            "vocoder": 0.0556e9,
        }
    ),
    description="LTX-2 19B: video with synchronized audio from text, an image or a video",
    # sora-2-pro's default target: characters and reference images go to the largest VACE
    # model (another family, and silent: LTX-2 has no reference-conditioned mode).
    reference_model="wan2.1-vace-14b",
    # diffusers 0.42's call defaults are LTX-2.3's; LTX-2.0's own differ in two: spatio-temporal
    # guidance at block 29 (the pipeline's docstring) and each modality's own timestep in the
    # cross-attention (`use_cross_timestep=False`, "the legacy LTX-2.0 behaviour"). The rest
    # (stg 1.0, modality 3.0, rescale 0.7, audio guidance 7.0) match Lightricks' 2.0 constants.
    call_defaults=MappingProxyType(
        {"frame_rate": 24.0, "spatio_temporal_guidance_blocks": [29], "use_cross_timestep": False}
    ),
    audio=True,
)

# --- LTX-2.3 distilled (22B: 19B transformer + 3.2B text connectors) ----------------------------
# The diffusers-format weights the diffusers team published (`diffusers/LTX-2.3-Distilled-
# Diffusers`, LTX2Pipeline). Transformer: the "2.3" config of diffusers'
# scripts/convert_ltx2_to_diffusers.py (gated attention, cross-attention modulation, perturbed
# attention for STG); every key is one the installed class takes.
_LTX23_TRANSFORMER = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "vae_scale_factors": (8, 32, 32),
    "pos_embed_max_pos": 20,
    "base_height": 2048,
    "base_width": 2048,
    "gated_attn": True,
    "cross_attn_mod": True,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_patch_size": 1,
    "audio_patch_size_t": 1,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_scale_factor": 4,
    "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000,
    "audio_hop_length": 160,
    "audio_gated_attn": True,
    "audio_cross_attn_mod": True,
    "num_layers": 48,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 3840,
    "attention_bias": True,
    "attention_out_bias": True,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "causal_offset": 1,
    "timestep_scale_multiplier": 1000,
    "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split",
    "use_prompt_embeddings": False,
    "perturbed_attn": True,
}

LTX_23_DISTILLED = ModelSpec(
    id="ltx-2.3-distilled",
    name="LTX-2.3 22B distilled",
    family="ltx2",
    repo_id="diffusers/LTX-2.3-Distilled-Diffusers",
    pipelines=LTX_2.pipelines,
    native_sizes=((768, 512), (512, 768)),  # the pipeline's and Lightricks' one-stage default
    size_multiple=32,
    fps=24,
    frame_rule=FrameRule(8),
    max_frames=481,  # as LTX-2: 20 s at 24 fps
    # Lightricks' card: "8 steps, CFG=1"; the schedule is diffusers' DISTILLED_SIGMA_VALUES.
    default_steps=8,
    default_guidance=1.0,
    sigmas=(1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875),
    license="LTX-2 Community License",
    vram_gb=75.0,  # estimate: 38 GB transformer + 6.3 GB connectors + 24 GB Gemma-3-12B + VAEs
    transformer=TransformerSpec(
        cls="LTX2VideoTransformer3DModel",
        config=MappingProxyType(_LTX23_TRANSFORMER),
        published_params=19e9,  # 18.99B counted; the "22B" adds the 3.2B text connectors
    ),
    component_params=MappingProxyType(
        {
            "text_encoder": 12.19e9,  # Gemma-3-12B, vision tower included
            "connectors": 3.172e9,
            "vae": 1.223e9,
            "audio_vae": 0.0532e9,
            "vocoder": 0.1285e9,
        }
    ),
    description="LTX-2.3 distilled: video with synchronized audio in 8 steps, no guidance",
    # Distilled: no guidance of any kind. diffusers 0.42 guides whenever either modality's scale
    # is above 1, and its defaults are the base model's (audio CFG 7, STG 1, modality 3), so
    # every one is turned off here.
    call_defaults=MappingProxyType(
        {
            "frame_rate": 24.0,
            "audio_guidance_scale": 1.0,
            "stg_scale": 0.0,
            "audio_stg_scale": 0.0,
            "modality_scale": 1.0,
            "audio_modality_scale": 1.0,
            "guidance_rescale": 0.0,
            "audio_guidance_rescale": 0.0,
        }
    ),
    audio=True,
)

# --- HunyuanVideo 1.5 (8.3B) --------------------------------------------------------------------
# Community diffusers conversions; t2v and i2v are separate repos with separate transformers.
# Config: diffusers scripts/convert_hunyuan_video1_5_to_diffusers.py, "480p_t2v" / "480p_i2v".
# Guidance lives on the repo's `guider` component (ClassifierFreeGuidance, 6.0); the pipelines'
# __call__ takes no guidance_scale.
_HY15_COMMON = {
    "in_channels": 65,
    "out_channels": 32,
    "num_attention_heads": 16,
    "attention_head_dim": 128,
    "num_layers": 54,
    "num_refiner_layers": 2,
    "mlp_ratio": 4.0,
    "text_embed_dim": 3584,
    "text_embed_2_dim": 1472,
    "image_embed_dim": 1152,
    "target_size": 640,  # 480p
}
# HunyuanVideo15ImageProcessor buckets for target_size 640: 848x480 and 480x848.
_HY15_480P = ((848, 480), (480, 848))

HUNYUANVIDEO_15 = ModelSpec(
    id="hunyuanvideo-1.5",
    name="HunyuanVideo 1.5 480p T2V",
    family="hunyuanvideo15",
    repo_id="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v",
    pipelines=MappingProxyType({_T2V: "HunyuanVideo15Pipeline"}),
    native_sizes=_HY15_480P,
    size_multiple=16,  # VAE 16x spatial, patch 1
    fps=24,
    frame_rule=FrameRule(4),  # VAE 4x temporal
    max_frames=121,  # model card: 121 frames (5 s)
    default_steps=50,
    default_guidance=6.0,  # the repo's guider config
    flow_shift=5.0,  # conversion script SCHEDULER_CONFIGS["480p_t2v"]
    license="Tencent Hunyuan Community License",
    vram_gb=40.0,  # estimate: 16.7 GB transformer + 15 GB Qwen2.5-VL-7B + ByT5 + decode
    transformer=TransformerSpec(
        cls="HunyuanVideo15Transformer3DModel",
        config=MappingProxyType({**_HY15_COMMON, "task_type": "t2v"}),
        published_params=8.3e9,
    ),
    chain_model="hunyuanvideo-1.5-i2v",
    component_params=MappingProxyType(
        {"text_encoder": 7.071e9, "text_encoder_2": 0.2193e9, "vae": 1.261e9}
    ),
    description="HunyuanVideo 1.5 text-to-video, 8.3B at 480p",
)

HUNYUANVIDEO_15_I2V = ModelSpec(
    id="hunyuanvideo-1.5-i2v",
    name="HunyuanVideo 1.5 480p I2V",
    family="hunyuanvideo15",
    repo_id="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_i2v",
    # Its __call__ takes no height/width: the output size follows the image's aspect bucket.
    pipelines=MappingProxyType({_I2V: "HunyuanVideo15ImageToVideoPipeline"}),
    native_sizes=_HY15_480P,
    size_multiple=16,
    fps=24,
    frame_rule=FrameRule(4),
    max_frames=121,
    default_steps=50,
    default_guidance=6.0,
    flow_shift=5.0,  # conversion script SCHEDULER_CONFIGS["480p_i2v"]
    license="Tencent Hunyuan Community License",
    vram_gb=41.0,  # estimate, as t2v plus the SigLIP image encoder
    transformer=TransformerSpec(
        cls="HunyuanVideo15Transformer3DModel",
        config=MappingProxyType({**_HY15_COMMON, "task_type": "i2v"}),
        published_params=8.3e9,
    ),
    component_params=MappingProxyType(
        {
            "text_encoder": 7.071e9,
            "text_encoder_2": 0.2193e9,
            "vae": 1.261e9,
            "image_encoder": 0.4282e9,
        }
    ),
    description="HunyuanVideo 1.5 image-to-video, 8.3B at 480p",
)

# --- CogVideoX 5B ---------------------------------------------------------------------------
# Config: diffusers scripts/convert_cogvideox_to_diffusers.py (5B: 42 layers, 48 heads, RoPE);
# the I2V model adds 16 image-latent input channels and learned positional embeddings.
# "5B" is rounded: the transformer holds 5.57B parameters (42 blocks of ~132M: joint attention
# 4 * 3072^2, FFN 2 * 3072 * 12288 and two 512 -> 6 * 3072 AdaLN projections).
_COG_5B = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "num_layers": 42,
    "in_channels": 16,
    "out_channels": 16,
    "use_rotary_positional_embeddings": True,
}
_COG_5B_PARAMS = 5.57e9

COGVIDEOX_5B = ModelSpec(
    id="cogvideox-5b",
    name="CogVideoX 5B",
    family="cogvideox",
    repo_id="THUDM/CogVideoX-5b",
    pipelines=MappingProxyType({_T2V: "CogVideoXPipeline", _V2V: "CogVideoXVideoToVideoPipeline"}),
    native_sizes=((720, 480),),  # model card: 720x480 only
    size_multiple=16,  # VAE 8x spatial * patch 2
    fps=8,
    frame_rule=FrameRule(8),  # model card: 8N+1 frames, N <= 6
    max_frames=49,
    default_steps=50,
    default_guidance=6.0,
    license="CogVideoX License",
    vram_gb=26.0,  # estimate: 11 GB transformer + 9.5 GB T5-XXL + 720x480 decode
    transformer=TransformerSpec(
        cls="CogVideoXTransformer3DModel",
        config=MappingProxyType(_COG_5B),
        published_params=_COG_5B_PARAMS,
    ),
    chain_model="cogvideox-5b-i2v",
    component_params=MappingProxyType({"text_encoder": 4.762e9, "vae": 0.2156e9}),
    description="CogVideoX 5B text-to-video: 6 s at 720x480, 8 fps",
)

COGVIDEOX_5B_I2V = ModelSpec(
    id="cogvideox-5b-i2v",
    name="CogVideoX 5B I2V",
    family="cogvideox",
    repo_id="THUDM/CogVideoX-5b-I2V",
    pipelines=MappingProxyType({_I2V: "CogVideoXImageToVideoPipeline"}),
    native_sizes=((720, 480),),
    size_multiple=16,
    fps=8,
    frame_rule=FrameRule(8),
    max_frames=49,
    default_steps=50,
    default_guidance=6.0,
    license="CogVideoX License",
    vram_gb=26.0,  # estimate, as cogvideox-5b
    transformer=TransformerSpec(
        cls="CogVideoXTransformer3DModel",
        config=MappingProxyType(
            {**_COG_5B, "in_channels": 32, "use_learned_positional_embeddings": True},
        ),
        published_params=_COG_5B_PARAMS,
    ),
    component_params=MappingProxyType({"text_encoder": 4.762e9, "vae": 0.2156e9}),
    description="CogVideoX 5B image-to-video: 6 s at 720x480, 8 fps",
)

OPEN_MODELS: tuple[ModelSpec, ...] = (
    WAN21_T2V_1_3B,
    WAN21_T2V_14B,
    WAN21_I2V_14B_480P,
    WAN21_I2V_14B_720P,
    WAN21_FLF2V_14B_720P,
    WAN22_TI2V_5B,
    WAN22_T2V_A14B,
    WAN22_I2V_A14B,
    WAN21_VACE_1_3B,
    WAN21_VACE_14B,
    LTX_VIDEO,
    LTX_2,
    LTX_23_DISTILLED,
    HUNYUANVIDEO_15,
    HUNYUANVIDEO_15_I2V,
    COGVIDEOX_5B,
    COGVIDEOX_5B_I2V,
)
