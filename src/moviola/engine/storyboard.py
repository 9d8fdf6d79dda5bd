"""Storyboards: a sequence of shots rendered as one video, each shot also kept on its own.

    shots = [StoryboardShot("a fox wakes up", 2), StoryboardShot("it runs into the snow", 3)]
    board = generate_storyboard(engine, shots, GenerationRequest("", model="tiny", seed=7))
    board.result.frames  # every shot's frames, in order
    board.shots[1].frames  # the second shot alone

A shot with no image of its own continues from the last frame of the shot before, as an
extension does (through the model's image-to-video mode or its chain model), so the cut is
seamless and no frame is repeated; a shot with an image starts afresh from it. Sound follows
the picture: a continuing shot's sound is crossfaded into the one before under that last frame,
as an extension's is, and a fresh shot's starts with a short fade. The base
request carries what all shots share: model, size, fps, steps, guidance, seed, negative prompt
and any reference images; a shot's own references (the characters it names) join them, on each
of its segments. Shots join only at one size and frame rate, so a storyboard with references
in any shot renders every shot on the model that takes them (its `reference_model`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from moviola import audio as sound
from moviola.audio import Audio
from moviola.engine import references
from moviola.engine.catalogue import catalogue, get_model
from moviola.engine.generate import Engine, GenerationResult
from moviola.engine.progress import CancelToken, Progress, ProgressCallback, Stage
from moviola.engine.request import GenerationRequest, Plan, plan
from moviola.errors import InvalidRequestError

MAX_SHOTS = 24
# Each shot draws its noise from its own stretch of seeds: a shot's segments use seed + i.
SHOT_SEED_STRIDE = 1000


@dataclass(frozen=True)
class StoryboardShot:
    prompt: str
    seconds: float
    image: Any = None  # a first frame (PIL image or uint8 H×W×3): the shot starts afresh
    # Pictures of a subject (a character's frames) this shot is conditioned on.
    reference_images: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ShotFrames:
    index: int  # 1-based, as the shot is numbered to a person
    prompt: str
    start_frame: int  # where the shot begins in the whole video
    frames: np.ndarray


@dataclass
class StoryboardResult:
    result: GenerationResult  # the whole video
    shots: list[ShotFrames]


def shot_request(
    base: GenerationRequest,
    shots: list[StoryboardShot],
    index: int,
    previous: Any = None,
    previous_audio: Audio | None = None,
) -> GenerationRequest:
    """The request for shot `index` (0-based); `previous` stands for the frames before it and
    `previous_audio` for their sound."""
    shot = shots[index]
    request = dataclasses.replace(
        base,
        prompt=shot.prompt,
        seconds=shot.seconds,
        frames=None,
        image=None,
        video=None,
        extend=None,
        seed=None if base.seed is None else base.seed + index * SHOT_SEED_STRIDE,
        reference_images=(*base.reference_images, *shot.reference_images),
    )
    if shot.image is not None:
        return dataclasses.replace(request, image=shot.image)
    if index > 0:
        # Only the last frame matters to the continuation; one frame keeps the request small.
        return dataclasses.replace(request, extend=previous, source_audio=previous_audio)
    return request


def plan_storyboard(shots: list[StoryboardShot], base: GenerationRequest) -> list[Plan]:
    """Check every shot before anything renders; raises `InvalidRequestError`s naming the shot."""
    if not 1 <= len(shots) <= MAX_SHOTS:
        raise InvalidRequestError(
            f"a storyboard has 1 to {MAX_SHOTS} shots, not {len(shots)}", param="shots"
        )
    base = on_one_model(shots, base)
    stand_in = np.zeros((1, 16, 16, 3), np.uint8)
    plans: list[Plan] = []
    for index in range(len(shots)):
        try:
            plans.append(plan(shot_request(base, shots, index, stand_in)))
        except InvalidRequestError as err:
            raise InvalidRequestError(
                f"shot {index + 1}: {err.message}", param=f"shots[{index}].{err.param or 'prompt'}"
            ) from None
        if index == 0 and base.size is None:
            # Every shot at the first one's size, never at a stand-in's.
            base = dataclasses.replace(base, size=plans[0].size)
    frames = sum(p.total_frames - p.existing_frames for p in plans)
    fps = plans[0].fps
    if frames / fps > base.max_seconds + 1e-9:
        raise InvalidRequestError(
            f"the storyboard would be {frames / fps:.1f} s long; the limit is "
            f"{base.max_seconds:g} s",
            param="shots",
        )
    return plans


def on_one_model(shots: list[StoryboardShot], base: GenerationRequest) -> GenerationRequest:
    """`base` on its reference model when any shot has references, so that every shot renders
    on that one model (a catalogue id; a folder of a model that takes references stays)."""
    if not (base.reference_images or any(shot.reference_images for shot in shots)):
        return base
    if base.model in catalogue():
        spec = get_model(base.model)
    else:
        from pathlib import Path

        from moviola.engine.recognise import spec_for_folder

        spec = spec_for_folder(Path(base.model))
    routed = references.route(spec)
    return base if routed is spec else dataclasses.replace(base, model=routed.id)


def generate_storyboard(
    engine: Engine,
    shots: list[StoryboardShot],
    base: GenerationRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> StoryboardResult:
    """Render each shot in turn, continuing from the one before, and join them."""
    cancel = cancel or CancelToken()
    base = on_one_model(shots, base)
    first = plan_storyboard(shots, base)[0]
    base = dataclasses.replace(
        base,
        seed=first.seed if base.seed is None else base.seed,
        size=base.size or first.size,
    )
    plans = plan_storyboard(shots, base)
    lengths = [p.total_frames - p.existing_frames for p in plans]
    total = sum(lengths)

    kept: list[ShotFrames] = []
    results: list[GenerationResult] = []
    whole_audio: Audio | None = None
    start = 0
    for index, length in enumerate(lengths):
        previous = kept[-1].frames[-1:] if kept else None
        under_previous = None
        if whole_audio is not None and previous is not None:
            under_previous = sound.span(whole_audio, start - 1, start, first.fps)
        request = shot_request(base, shots, index, previous, under_previous)
        report = _shot_progress(on_progress, index, len(shots), start / total, length / total)
        result = engine.generate(request, on_progress=report, cancel=cancel)
        kept.append(ShotFrames(index + 1, shots[index].prompt, start, result.frames))
        results.append(result)
        whole_audio = _extended(whole_audio, result, start, first.fps)
        start += len(result.frames)

    timings: dict[str, float] = {}
    peaks: dict[str, int] = {}
    for result in results:
        for stage, seconds in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        for stage, peak in result.peak_memory.items():
            peaks[stage] = max(peaks.get(stage, 0), peak)
    whole = dataclasses.replace(
        results[0],
        frames=np.concatenate([shot.frames for shot in kept]),
        segments=sum(r.segments for r in results),
        timings=timings,
        peak_memory=peaks,
        prefix=None,
        vae_retried_tiled=any(r.vae_retried_tiled for r in results),
        audio=whole_audio,
        audio_kind=next((r.audio_kind for r in results if r.audio_kind is not None), None),
    )
    if on_progress is not None:
        on_progress(Progress(Stage.DONE, 1.0, segment=len(shots) - 1, segments=len(shots)))
    return StoryboardResult(whole, kept)


def _extended(before: Audio | None, shot: GenerationResult, start: int, fps: int) -> Audio | None:
    """The storyboard's sound up to frame `start`, followed by `shot`'s. A continuing shot's
    sound (`shot.prefix` set) begins under the last frame before it, already crossfaded into
    the sound there, so it replaces that frame's sound rather than following it."""
    if before is None and shot.audio is None:
        return None
    if before is None:
        before = sound.silence(sound.boundary(start, fps))
    if shot.audio is None:
        return sound.join([before, sound.silence(sound.boundary(len(shot.frames), fps))])
    if shot.prefix is not None:
        kept = sound.span(before, 0, start - len(shot.prefix), fps)
        return sound.fit(sound.concat([kept, shot.audio]), start + len(shot.frames), fps)
    return sound.fit(sound.join([before, shot.audio]), start + len(shot.frames), fps)


def _shot_progress(
    on_progress: ProgressCallback | None, index: int, count: int, offset: float, share: float
) -> ProgressCallback | None:
    """One shot's reports as a part of the whole: `segment` counts shots here."""
    if on_progress is None:
        return None

    def report(p: Progress) -> None:
        if p.stage is Stage.DONE:  # the shot is done, not the storyboard
            return
        fraction = offset + p.fraction * share
        on_progress(dataclasses.replace(p, fraction=fraction, segment=index, segments=count))

    return report
