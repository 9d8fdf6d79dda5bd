"""From a catalogue entry (or a folder) to a ready diffusers pipeline, kept loaded for reuse.

Weights are looked for, in order, in `<models_dir>/<id>/`, then in the Hugging Face cache
(`HF_HOME`, `HF_HUB_OFFLINE` honoured). Nothing is downloaded here: a missing model is an
immediate `WeightsNotFoundError` naming `moviola models pull ID`, never a stalled download.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from moviola.engine.catalogue import Capability, ModelSpec, catalogue, get_model
from moviola.engine.errors import UnknownModelError, WeightsNotFoundError
from moviola.engine.tiny import MARKER_FILE, build_tiny_pipeline

Offload = Literal["none", "model", "sequential"]
OFFLOAD_MODES: tuple[str, ...] = ("none", "model", "sequential")


@dataclass(frozen=True)
class Placement:
    """Where and how a pipeline runs."""

    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1" …
    offload: Offload = "none"
    vae_tiling: bool | None = None  # None: on for accelerators, off on CPU

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


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


def find_weights(spec: Weighted, models_dir: Path | None) -> Path | None:
    if models_dir is not None:
        local = Path(models_dir) / spec.id
        if (local / "model_index.json").is_file():
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


def spec_for_folder(folder: Path) -> ModelSpec:
    """Which catalogue entry a diffusers folder is an instance of.

    A folder Moviola saved says so in `moviola.json`; otherwise its pipeline class and
    transformer config are matched against the catalogue's published architectures.
    """
    import dataclasses

    marker = folder / MARKER_FILE
    if marker.is_file():
        base = json.loads(marker.read_text()).get("base")
        return dataclasses.replace(get_model(base), id=str(folder), repo_id=None)

    index = json.loads((folder / "model_index.json").read_text())
    cls = index.get("_class_name")
    config_file = folder / "transformer" / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    candidates = [s for s in catalogue().values() if next(iter(s.pipelines.values())) == cls]

    def mismatches(spec: ModelSpec) -> int:
        published = spec.transformer.config if spec.transformer else {}
        return sum(1 for k, v in published.items() if k in config and config[k] != v)

    if not candidates:
        raise UnknownModelError(
            f"{folder} holds a {cls}, which no catalogue model uses; "
            f'add {MARKER_FILE} with {{"base": "<model id>"}} to say which model it is'
        )
    best = min(candidates, key=mismatches)
    return dataclasses.replace(best, id=str(folder), repo_id=None)


class PipelineCache:
    """Loaded pipelines, most recently used last; the oldest are dropped past `max_loaded`.

    One base pipeline per (model, placement); the pipelines for its other capabilities are
    built from the same components with `from_pipe`, so they cost no extra memory.
    """

    def __init__(self, max_loaded: int = 1):
        self.max_loaded = max_loaded
        self._bases: OrderedDict[tuple, Any] = OrderedDict()
        self._views: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(
        self, spec: ModelSpec, weights: Path | None, capability: Capability, placement: Placement
    ) -> Any:
        key = (spec.id, str(weights), placement)
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                base = load_pipeline(spec, weights, placement)
                self._bases[key] = base
                while len(self._bases) > self.max_loaded:
                    old, _ = self._bases.popitem(last=False)
                    self._views = {k: v for k, v in self._views.items() if k[0] != old}
                    _free_accelerator_memory()
            self._bases.move_to_end(key)
            view_key = (key, capability)
            pipe = self._views.get(view_key)
            if pipe is None:
                pipe = pipeline_for(base, spec, capability)
                self._views[view_key] = pipe
            return pipe

    def loaded(self) -> list[str]:
        return [key[0] for key in self._bases]

    def clear(self) -> None:
        with self._lock:
            self._bases.clear()
            self._views.clear()
        _free_accelerator_memory()


def load_pipeline(spec: ModelSpec, weights: Path | None, placement: Placement) -> Any:
    """Build or load the base pipeline of `spec` and place it per `placement`."""
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
    # On a CPU the weights are already where they run, and offloading to a CPU means nothing.
    if on_accelerator:
        if placement.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif placement.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)

    tiling = placement.vae_tiling if placement.vae_tiling is not None else on_accelerator
    if tiling and hasattr(pipe.vae, "enable_tiling"):
        # VAE decode is where a good denoise most often runs out of memory.
        pipe.vae.enable_tiling()
    return pipe


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
