"""From a catalogue entry (or a folder) to a ready diffusers pipeline, kept loaded for reuse.

Weights are looked for, in order, in `<models_dir>/<id>/`, then in the Hugging Face cache
(`HF_HOME`, `HF_HUB_OFFLINE` honoured). Nothing is downloaded here: a missing model is an
immediate `WeightsNotFoundError` naming `moviola models pull ID`, never a stalled download.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from moviola.engine.catalogue import Capability, ModelSpec, catalogue, get_model
from moviola.engine.errors import UnknownModelError, WeightsNotFoundError
from moviola.engine.memory import MemoryMode, MemoryPlan, MemoryPreference, free_bytes
from moviola.engine.parallel import enable_context_parallel
from moviola.engine.recognise import spec_for_folder as spec_for_folder
from moviola.engine.references import pad_masks_for_every_reference
from moviola.engine.tiny import build_tiny_pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where a pipeline runs, and how the memory planner may trade speed for memory there."""

    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1" …
    memory: MemoryPreference = MemoryPreference.AUTO
    vae_tiling: bool | None = None  # None: the planner decides per request
    # Ranks (processes, one device each) that split every denoiser forward (engine/parallel.py).
    context_parallel: int = 1

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def on_accelerator(self) -> bool:
        return not self.resolved_device().startswith("cpu")


def resolve_model(model: str, models_dir: Path | None = None) -> tuple[ModelSpec, Path | None]:
    """A model id or a folder path → (its catalogue entry, the folder holding its weights).

    The folder is None for tiny models, which are built in code unless saved under models_dir.
    """
    path = Path(model).expanduser()
    if model not in catalogue() and (path.is_dir() or "/" in model or model.startswith(".")):
        if not (path / "model_index.json").is_file():
            raise UnknownModelError(
                f"{model!r} is not a diffusers model folder (no model_index.json in it)"
            )
        return spec_for_folder(path), path
    spec = get_model(model)
    return spec, find_weights(spec, models_dir)


class Weighted(Protocol):
    """Anything whose weights are looked for: a video model or a soundtrack model."""

    @property
    def id(self) -> str: ...

    @property
    def repo_id(self) -> str | None: ...


def find_weights(
    spec: Weighted, models_dir: Path | None, *, marker: str = "model_index.json"
) -> Path | None:
    """`<models_dir>/<id>/` when it holds `marker` (a diffusers pipeline's model_index.json; a
    transformers model's config.json), else the Hugging Face cache's snapshot of the repo."""
    if models_dir is not None:
        local = Path(models_dir) / spec.id
        if (local / marker).is_file():
            return local
    if spec.repo_id is None:
        return None  # a test model: built in code
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        # local_files_only: answers from the cache at once, with or without a network.
        return Path(snapshot_download(spec.repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        raise WeightsNotFoundError(
            f"the weights of {spec.id} ({spec.repo_id}) are not on this machine; "
            f"fetch them with `moviola models pull {spec.id}`",
            param="model",
        ) from None


class PipelineCache:
    """Loaded pipelines, most recently used last; the oldest are dropped past `max_loaded`.

    One base pipeline per (model, placement), placed as its memory plan says; the pipelines for
    its other capabilities are built from the same components with `from_pipe`, so they cost no
    extra memory. A request planned into another placement reloads the model that way.
    """

    def __init__(self, max_loaded: int = 1):
        self.max_loaded = max_loaded
        self._bases: OrderedDict[tuple, tuple[Any, MemoryPlan | None]] = OrderedDict()
        self._views: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(
        self,
        spec: ModelSpec,
        weights: Path | None,
        capability: Capability,
        placement: Placement,
        memory: MemoryPlan | None = None,
    ) -> Any:
        key = (spec.id, str(weights), placement)
        with self._lock:
            entry = self._bases.get(key)
            if entry is not None and not _same_placement(entry[1], memory):
                self._drop(key)
                entry = None
            if entry is None:
                # Room first: two models on one GPU at once is how a switch runs out of memory.
                while self._bases and (
                    len(self._bases) >= self.max_loaded or not _room_for(memory, placement)
                ):
                    self._drop(next(iter(self._bases)))
                entry = (load_pipeline(spec, weights, placement, memory), memory)
                self._bases[key] = entry
            self._bases.move_to_end(key)
            base = entry[0]
            view_key = (key, capability)
            pipe = self._views.get(view_key)
            if pipe is None:
                pipe = pipeline_for(base, spec, capability)
                self._views[view_key] = pipe
            if memory is not None and hasattr(pipe, "vae"):
                set_vae_tiling(pipe.vae, memory.vae_tiling)
            return pipe

    def loaded(self) -> list[str]:
        return [key[0] for key in self._bases]

    def memory_of(self, spec: ModelSpec, weights: Path | None, placement: Placement) -> Any:
        """The plan the loaded `spec` was placed by, or None when it is not loaded."""
        entry = self._bases.get((spec.id, str(weights), placement))
        return entry[1] if entry else None

    def clear(self) -> None:
        with self._lock:
            self._bases.clear()
            self._views.clear()
        _free_accelerator_memory()

    def _drop(self, key: tuple) -> None:
        self._bases.pop(key, None)
        self._views = {k: v for k, v in self._views.items() if k[0] != key}
        _free_accelerator_memory()


def _room_for(memory: MemoryPlan | None, placement: Placement) -> bool:
    """Whether the device has the planned peak free now, beside the models already loaded.
    (The ranks of a group keep alike what they load: only `max_loaded` evicts there.)"""
    if memory is None or not placement.on_accelerator or placement.context_parallel > 1:
        return True
    return free_bytes(placement.resolved_device()) >= memory.peak_bytes


def _same_placement(loaded: MemoryPlan | None, wanted: MemoryPlan | None) -> bool:
    if loaded is None or wanted is None:
        return loaded is wanted
    return (loaded.mode, loaded.fp8) == (wanted.mode, wanted.fp8)


def load_pipeline(
    spec: ModelSpec, weights: Path | None, placement: Placement, memory: MemoryPlan | None = None
) -> Any:
    """Build or load the base pipeline of `spec` and place it as `memory` plans (None: every
    component resident on the device, the VAE tiled on accelerators)."""
    import torch

    _quiet_libraries()
    device = placement.resolved_device()
    on_accelerator = not device.startswith("cpu")
    if weights is None:
        pipe = build_tiny_pipeline(spec)
    else:
        import diffusers

        base_cls = getattr(diffusers, next(iter(spec.pipelines.values())))
        dtype: Any = torch.bfloat16 if on_accelerator else torch.float32
        if spec.family.startswith("wan") and on_accelerator:
            # The Wan VAE is numerically fragile in bf16; every reference runs it in float32.
            dtype = {"default": torch.bfloat16, "vae": torch.float32}
        pipe = base_cls.from_pretrained(str(weights), dtype=dtype)

    pipe.set_progress_bar_config(disable=True)
    if type(pipe).__name__ == "WanVACEPipeline":
        pad_masks_for_every_reference(pipe)
    if memory is None:
        memory = MemoryPlan(MemoryMode.RESIDENT, on_accelerator, 0, 0)
    place(pipe, memory, device)
    if hasattr(pipe, "vae"):
        retry_decode_tiled(pipe.vae)
        tiling = placement.vae_tiling if placement.vae_tiling is not None else memory.vae_tiling
        set_vae_tiling(pipe.vae, tiling)
    enable_context_parallel(pipe, placement.context_parallel)
    return pipe


# Components that turn a prompt (or an image) into conditioning: used once per call, first.
_ENCODERS = ("text_encoder", "image_encoder", "connectors")


def place(pipe: Any, memory: MemoryPlan, device: str) -> None:
    """Put `pipe`'s components where `memory.mode` says, the denoiser(s) in FP8 if it says so."""
    import torch

    if memory.fp8:
        compute = next(pipe.transformer.parameters()).dtype
        for denoiser in _denoisers(pipe):
            # Stored in FP8, each layer cast up to compute: half the bytes of bf16 weights.
            denoiser.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=compute
            )
    mode = memory.mode
    # Streams overlap the next group's copy with this one's compute; CUDA only.
    streams = torch.device(device).type == "cuda"
    if mode is MemoryMode.RESIDENT:
        pipe.to(device)
    elif mode is MemoryMode.ENCODER_OFFLOAD:
        _offload_encoders(pipe, device)
    elif mode is MemoryMode.MODEL_OFFLOAD:
        pipe.enable_model_cpu_offload(device=device)
    elif mode is MemoryMode.GROUP_OFFLOAD:
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=streams,
            non_blocking=streams,
        )
    else:
        # Leaf by leaf, as sequential CPU offload, but through diffusers' own hooks (accelerate's
        # sequential offload fails on transformers 5's text encoders) and with prefetching.
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_type="leaf_level",
            use_stream=streams,
            non_blocking=streams,
        )


def _denoisers(pipe: Any) -> list[Any]:
    return [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]


def _offload_encoders(pipe: Any, device: str) -> None:
    """The encoders come to the device to encode and go back to the CPU when the denoiser first
    runs; everything else comes on its first use and stays."""
    import torch
    from accelerate import cpu_offload_with_hook

    modules = {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}
    hook = None
    for name, module in modules.items():
        if name.startswith(_ENCODERS):
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
    encoders_done = hook
    for name, module in modules.items():
        if not name.startswith(_ENCODERS):
            # The denoiser's first forward sends the last encoder back; nothing sends it away.
            prev = encoders_done if name.startswith("transformer") else None
            cpu_offload_with_hook(module, device, prev_module_hook=prev)


def set_vae_tiling(vae: Any, tiled: bool) -> None:
    if tiled and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    elif not tiled and hasattr(vae, "disable_tiling"):
        vae.disable_tiling()


class TiledRetry:
    """Set on a VAE whose decode ran out of memory untiled and was done again tiled."""

    def __init__(self) -> None:
        self.happened = False


def retry_decode_tiled(vae: Any) -> None:
    """Make `vae.decode` try again tiled when an untiled decode runs out of memory, as ComfyUI
    does: the denoising before it is the costly part, and must not be lost to the decode."""
    import torch

    if not hasattr(vae, "enable_tiling") or isinstance(
        getattr(vae, "tiled_retry", None), TiledRetry
    ):
        return
    untried = vae.decode
    vae.tiled_retry = TiledRetry()

    def decode(*args: Any, **kwargs: Any) -> Any:
        try:
            return untried(*args, **kwargs)
        except torch.OutOfMemoryError:
            if getattr(vae, "use_tiling", False):
                raise
            log.warning("the VAE decode ran out of memory untiled; decoding again tiled")
            _free_accelerator_memory()
            vae.tiled_retry.happened = True
            vae.enable_tiling()
            return untried(*args, **kwargs)

    vae.decode = decode


def pipeline_for(base: Any, spec: ModelSpec, capability: Capability) -> Any:
    """The pipeline serving `capability`, sharing `base`'s components."""
    import diffusers

    cls = getattr(diffusers, spec.pipelines[capability])
    if isinstance(base, cls):
        return base
    pipe = cls.from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    if cls.__name__ == "WanVideoToVideoPipeline":
        _fix_wan_v2v_scale(pipe)
    return pipe


def _fix_wan_v2v_scale(pipe: Any) -> None:
    """diffusers 0.42's Wan V2V derives the VAE's scale from its layer count, which is wrong for
    the 16× VAE of Wan 2.2 TI2V-5B (it assumes 8×); read the VAE's own config, as WanPipeline
    and WanImageToVideoPipeline do."""
    from diffusers.video_processor import VideoProcessor

    config = pipe.vae.config
    spatial = config.get("scale_factor_spatial")
    if spatial and pipe.vae_scale_factor_spatial != spatial:
        pipe.vae_scale_factor_spatial = spatial
        pipe.vae_scale_factor_temporal = config.get("scale_factor_temporal", 4)
        pipe.video_processor = VideoProcessor(vae_scale_factor=pipe.vae_scale_factor_spatial)


def _quiet_libraries() -> None:
    """diffusers and transformers warn at every load about things Moviola handles (dtype casts,
    a missing torchvision, LTX's timesteps); errors still come through."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
