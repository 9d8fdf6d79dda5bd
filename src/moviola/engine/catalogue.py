"""The model catalogue: what each model id is, where its weights live, and how it may be driven.

Entries are plain data. Nothing here imports torch or diffusers, so listing models is instant;
`moviola.engine.loading` turns an entry into a pipeline when one is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from moviola.engine.errors import UnknownModelError


class Capability(str, Enum):
    """What a model can start from."""

    TEXT = "t2v"  # a prompt alone
    IMAGE = "i2v"  # a first frame
    VIDEO = "v2v"  # a source video, re-noised to `strength`


@dataclass(frozen=True)
class FrameRule:
    """Frame counts a model accepts: `step * k + offset` (Wan: 4k+1, LTX and CogVideoX: 8k+1)."""

    step: int
    offset: int = 1

    def at_least(self, frames: int) -> int:
        """The smallest accepted count that is >= `frames`."""
        k = max(0, math.ceil((frames - self.offset) / self.step))
        return self.step * k + self.offset

    def at_most(self, frames: int) -> int:
        """The largest accepted count that is <= `frames` (never below `offset`)."""
        k = max(0, (frames - self.offset) // self.step)
        return self.step * k + self.offset

    def accepts(self, frames: int) -> bool:
        return frames >= self.offset and (frames - self.offset) % self.step == 0


@dataclass(frozen=True)
class TransformerSpec:
    """The denoiser's architecture as published, in the diffusers class's own config keys.

    `published_params` is the size the model is known by (1.3e9 for "1.3B"); a test builds the
    class on the meta device from `config` and checks its parameter count against it.
    `count` is 2 for Wan 2.2 A14B, whose two experts (`transformer`, `transformer_2`) are alike.
    """

    cls: str
    config: Mapping[str, Any]
    published_params: float
    count: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the catalogue.

    `pipelines` maps each capability to the diffusers pipeline class that serves it; the first
    one listed is the class the weights' `model_index.json` names, the others are built from the
    same components with `from_pipe`. `native_sizes` are (width, height) pairs the model was
    trained at; `size_multiple` is what any render size must divide by.
    """

    id: str
    name: str
    family: str  # "wan", "wan-ti2v", "ltx", "ltx2", "hunyuanvideo15", "cogvideox", "tiny"
    repo_id: str | None
    pipelines: Mapping[Capability, str]
    native_sizes: tuple[tuple[int, int], ...]
    size_multiple: int
    fps: int
    frame_rule: FrameRule
    max_frames: int
    default_steps: int
    default_guidance: float
    license: str
    vram_gb: float  # rough peak at the default size with no offload, bf16
    transformer: TransformerSpec | None = None
    # Parameters of every other component (model_index.json's names: text_encoder, vae, …).
    component_params: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    flow_shift: float | None = None
    # The model whose image-to-video mode continues this one's segments when a request is longer
    # than one generation; None when this model has an image mode of its own.
    chain_model: str | None = None
    # The model that serves this one's reference-conditioned requests (characters, reference
    # images): a VACE model of its family and size; None when no model does. A model that
    # takes references itself says so with `takes_references` instead.
    reference_model: str | None = None
    takes_references: bool = False
    description: str = ""
    is_test_model: bool = False
    # Makes its own sound, in step with the picture (LTX-2): every pipeline call returns audio.
    audio: bool = False
    # Makes a video between a given first and last frame (Wan 2.1 FLF2V: its image pipeline's
    # `last_image`). Such a model conditions on the pair, so it needs both, in one generation.
    last_frame: bool = False
    # A step-distilled model's noise schedule, used when a call runs its length in steps (with
    # another step count the pipeline's own schedule is used, so the count is never ignored).
    sigmas: tuple[float, ...] | None = None
    # Extra keyword arguments every call of this model's pipelines takes (e.g. Wan 2.2's
    # `guidance_scale_2`, LTX's `decode_timestep`).
    call_defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        return tuple(self.pipelines)

    def supports(self, capability: Capability) -> bool:
        return capability in self.pipelines

    @property
    def max_seconds_per_segment(self) -> float:
        return (self.max_frames - 1) / self.fps


def _entries() -> dict[str, ModelSpec]:
    from moviola.engine.open_models import OPEN_MODELS
    from moviola.engine.tiny import TINY_MODELS

    entries = {spec.id: spec for spec in (*TINY_MODELS, *OPEN_MODELS)}
    return entries


_CATALOGUE: dict[str, ModelSpec] | None = None


def catalogue() -> dict[str, ModelSpec]:
    """Every model id Moviola knows, test models first."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = _entries()
    return _CATALOGUE


def get_model(model_id: str) -> ModelSpec:
    """The entry for `model_id`, or an `UnknownModelError` that lists the known ids."""
    try:
        return catalogue()[model_id]
    except KeyError:
        known = ", ".join(sorted(catalogue()))
        raise UnknownModelError(
            f"unknown model {model_id!r}; known models: {known} (or a path to a diffusers folder)",
        ) from None
