"""How each diffusers pipeline class is called: the keyword arguments that differ between them.

Everything else about a generation is the same for every model; this is the one place that knows
that LTX's condition pipeline takes `denoise_strength` where Wan's takes `strength`, and so on.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any

from moviola.engine.catalogue import Capability
from moviola.engine.errors import UnsupportedInputError
from moviola.engine.references import first_frame_control


@dataclass(frozen=True)
class Call:
    """What one pipeline call needs, whatever the pipeline."""

    capability: Capability
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    frames: int
    fps: int
    steps: int
    guidance: float
    generator: Any
    image: Any = None  # PIL image at (width, height), for IMAGE
    last_image: Any = None  # the last frame, as `image`, for a model that takes one
    video: list | None = None  # PIL frames at (width, height), for VIDEO
    strength: float = 0.6
    # Pictures of a subject or a style (PIL images), for a model that takes them (VACE).
    reference_images: tuple[Any, ...] = ()


def call_kwargs(pipeline_cls: type, call: Call, defaults: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for a `pipeline_cls` instance's `__call__` that carry out `call`."""
    cls = pipeline_cls.__name__
    kwargs: dict[str, Any] = dict(defaults)
    kwargs.update(
        prompt=call.prompt,
        negative_prompt=call.negative_prompt,
        height=call.height,
        width=call.width,
        num_frames=call.frames,
        num_inference_steps=call.steps,
        guidance_scale=call.guidance,
        generator=call.generator,
        frame_rate=call.fps,
        output_type="np",  # defaults differ (np / pil) between families
    )
    if call.capability is Capability.IMAGE:
        kwargs["image"] = call.image
        if call.last_image is not None:
            kwargs["last_image"] = call.last_image
    elif call.capability is Capability.VIDEO:
        kwargs["video"] = call.video
        kwargs["strength"] = call.strength

    if cls == "LTXConditionPipeline" and call.capability is Capability.VIDEO:
        kwargs["denoise_strength"] = kwargs.pop("strength")
    elif cls == "LTX2ConditionPipeline" and call.capability is Capability.VIDEO:
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        # A condition's strength is how much of the source is kept: the inverse of ours.
        source = kwargs.pop("video")
        kwargs["conditions"] = [
            LTX2VideoCondition(frames=source, strength=1 - kwargs.pop("strength"))
        ]
    elif call.capability is Capability.VIDEO:
        kwargs.pop("num_frames")  # video-to-video pipelines take the length of the source

    if cls == "WanVACEPipeline":
        # VACE takes a first frame as its control video's frame 0, and references as such.
        if call.capability is Capability.IMAGE:
            kwargs["video"], kwargs["mask"] = first_frame_control(kwargs.pop("image"), call.frames)
        if call.reference_images:
            kwargs["reference_images"] = list(call.reference_images)

    # Arguments a pipeline does not have are settled another way by it: HunyuanVideo 1.5 takes
    # guidance from its `guider` component and its image-to-video size from the image, Wan has
    # no frame rate. Passing them would be a TypeError.
    accepted = _parameters(pipeline_cls)
    if call.reference_images and "reference_images" not in kwargs:
        # Dropped by the filter below, they would be a request quietly ignored.
        raise UnsupportedInputError(f"{cls} takes no reference images", param="reference_images")
    if call.last_image is not None and accepted is not None and "last_image" not in accepted:
        # Filtered out below, it would be a request quietly ignored.
        raise UnsupportedInputError(f"{cls} takes no last frame", param="last_image")
    if accepted is not None:
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    return kwargs


@cache
def _parameters(cls: type) -> frozenset[str] | None:
    params = inspect.signature(cls.__call__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)
