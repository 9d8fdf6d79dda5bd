"""The memory planner: how a generation fits the device it runs on, decided before loading.

The peak memory of a generation is estimated from the model's component sizes (the catalogue's
parameter counts, or a weights folder's own configs built on the meta device) at the dtypes
they run in, and from the request's token count (activations of one denoiser forward, the VAE
decode). The planner then takes the fastest placement whose estimate fits:

    resident         every component on the device
    encoder_offload  text encoder(s) brought in to encode, sent back before denoising
    model_offload    one component on the device at a time (diffusers' model CPU offload)
      + fp8          ... with the denoiser stored in FP8 (layerwise casting, computed in bf16)
    group_offload    denoiser blocks streamed in on CUDA streams (diffusers' group offload)
    sequential       leaf by leaf (diffusers' sequential CPU offload): the last resort

each with the VAE decoding untiled where that fits and tiled otherwise. FP8 is used only where it
is the difference between a fast placement and a slow one. `MOVIOLA_MEMORY` overrides the choice:
`speed` keeps everything resident and untiled (a decode that runs out of memory is retried
tiled), `low` takes the leanest placement. A request that fits no device in any placement is
refused before anything is queued (`InsufficientMemoryError`).

Figures are estimates (≈): weights are exact by dtype; activations and decode buffers come
from per-family coefficients documented below, deliberately on the generous side.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from moviola.engine.catalogue import ModelSpec
from moviola.errors import InvalidRequestError

GIB = 1024**3
# Outside torch's allocator (the CUDA context, cuBLAS workspaces) and fragmentation inside it.
RESERVE_BYTES = GIB
HEADROOM = 0.95


class MemoryMode(str, Enum):
    """Where the components live while a generation runs, fastest first."""

    RESIDENT = "resident"
    ENCODER_OFFLOAD = "encoder_offload"
    MODEL_OFFLOAD = "model_offload"
    GROUP_OFFLOAD = "group_offload"
    SEQUENTIAL = "sequential"


class MemoryPreference(str, Enum):
    """`MOVIOLA_MEMORY`: how the planner trades speed for memory."""

    AUTO = "auto"  # the fastest placement that fits
    SPEED = "speed"  # everything resident, VAE untiled (a decode out of memory retries tiled)
    LOW = "low"  # the leanest placement: block groups streamed in, VAE tiled


class InsufficientMemoryError(InvalidRequestError):
    """No device this server has can hold the request, in any placement."""

    code = "insufficient_memory"


@dataclass(frozen=True)
class Footprint:
    """Bytes a generation holds, by part, at the dtypes it runs in (all estimates but weights)."""

    denoiser: int  # every expert's weights
    encoders: int  # text and image encoders, LTX-2's text connectors
    decoders: int  # VAE(s) and vocoder
    block: int  # one repeated block of the denoiser: what block-level offload holds at a time
    activations: int  # one denoiser forward at the request's token count, batch 1
    encoding: int  # the text encoder's own activations
    decode: int  # an untiled VAE decode
    decode_tiled: int  # a tiled one
    fp8_denoiser: int  # the denoiser's weights stored in FP8 (compute stays bf16)

    @property
    def weights(self) -> int:
        return self.denoiser + self.encoders + self.decoders


@dataclass(frozen=True)
class MemoryPlan:
    """A placement and what it is expected to take at its peak."""

    mode: MemoryMode
    vae_tiling: bool
    peak_bytes: int
    device_bytes: int  # what it was planned against
    fp8: bool = False
    # Room for classifier-free guidance as one batch-2 forward instead of two batch-1 calls.
    batch_cfg: bool = False

    def describe(self) -> str:
        mode = self.mode.value + (" + fp8" if self.fp8 else "")
        vae = "tiled" if self.vae_tiling else "untiled"
        return (
            f"{mode}, VAE {vae}: peak ≈ {gb(self.peak_bytes):.1f} GB "
            f"of {gb(self.device_bytes):.1f} GB"
        )


def gb(n: float) -> float:
    return n / GIB


# --- The estimate ---------------------------------------------------------------------------

# How many frames one latent frame stands for, where it is not the frame rule's step
# (CogVideoX takes 8k+1 frames, but its VAE compresses time 4x).
_TEMPORAL = {"cogvideox": 4}

# Peak bytes of an untiled VAE decode per output pixel, by family. Wan-style causal VAEs decode
# one latent frame (4 output frames) at a time, so the peak follows the frame size; LTX's and
# CogVideoX's decoders see the whole clip (or 8-frame batches) at once, so it follows the pixels
# of the clip. Estimates from each decoder's top-level width (Wan 2.1: 96 channels at full
# resolution, fp32; Wan 2.2: 160 at half; LTX: 128 at a quarter, bf16; CogVideoX: 128, bf16 in
# 8-frame batches) times the buffers alive at once; `benchmarks/gpu.py` measures them.
_DECODE_PER_PIXEL = {
    "wan": 4 * 96 * 4 * 6,  # 4 frames x 96 ch x fp32 x ~6 live buffers, per frame pixel
    "wan-ti2v": 4 * 40 * 4 * 6,
    "hunyuanvideo15": 4 * 128 * 2 * 6,
    "cogvideox": 8 * 128 * 2 * 4,
}
_DECODE_PER_CLIP_PIXEL = {"ltx": 8 * 2 * 4, "ltx2": 8 * 2 * 4}
_TILE_PIXELS = 256 * 256  # diffusers' default tile (with its overlap, ~1.5x)
_MIN_DECODE = GIB // 4
_ENCODING = GIB // 2  # 512 (LTX-2: 1024) text tokens through a 4-5k wide encoder


def footprint(
    spec: ModelSpec,
    width: int,
    height: int,
    frames: int,
    *,
    accelerator: bool = True,
    component_params: Mapping[str, float] | None = None,
    denoiser_params: float | None = None,
) -> Footprint:
    """The estimate for `frames` frames of `spec` at width x height.

    `component_params` and `denoiser_params` default to the catalogue's figures; a worker with
    the weights folder passes the folder's own (`folder_params`).
    """
    parts = dict(spec.component_params if component_params is None else component_params)
    if denoiser_params is None:
        tspec = spec.transformer
        denoiser_params = tspec.published_params * tspec.count if tspec else 0.0
    wide = 2 if accelerator else 4  # bf16 on a GPU, fp32 on a CPU
    vae_wide = 4 if spec.family.startswith("wan") else wide  # the Wan VAEs stay fp32
    encoders = sum(n for name, n in parts.items() if _is_encoder(name)) * wide
    decoders = sum(
        n * (vae_wide if name == "vae" else wide)
        for name, n in parts.items()
        if not _is_encoder(name)
    )
    denoiser = int(denoiser_params * wide)
    layers = _config(spec).get("num_layers", 1) * (
        spec.transformer.count if spec.transformer else 1
    )
    return Footprint(
        denoiser=denoiser,
        encoders=int(encoders),
        decoders=int(decoders),
        block=denoiser // max(1, layers),
        activations=int(
            tokens(spec, width, height, frames)
            * (_bytes_per_token(spec) + _hint_bytes_per_token(spec))
            * wide
            / 2
        ),
        encoding=_ENCODING if accelerator else 2 * _ENCODING,
        decode=_decode_bytes(spec, width, height, frames, vae_wide // 2),
        decode_tiled=_decode_bytes(spec, *_tile(width, height), frames, vae_wide // 2),
        fp8_denoiser=int(denoiser_params),
    )


def tokens(spec: ModelSpec, width: int, height: int, frames: int) -> int:
    """The denoiser's sequence length: latent frames x the latent grid over its patches.

    `size_multiple` is the VAE's spatial factor times the patch size for every catalogue model.
    """
    step = _TEMPORAL.get(spec.family, spec.frame_rule.step)
    latent_frames = (max(1, frames) - 1) // step + 1
    grid = (width // spec.size_multiple) * (height // spec.size_multiple)
    return latent_frames * max(1, grid)


def _config(spec: ModelSpec) -> Mapping[str, Any]:
    return spec.transformer.config if spec.transformer else {}


def _bytes_per_token(spec: ModelSpec) -> int:
    """bf16 bytes alive per token inside one block, at the larger of its two phases: attention
    (the residual stream, its norm, q, k, v and the output: ~6 widths; the kernels keep no
    N x N matrix) or the feed-forward (its inner layer before and after the activation, and two
    widths of the stream)."""
    config = _config(spec)
    hidden = config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0)
    hidden = hidden or 1024
    ffn = config.get("ffn_dim") or int(hidden * config.get("mlp_ratio", 4))
    return max(6 * hidden, 2 * ffn + 2 * hidden) * 2


def _hint_bytes_per_token(spec: ModelSpec) -> int:
    """bf16 bytes per token that a VACE denoiser keeps through its whole forward: its control
    stream, and the hint each VACE block makes for its layer, all made before the first one is
    added in. Nothing for other denoisers."""
    config = _config(spec)
    layers = len(config.get("vace_layers") or ())
    if not layers:
        return 0
    hidden = config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0)
    return (layers + 1) * hidden * 2


def _decode_bytes(spec: ModelSpec, width: int, height: int, frames: int, scale: int) -> int:
    per_clip = _DECODE_PER_CLIP_PIXEL.get(spec.family)
    if per_clip is not None:
        return max(_MIN_DECODE, width * height * frames * per_clip)
    per_pixel = _DECODE_PER_PIXEL.get(spec.family, _DECODE_PER_PIXEL["wan"])
    return max(_MIN_DECODE, width * height * per_pixel * scale // 2)


def _tile(width: int, height: int) -> tuple[int, int]:
    """The pixels one tile covers, overlap included, never more than the frame."""
    side = int(math.sqrt(_TILE_PIXELS * 1.5))
    return min(width, side), min(height, side)


def _is_encoder(component: str) -> bool:
    return component.startswith(("text_encoder", "image_encoder", "connectors"))


# --- The choice -------------------------------------------------------------------------------

# The placements `auto` tries, fastest first: (mode, fp8).
LADDER: tuple[tuple[MemoryMode, bool], ...] = (
    (MemoryMode.RESIDENT, False),
    (MemoryMode.ENCODER_OFFLOAD, False),
    (MemoryMode.MODEL_OFFLOAD, False),
    (MemoryMode.MODEL_OFFLOAD, True),
    (MemoryMode.GROUP_OFFLOAD, False),
    (MemoryMode.SEQUENTIAL, False),
)


def peak(fp: Footprint, mode: MemoryMode, *, fp8: bool, tiled: bool, batch: int = 1) -> int:
    """The estimated peak of one generation placed as `mode`."""
    denoiser = fp.fp8_denoiser if fp8 else fp.denoiser
    block = denoiser * fp.block // max(1, fp.denoiser)
    act = fp.activations * batch
    decode = fp.decode_tiled if tiled else fp.decode
    if mode is MemoryMode.RESIDENT:
        total = fp.weights - fp.denoiser + denoiser + max(act, decode, fp.encoding)
    elif mode is MemoryMode.ENCODER_OFFLOAD:
        resident = denoiser + fp.decoders
        total = max(resident + fp.encoders + fp.encoding, resident + max(act, decode))
    elif mode is MemoryMode.MODEL_OFFLOAD:
        total = max(fp.encoders + fp.encoding, denoiser + act, fp.decoders + decode)
    elif mode is MemoryMode.GROUP_OFFLOAD:
        # One group computing and the next arriving on its stream; the encoder likewise.
        total = max(fp.encoders // 12 + fp.encoding, 2 * block + act, fp.decoders + decode)
    else:
        total = max(fp.encoding, act, decode) + block
    return int(total * 1.1)  # the allocator's rounding and fragmentation


def choose(
    fp: Footprint,
    device_bytes: int,
    preference: MemoryPreference = MemoryPreference.AUTO,
    *,
    accelerator: bool = True,
    vae_tiling: bool | None = None,
) -> MemoryPlan | None:
    """The placement for one device of `device_bytes`, or None when nothing fits.

    On a CPU everything is resident (offloading to the CPU means nothing there). `vae_tiling`
    forces the VAE's tiling either way.
    """
    usable = int(device_bytes * HEADROOM) - RESERVE_BYTES
    tilings = (False, True) if vae_tiling is None else (vae_tiling,)
    if not accelerator:
        rungs: Iterable[tuple[MemoryMode, bool]] = ((MemoryMode.RESIDENT, False),)
    elif preference is MemoryPreference.SPEED:
        rungs = ((MemoryMode.RESIDENT, False),)
        tilings = (False,) if vae_tiling is None else tilings
    elif preference is MemoryPreference.LOW:
        rungs = LADDER[-2:]
        tilings = (True,) if vae_tiling is None else tilings
    else:
        rungs = LADDER
    for mode, fp8 in rungs:
        for tiled in tilings:
            need = peak(fp, mode, fp8=fp8, tiled=tiled)
            if need <= usable or preference is MemoryPreference.SPEED:
                batch_cfg = accelerator and peak(fp, mode, fp8=fp8, tiled=tiled, batch=2) <= usable
                return MemoryPlan(mode, tiled, need, device_bytes, fp8=fp8, batch_cfg=batch_cfg)
    return None


def leanest(fp: Footprint, *, accelerator: bool = True) -> int:
    """The least any placement needs, with what `choose` keeps aside: the size of the smallest
    device the request fits."""
    modes = LADDER if accelerator else ((MemoryMode.RESIDENT, False),)
    least = min(peak(fp, mode, fp8=fp8, tiled=True) for mode, fp8 in modes)
    return math.ceil((least + RESERVE_BYTES) / HEADROOM)


def plan_for(
    spec: ModelSpec,
    width: int,
    height: int,
    frames: int,
    devices: Iterable[int],
    preference: MemoryPreference = MemoryPreference.AUTO,
    *,
    accelerator: bool = True,
    fp: Footprint | None = None,
    vae_tiling: bool | None = None,
) -> MemoryPlan:
    """The plan on the roomiest of `devices` (bytes each), or an `InsufficientMemoryError`
    that says how much the request needs and names the field to change."""
    fp = fp or footprint(spec, width, height, frames, accelerator=accelerator)
    sizes = sorted(devices, reverse=True)
    for size in sizes:
        chosen = choose(fp, size, preference, accelerator=accelerator, vae_tiling=vae_tiling)
        if chosen is not None:
            return chosen
    need = leanest(fp, accelerator=accelerator)
    largest = sizes[0] if sizes else 0
    smallest = _smallest_native(spec, frames, accelerator)
    param = "size" if smallest is not None and smallest <= largest else "model"
    where = "the largest device has" if accelerator else "this machine has"
    raise InsufficientMemoryError(
        f"{spec.id} at {width}x{height}, {frames} frames needs ≈{gb(need):.1f} GB even in its "
        f"leanest placement; {where} {gb(largest):.1f} GB"
        + (" (try a smaller size or fewer seconds)" if param == "size" else ""),
        param=param,
    )


def _smallest_native(spec: ModelSpec, frames: int, accelerator: bool) -> int | None:
    if not spec.native_sizes:
        return None
    width, height = min(spec.native_sizes, key=lambda s: s[0] * s[1])
    small = footprint(spec, width, height, min(frames, spec.frame_rule.at_least(1)))
    return leanest(small, accelerator=accelerator)


def preference_of(value: str | MemoryPreference) -> MemoryPreference:
    try:
        return MemoryPreference(value)
    except ValueError:
        allowed = ", ".join(p.value for p in MemoryPreference)
        raise InvalidRequestError(
            f"memory must be one of {allowed} (got {value!r})", param="memory"
        ) from None


# --- What a device has ------------------------------------------------------------------------


def free_bytes(device: str) -> int:
    """Memory free on `device` now: the GPU's free memory, or the machine's available RAM."""
    if device.startswith("cpu"):
        return ram_bytes(available=True)
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def reclaimable_bytes(device: str) -> int:
    """What a generation on `device` may use: the free memory plus what this process holds
    there already (its loaded models, which make way for another placement)."""
    if device.startswith("cpu"):
        return ram_bytes(available=True) + _resident_bytes()
    import torch

    return free_bytes(device) + int(torch.cuda.memory_reserved(torch.device(device)))


def _resident_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def ram_bytes(*, available: bool = False) -> int:
    """This machine's RAM (MemTotal), or what is available to a new program (MemAvailable)."""
    key = "MemAvailable:" if available else "MemTotal:"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# --- A folder's own sizes -----------------------------------------------------------------------


def folder_params(folder: Path) -> tuple[float, dict[str, float]]:
    """(denoiser parameters, every other component's) of a diffusers folder, from its configs
    built on the meta device: what its weights hold, whatever the catalogue says."""
    import diffusers
    import transformers
    from accelerate import init_empty_weights

    index = json.loads((folder / "model_index.json").read_text())
    denoiser = 0.0
    others: dict[str, float] = {}
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue
        library, cls_name = entry
        config = folder / name / "config.json"
        if library not in ("diffusers", "transformers") or not config.is_file():
            continue  # schedulers, tokenizers, processors hold no weights
        module = diffusers if library == "diffusers" else transformers
        cls = getattr(module, cls_name, None)
        if cls is None:
            continue
        with init_empty_weights(include_buffers=False):
            if library == "diffusers":
                model = cls.from_config(cls.load_config(str(folder / name)))
            else:
                model = cls(transformers.AutoConfig.from_pretrained(str(folder / name)))
        if library == "transformers":
            # As loading does: one embedding, not two (and not inside `init_empty_weights`,
            # whose parameter registration keeps the copies apart).
            model.tie_weights()
        count = float(sum(p.numel() for p in model.parameters()))
        if name.startswith("transformer"):
            denoiser += count
        else:
            others[name] = count
    return denoiser, others


def with_params(spec: ModelSpec, denoiser: float, components: Mapping[str, float]) -> ModelSpec:
    """`spec` with a folder's own sizes, for `footprint`."""
    if spec.transformer is None:
        return replace(spec, component_params=dict(components))
    count = spec.transformer.count
    tspec = replace(spec.transformer, published_params=denoiser / max(1, count))
    return replace(spec, transformer=tspec, component_params=dict(components))
