"""User LoRAs: what one in the library is, and whether a request's LoRAs fit its model.

Plain data and checks, no torch: a server refuses a LoRA made for another model when the request
arrives. `moviola.engine.lora_files` finds which models a file fits when it is added to the
library (`moviola.engine.lora_library`); `moviola.engine.lora_run` applies LoRAs to a warm
pipeline for one job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from moviola.engine.catalogue import ModelSpec
from moviola.errors import InvalidRequestError

MAX_LORAS = 4  # per request: each one adds its low-rank products to every layer it adapts
MAX_SCALE = 2.0  # past ±2 a LoRA overwhelms the model it adapts: noise, not a style
ADAPTER_PREFIX = "moviola-lora-"


@dataclass(frozen=True)
class LibraryLora:
    """A LoRA in the library: its file(s), and the catalogue models its layers fit."""

    name: str
    file: Path
    sha256: str  # of `file`: the adapter's identity, so a replaced file is never mistaken
    fits: tuple[str, ...]  # catalogue ids whose denoiser has every layer it adapts, at its sizes
    base: str  # in words: the family and size it was made for ("Wan2.1 T2V 1.3B")
    layout: str  # the key layout of the file: diffusers, original-wan, kohya …
    rank: int
    layers: int  # how many layers it adapts (per expert)
    # Wan 2.2 A14B LoRAs come as two files: this one is the low-noise expert's (`transformer_2`).
    low_noise_file: Path | None = None
    added_at: float = 0.0

    @property
    def adapter(self) -> str:
        """Its adapter name in a pipeline: by content, so re-adding a name with another file
        loads the new weights, and one file added under two names is loaded once."""
        return f"{ADAPTER_PREFIX}{self.sha256[:16]}"

    def fits_model(self, spec: ModelSpec) -> bool:
        return spec.id in self.fits


@dataclass(frozen=True)
class LoraUse:
    """A LoRA as one request uses it: at `scale` (0 leaves the model as it is, 1 as trained)."""

    lora: LibraryLora
    scale: float = 1.0

    @property
    def name(self) -> str:
        return self.lora.name


def check_uses(
    uses: tuple[LoraUse, ...], spec: ModelSpec, chain_spec: ModelSpec | None = None
) -> tuple[LoraUse, ...]:
    """A request's LoRAs, checked against the models that will run them; an
    `InvalidRequestError` naming `loras` (and the LoRA at fault) otherwise."""
    uses = tuple(uses)
    if len(uses) > MAX_LORAS:
        raise InvalidRequestError(
            f"loras takes at most {MAX_LORAS} LoRAs (got {len(uses)})", param="loras"
        )
    seen: set[str] = set()
    for use in uses:
        if use.name in seen:
            raise InvalidRequestError(
                f"loras names {use.name!r} twice; give each LoRA once, with one scale",
                param="loras",
            )
        seen.add(use.name)
        scale = use.scale
        if not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise InvalidRequestError(
                f"the scale of LoRA {use.name!r} must be a finite number (got {scale!r})",
                param="loras",
            )
        if not -MAX_SCALE <= scale <= MAX_SCALE:
            raise InvalidRequestError(
                f"the scale of LoRA {use.name!r} must be {-MAX_SCALE:g} to {MAX_SCALE:g} "
                f"(got {scale:g})",
                param="loras",
            )
        for model, role in ((spec, None), (chain_spec, "continues")):
            if model is not None and not use.lora.fits_model(model):
                raise InvalidRequestError(_why_not(use.lora, model, spec, role), param="loras")
    return uses


def _why_not(lora: LibraryLora, model: ModelSpec, asked: ModelSpec, role: str | None) -> str:
    fits = ", ".join(lora.fits) or "no model in this catalogue"
    if role is None:
        return (
            f"LoRA {lora.name!r} was made for {lora.base} and does not fit {model.id}; "
            f"it fits {fits}"
        )
    return (
        f"LoRA {lora.name!r} fits {asked.id}, but this video is longer than one "
        f"{asked.id} generation ({asked.max_seconds_per_segment:g} s) and its later segments run "
        f"{model.id}, which it does not fit; ask for a shorter video"
    )
