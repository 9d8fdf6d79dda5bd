"""The one translation between a job and the `GenerationRequest` the engine renders.

The service builds a request to check and plan it before anything is stored (its media stood
in for by arrays of the right shape); an executor builds the same request from the stored row
with the media decoded. Both go through `generation_request`, so what was accepted is what is
rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from moviola.audio import Audio
from moviola.config import Settings
from moviola.engine import GenerationRequest, parse_size
from moviola.engine.lora_library import LoraLibrary, library_folder
from moviola.jobs.fields import request_fields
from moviola.store.models import Video, VideoKind


@dataclass(frozen=True)
class Inputs:
    """The media a request works on."""

    image: Any = None  # a create's first frame (a PIL image)
    last_image: Any = None  # a create's last frame, with `image` as its first
    video: np.ndarray | None = None  # a remix's or an edit's source, T×H×W×3
    extend: np.ndarray | None = None  # an extension's source
    audio: Audio | None = None  # the sound of `video` or `extend`, where it has one
    # Reference images (PIL), the caller's then its characters' frames: what a reference-to-
    # video model is conditioned on.
    references: tuple[Any, ...] = ()


def generation_request(
    settings: Settings,
    *,
    kind: VideoKind,
    prompt: str,
    engine_model: str,
    size: str | None,
    seconds: float | None,
    params: dict[str, Any],
    inputs: Inputs,
) -> GenerationRequest:
    """`seconds` is a create's length; an extension adds `params["extend_seconds"]`; a remix or
    an edit is as long as its source, and a storyboard's shots say their own."""
    kind = VideoKind(kind)
    fields = request_fields(params)
    if "loras" in fields:  # names in the server's LoRA library → its files and what they fit
        fields["loras"] = LoraLibrary(library_folder(settings.data_dir)).uses(fields["loras"])
    if kind is VideoKind.EXTEND:
        seconds = float(params["extend_seconds"])
    elif kind is not VideoKind.CREATE:
        seconds = None
    return GenerationRequest(
        prompt=prompt,
        model=engine_model,
        size=parse_size(size) if size else None,
        seconds=seconds,
        image=inputs.image,
        last_image=inputs.last_image,
        video=inputs.video,
        extend=inputs.extend,
        reference_images=inputs.references,
        source_audio=inputs.audio,
        soundtrack_model=settings.soundtrack_model,
        max_prompt_chars=settings.max_prompt_chars,
        max_seconds=settings.max_seconds,
        **fields,
    )


def request_for(job: Video, inputs: Inputs, settings: Settings) -> GenerationRequest:
    """The request a stored job renders."""
    return generation_request(
        settings,
        kind=job.kind,
        prompt=job.prompt or "",
        engine_model=job.engine_model,
        size=job.size,
        seconds=float(job.seconds),
        params=job.params,
        inputs=inputs,
    )
