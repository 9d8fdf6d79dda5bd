"""A generation request, checked and turned into a plan before any model is touched.

Planning is pure and quick (no torch), so a server can reject a bad request at once and know
exactly what a worker will render: sizes, frame counts, segments, steps, seed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import ItemsView, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from moviola.audio import Audio
from moviola.engine import references
from moviola.engine.catalogue import Capability, ModelSpec, get_model
from moviola.engine.distilled import route_for, why_no_route
from moviola.engine.errors import UnsupportedInputError
from moviola.engine.loras import LoraUse, check_uses
from moviola.engine.sizes import (
    Segment,
    check_size,
    frames_for_seconds,
    plan_segments,
    render_size,
)
from moviola.engine.speed import Speed
from moviola.engine.step_caches import why_no_cache
from moviola.errors import InvalidRequestError

MAX_PROMPT_CHARS = 32_000  # what the hosted Videos API allowed
MAX_SECONDS = 120.0  # Sora's ceiling for a video grown by extensions
MAX_SEED = 2**63 - 1
DEFAULT_STRENGTH = 0.6
DEFAULT_SOUNDTRACK_MODEL = "stable-audio-open-1.0"


class AudioMode(str, Enum):
    """What sound a request asks for."""

    AUTO = "auto"  # the model's own where it makes sound, else the source's (if any), else none
    NONE = "none"  # silent, even if the model or the source has sound
    SOUNDTRACK = "soundtrack"  # a text-to-audio model's soundtrack from the prompt
    ADD = "add"  # an edit that keeps the picture as it is and only makes its sound


class SoundKind(str, Enum):
    """What made a video's sound: what the API's `moviola.audio.kind` says."""

    MODEL = "model"  # the video model, with the picture (LTX-2)
    SOURCE = "source"  # the source video's own, kept through a remix, edit or extension
    SOUNDTRACK = "soundtrack"  # a text-to-audio model, from the prompt


@dataclass
class GenerationRequest:
    """What to make. Only `prompt` is required.

    - `size`: the output (width, height); the model renders at its nearest native size and the
      frames are scaled to exactly this when encoded. None: the model's first native size.
    - `seconds` or `frames` (not both): the length; None: the model's longest single segment,
      or the source's length for video input.
    - `image`: a first frame (PIL image). `video`: a source to re-render (uint8 T×H×W×3) at
      `strength` (0 keeps it, 1 ignores it). `extend`: a video to continue by `seconds`.
    - `last_image`: the last frame, with `image` as the first, for a model that makes a video
      between two frames (`ModelSpec.last_frame`).
    - `audio`: what sound to give it (`AudioMode`); `source_audio` is the sound of `video` or
      `extend`, kept where the model makes none; `soundtrack_model` makes soundtracks.
    - `reference_images`: pictures of a subject or a style (PIL images or uint8 H×W×3): a
      character's frames, or a caller's; planned on the model's `reference_model` (VACE) when
      the model takes none itself, and kept on every segment.
    - `speed`: `quality`, `balanced` (a step cache) or `fast` (a step-distilled LoRA, at its
      steps and guidance unless `steps` and `guidance` are given); see `moviola.engine.speed`.
    - `loras`: LoRAs from the library at their scales (`moviola.engine.loras`), at most four,
      each made for this model's family and size.
    """

    prompt: str
    model: str = "wan2.2-ti2v-5b"
    negative_prompt: str | None = None
    size: tuple[int, int] | None = None
    seconds: float | None = None
    frames: int | None = None
    fps: int | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    image: Any = None
    last_image: Any = None
    video: Any = None
    strength: float = DEFAULT_STRENGTH
    extend: Any = None
    reference_images: Sequence[Any] = ()
    audio: AudioMode | str = AudioMode.AUTO
    speed: Speed | str = Speed.QUALITY
    loras: tuple[LoraUse, ...] = ()
    source_audio: Audio | None = None
    soundtrack_model: str = DEFAULT_SOUNDTRACK_MODEL
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_seconds: float = MAX_SECONDS


@dataclass(frozen=True)
class Plan:
    """A request resolved against its model: everything the engine will do."""

    spec: ModelSpec
    capability: Capability
    render_size: tuple[int, int]
    size: tuple[int, int]
    fps: int
    total_frames: int  # frames of the result, extension source included
    segments: list[Segment]
    steps: int
    guidance: float
    seed: int
    strength: float
    existing_frames: int = 0  # frames of an extension's source
    chain_spec: ModelSpec | None = None
    references: int = 0  # reference images each call takes
    # The model asked for, where references routed the request to `spec` (its reference model).
    routed_from: str | None = None
    audio: AudioMode = AudioMode.AUTO
    speed: Speed = Speed.QUALITY
    loras: tuple[LoraUse, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.total_frames / self.fps

    @property
    def sound(self) -> SoundKind | None:
        """What makes the new part's sound: the model's own calls, a soundtrack, or nothing
        (the source's sound, where there is one, is then kept for `auto`)."""
        if self.audio is AudioMode.SOUNDTRACK:
            return SoundKind.SOUNDTRACK
        if self.audio is AudioMode.NONE:
            return None
        if self.spec.audio and self.spec.supports(self.capability):
            return SoundKind.MODEL
        return SoundKind.SOUNDTRACK if self.audio is AudioMode.ADD else None

    @property
    def keeps_picture(self) -> bool:
        """An "add sound" edit: the source's frames are the result's, untouched."""
        return self.audio is AudioMode.ADD


def plan(request: GenerationRequest, spec: ModelSpec | None = None) -> Plan:
    """Check `request` and resolve it against its model; raises `InvalidRequestError`s."""
    spec = spec or get_model(request.model)
    asked = spec
    if request.reference_images:
        spec = _reference_spec(request, spec)
    _check_prompt(request)
    audio = _audio_mode(request)
    if request.last_image is not None and request.image is None:
        raise InvalidRequestError(
            "a last frame needs a first frame (image) to start from", param="image"
        )
    capability = _capability(request, spec, audio)
    _check_numbers(request)

    size = check_size(request.size) if request.size is not None else None
    source = request.video if request.video is not None else request.extend
    if size is None and source is not None:
        height, width = source.shape[1:3]
        size = (width - width % 2, height - height % 2)
    render = render_size(spec, size)
    size = size or render
    fps = request.fps or spec.fps

    existing = 0
    if request.extend is not None:
        existing = len(request.extend)
        added = _requested_frames(request, fps) or spec.max_frames - 1
        total = existing + added
    elif request.video is not None:
        total = min(len(request.video), _requested_frames(request, fps) or len(request.video))
    else:
        total = _requested_frames(request, fps) or spec.max_frames

    if total / fps > request.max_seconds + 1e-9:
        raise InvalidRequestError(
            f"the video would be {total / fps:.1f} s long; the limit is {request.max_seconds:g} s",
            param="seconds",
        )

    if capability is Capability.VIDEO:
        window = spec.frame_rule.at_most(spec.max_frames)
        segments = [
            Segment(i, spec.frame_rule.at_least(min(window, total - start)), continues=False)
            for i, start in enumerate(range(0, total, window))
        ]
    else:
        segments = plan_segments(total, spec.frame_rule, spec.max_frames, existing=existing)

    chain_spec = None
    if any(s.continues for s in segments) and not spec.supports(Capability.IMAGE):
        if spec.chain_model is None:
            raise InvalidRequestError(
                f"{spec.id} makes at most {spec.max_seconds_per_segment:g} s per video and has "
                f"no image-to-video mode to continue from; ask for a shorter video",
                param="seconds",
            )
        chain_spec = get_model(spec.chain_model)
    if request.last_image is not None or spec.last_frame:
        _check_last_frame(request, spec, segments)

    speed = _speed(request, spec, chain_spec)
    loras = check_uses(request.loras, spec, chain_spec)
    default_steps, default_guidance = spec.default_steps, spec.default_guidance
    route = route_for(spec) if speed is Speed.FAST else None
    if route is not None:
        # What the step-distilled LoRA was distilled for: a few steps, no guidance.
        default_steps, default_guidance = route.steps, route.guidance

    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    return Plan(
        spec=spec,
        capability=capability,
        render_size=render,
        size=size,
        fps=fps,
        total_frames=total,
        segments=segments,
        steps=request.steps or default_steps,
        guidance=request.guidance if request.guidance is not None else default_guidance,
        seed=seed,
        strength=request.strength,
        existing_frames=existing,
        chain_spec=chain_spec,
        references=len(request.reference_images),
        routed_from=asked.id if spec is not asked else None,
        audio=audio,
        speed=speed,
        loras=loras,
    )


def _reference_spec(request: GenerationRequest, spec: ModelSpec) -> ModelSpec:
    """The model that renders a request with references (see `moviola.engine.references`)."""
    references.check(request.reference_images)
    if request.video is not None:
        raise UnsupportedInputError(
            "characters and reference images make a new video (from a prompt, a first frame, "
            "or continuing one); a remix or an edit of a video takes none",
            param=references.PARAM,
        )
    return references.route(spec)


def _check_prompt(request: GenerationRequest) -> None:
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequestError("prompt must not be empty", param="prompt")
    if len(request.prompt) > request.max_prompt_chars:
        raise InvalidRequestError(
            f"prompt is {len(request.prompt):,} characters; the limit is "
            f"{request.max_prompt_chars:,}",
            param="prompt",
        )


def _speed(request: GenerationRequest, spec: ModelSpec, chain_spec: ModelSpec | None) -> Speed:
    try:
        speed = Speed(request.speed)
    except ValueError:
        choices = ", ".join(s.value for s in Speed)
        raise InvalidRequestError(
            f"speed must be one of {choices} (got {request.speed!r})", param="speed"
        ) from None
    for model in (spec, chain_spec):
        if model is None:
            continue
        if speed is Speed.FAST and route_for(model) is None:
            raise InvalidRequestError(why_no_route(model), param="speed")
        reason = why_no_cache(model) if speed is Speed.BALANCED else None
        if reason is not None:
            raise InvalidRequestError(reason, param="speed")
    return speed


def _audio_mode(request: GenerationRequest) -> AudioMode:
    try:
        audio = AudioMode(request.audio)
    except ValueError:
        choices = ", ".join(mode.value for mode in AudioMode)
        raise InvalidRequestError(
            f"audio must be one of {choices} (got {request.audio!r})", param="audio"
        ) from None
    if audio is AudioMode.ADD and request.video is None:
        raise InvalidRequestError(
            "audio=add keeps a video's picture and makes its sound: it needs a video to work on "
            "(an edit)",
            param="audio",
        )
    return audio


def _capability(request: GenerationRequest, spec: ModelSpec, audio: AudioMode) -> Capability:
    given = [name for name in ("image", "video", "extend") if getattr(request, name) is not None]
    if len(given) > 1:
        raise InvalidRequestError(
            f"give only one of image, video and extend (got {', '.join(given)})",
            param=given[1],
        )
    for name in ("video", "extend"):
        value = getattr(request, name)
        if value is not None and (getattr(value, "ndim", 0) != 4 or len(value) == 0):
            raise InvalidRequestError(f"{name} must be a non-empty T×H×W×3 video", param=name)

    if request.video is not None:
        capability, param = Capability.VIDEO, "video"
        if audio is AudioMode.ADD and not (spec.audio and spec.supports(capability)):
            return capability  # the picture is kept and a soundtrack made: the model is not run
    elif request.image is not None:
        capability, param = Capability.IMAGE, "image"
    elif request.extend is not None:
        # Extending continues from the source's last frame: an image-to-video job.
        capability, param = Capability.TEXT, "extend"
        if not (spec.supports(Capability.IMAGE) or spec.chain_model):
            raise UnsupportedInputError(
                f"{spec.id} cannot continue a video: it has no image-to-video mode",
                param="extend",
            )
        return capability
    else:
        capability, param = Capability.TEXT, "model"

    if not spec.supports(capability):
        able = sorted(m for m, s in _catalogue_items() if s.supports(capability))
        what = {"t2v": "a prompt alone", "i2v": "an image", "v2v": "a video"}[capability.value]
        raise UnsupportedInputError(
            f"{spec.id} cannot start from {what}; models that can: {', '.join(able)}",
            param=param,
        )
    return capability


def _check_last_frame(request: GenerationRequest, spec: ModelSpec, segments: list[Segment]) -> None:
    """Only a model that makes a video between two frames takes a last frame, and such a model
    needs both frames, in one generation: it conditions every call on the pair (diffusers'
    Wan 2.2 TI2V path, for one, would ignore a last frame without a word)."""
    if not spec.last_frame:
        able = sorted(m for m, s in _catalogue_items() if s.last_frame)
        raise UnsupportedInputError(
            f"{spec.id} cannot end on a given frame; models that can: {', '.join(able)}",
            param="last_image",
        )
    if request.extend is not None:
        raise UnsupportedInputError(
            f"{spec.id} makes a video between a given first and last frame; it cannot "
            "continue a video",
            param="extend",
        )
    for name, given in (("image", request.image), ("last_image", request.last_image)):
        if given is None:
            raise InvalidRequestError(
                f"{spec.id} makes a video between two given frames: give it the first and the last",
                param=name,
            )
    if len(segments) > 1 or segments[0].frames < 2:
        raise InvalidRequestError(
            f"a video between two given frames is one generation, of 2 frames or more: "
            f"{spec.id} makes up to {spec.max_seconds_per_segment:g} s",
            param="seconds",
        )


def _catalogue_items() -> ItemsView[str, ModelSpec]:
    from moviola.engine.catalogue import catalogue

    return catalogue().items()


def _check_numbers(request: GenerationRequest) -> None:
    if request.seconds is not None and request.frames is not None:
        raise InvalidRequestError("give seconds or frames, not both", param="frames")
    checks = [
        ("seconds", request.seconds, lambda v: v > 0, "must be greater than 0"),
        ("frames", request.frames, lambda v: v >= 1, "must be at least 1"),
        ("fps", request.fps, lambda v: 1 <= v <= 120, "must be 1–120"),
        ("steps", request.steps, lambda v: 1 <= v <= 500, "must be 1–500"),
        ("guidance", request.guidance, lambda v: 0 <= v <= 50, "must be 0–50"),
        ("seed", request.seed, lambda v: 0 <= v <= MAX_SEED, f"must be 0–{MAX_SEED}"),
        ("strength", request.strength, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ]
    if request.seconds is not None and request.seconds > request.max_seconds:
        # Checked before any arithmetic: 1e308 seconds is finite, its frame count is not.
        raise InvalidRequestError(
            f"seconds is {request.seconds:g}; the limit is {request.max_seconds:g}",
            param="seconds",
        )
    for name, value, ok, rule in checks:
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequestError(f"{name} must be a finite number (got {value})", param=name)
        if value is not None and not ok(value):
            raise InvalidRequestError(f"{name} {rule} (got {value})", param=name)


def _requested_frames(request: GenerationRequest, fps: int) -> int | None:
    if request.frames is not None:
        return request.frames
    if request.seconds is not None:
        return frames_for_seconds(request.seconds, fps)
    return None
