"""Render one request to files: the engine makes frames, the media layer writes them.

Every way of making a video goes through here — `moviola generate`, a local worker, a Ray
actor — in the same steps: generate, write the previews, encode the MP4 with the operator's
mark burned in, check the frames (when a frame check is on), then `seal` signs the files.
Signing is separate because a Ray actor holds no signing key: the server signs what the
actor sent back, by the same function. The video is written last and atomically, so its
presence means the whole set (thumbnail, spritesheet, shots, video) is complete.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moviola import audio as sound
from moviola import media
from moviola.audio import Audio
from moviola.engine import (
    CancelToken,
    Engine,
    GenerationRequest,
    GenerationResult,
    Progress,
    Stage,
)
from moviola.engine.progress import ProgressCallback
from moviola.engine.storyboard import StoryboardShot, generate_storyboard
from moviola.render.frame_check import Decision, FrameCheck
from moviola.render.stamp import Stamp
from moviola.store.blobs import shot_variant, variant_path
from moviola.store.models import StoredAudio, StoredMemory

# Share of the whole job given to encoding the MP4, after the engine's work.
WRITING_SHARE = 0.08


@dataclass(frozen=True)
class RenderSummary:
    """How a video was made: what a job's row keeps as its `result`."""

    model: str
    seed: int
    render_size: tuple[int, int]
    segments: int
    steps: int
    guidance: float
    timings: dict[str, float]
    audio_kind: str | None = None  # what made the sound: model, source, soundtrack; None: silent
    peak_memory: dict[str, int] = dataclasses.field(default_factory=dict)  # bytes by stage
    memory: StoredMemory | None = None  # where the model ran; None: no video model ran

    @classmethod
    def of(cls, result: GenerationResult, timings: dict[str, float]) -> RenderSummary:
        plan = result.memory
        return cls(
            result.model,
            result.seed,
            result.render_size,
            result.segments,
            result.steps,
            result.guidance,
            timings,
            result.audio_kind.value if result.audio_kind is not None else None,
            dict(result.peak_memory),
            None
            if plan is None
            else {
                "placement": plan.mode.value,
                "fp8": plan.fp8,
                "vae_tiling": plan.vae_tiling or result.vae_retried_tiled,
                "vae_retried_tiled": result.vae_retried_tiled,
                "estimated_peak_bytes": plan.peak_bytes,
                "device_bytes": plan.device_bytes,
            },
        )


@dataclass(frozen=True)
class RenderedShot:
    index: int  # from 1
    path: Path
    start_frame: int
    frames: int

    @property
    def variant(self) -> str:
        return shot_variant(self.index)


@dataclass(frozen=True)
class RenderedFiles:
    video: Path
    thumbnail: Path
    spritesheet: Path
    info: media.VideoInfo
    summary: RenderSummary
    shots: tuple[RenderedShot, ...] = ()  # a storyboard's, in order
    moderation: Decision | None = None  # the frame check's verdict, when one ran
    credentials: dict[str, Any] | None = None  # the video's C2PA credentials, once sealed

    @property
    def timings(self) -> dict[str, float]:
        return self.summary.timings

    def paths(self) -> dict[str, Path]:
        """Every file by its variant name, the video last (the order they are written in)."""
        return {
            "thumbnail": self.thumbnail,
            "spritesheet": self.spritesheet,
            **{shot.variant: shot.path for shot in self.shots},
            "video": self.video,
        }


def audio_summary(info: media.VideoInfo, kind: str | None) -> StoredAudio | None:
    """What a row says of a video file's sound (None: it has none)."""
    if info.audio is None:
        return None
    return {
        "codec": info.audio.codec,
        "sample_rate": info.audio.sample_rate,
        "channels": info.audio.channels,
        "kind": kind,
    }


def output_paths(video: Path) -> tuple[Path, Path]:
    """Where the thumbnail and spritesheet of `video` go: beside it, named after it."""
    return variant_path(video, "thumbnail"), variant_path(video, "spritesheet")


def render(
    engine: Engine,
    request: GenerationRequest,
    video_path: Path,
    *,
    shots: list[StoryboardShot] | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    crf: int = 18,
    preset: str = "medium",
    stamp: Stamp | None = None,
    frame_check: FrameCheck | None = None,
) -> RenderedFiles:
    """Generate `request` and write the MP4, its thumbnail and its spritesheet; `stamp`'s
    mark is burned in (sign with `seal`), and `frame_check` judges the frames. With `shots`,
    `request` is a storyboard's base and each shot is also written on its own."""
    if shots is not None:
        return _render_storyboard(
            engine,
            shots,
            request,
            Path(video_path),
            on_progress=on_progress,
            cancel=cancel,
            crf=crf,
            preset=preset,
            stamp=stamp,
            frame_check=frame_check,
        )
    cancel = cancel or CancelToken()
    result = engine.generate(request, on_progress=_engine_share(on_progress), cancel=cancel)
    cancel.raise_if_cancelled()
    return _write(
        result,
        request.prompt,
        Path(video_path),
        on_progress,
        crf=crf,
        preset=preset,
        stamp=stamp,
        frame_check=frame_check,
    )


def _render_storyboard(
    engine: Engine,
    shots: list[StoryboardShot],
    base: GenerationRequest,
    video_path: Path,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    crf: int = 18,
    preset: str = "medium",
    stamp: Stamp | None = None,
    frame_check: FrameCheck | None = None,
) -> RenderedFiles:
    """Render a storyboard: the whole video with its thumbnail and spritesheet, and each shot
    as an MP4 of its own beside it (the result's `shots`)."""
    cancel = cancel or CancelToken()
    board = generate_storyboard(
        engine, shots, base, on_progress=_engine_share(on_progress), cancel=cancel
    )
    cancel.raise_if_cancelled()
    video_path = Path(video_path)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    result = board.result
    rendered: list[RenderedShot] = []
    for shot in board.shots:
        path = variant_path(video_path, shot_variant(shot.index))
        audio = None
        if result.audio is not None:
            stop = shot.start_frame + len(shot.frames)
            audio = sound.span(result.audio, shot.start_frame, stop, result.fps)
        _encode(
            shot.frames, path, result, shot.prompt, crf=crf, preset=preset, stamp=stamp, audio=audio
        )
        rendered.append(RenderedShot(shot.index, path, shot.start_frame, len(shot.frames)))
    prompt = "\n".join(shot.prompt for shot in board.shots)
    files = _write(
        result,
        prompt,
        video_path,
        on_progress,
        crf=crf,
        preset=preset,
        stamp=stamp,
        frame_check=frame_check,
    )
    return dataclasses.replace(files, shots=tuple(rendered))


def seal(files: RenderedFiles, stamp: Stamp | None) -> RenderedFiles:
    """Sign every MP4 of `files` in place (each replaced atomically); the video's credentials
    and the time signing took are added. Nothing to do without a signing identity."""
    if stamp is None or stamp.identity is None:
        return files
    started = time.perf_counter()
    for shot in files.shots:
        stamp.sign(shot.path, files.summary.model)
    credentials = stamp.sign(files.video, files.summary.model)
    timings = {**files.timings, "signing": time.perf_counter() - started}
    summary = dataclasses.replace(files.summary, timings=timings)
    return dataclasses.replace(files, summary=summary, credentials=credentials)


def _engine_share(on_progress: ProgressCallback | None) -> ProgressCallback | None:
    """The engine's reports scaled to leave the last part of the bar to writing files."""
    if on_progress is None:
        return None

    def report(p: Progress) -> None:
        if p.stage is not Stage.DONE:
            on_progress(dataclasses.replace(p, fraction=p.fraction * (1 - WRITING_SHARE)))

    return report


def _write(
    result: GenerationResult,
    prompt: str,
    video_path: Path,
    on_progress: ProgressCallback | None,
    *,
    crf: int,
    preset: str,
    stamp: Stamp | None,
    frame_check: FrameCheck | None,
) -> RenderedFiles:
    """Thumbnail and spritesheet first, the video last: its presence means the set is whole."""
    started = time.perf_counter()
    video_path.parent.mkdir(parents=True, exist_ok=True)
    thumbnail, spritesheet = output_paths(video_path)
    previews = preview_frames(result)
    media.write_thumbnail(previews, thumbnail, size=result.size)
    media.write_spritesheet(previews, spritesheet, size=result.size)
    frames = _reporting(result, on_progress)
    info = _encode(
        frames, video_path, result, prompt, crf=crf, preset=preset, stamp=stamp, audio=result.audio
    )
    timings = dict(result.timings, writing=time.perf_counter() - started)
    moderation = None
    if frame_check is not None:
        moderation = frame_check.check(previews, "the generated video")
    if on_progress is not None:
        on_progress(Progress(Stage.DONE, 1.0, segments=result.segments))
    summary = RenderSummary.of(result, timings)
    return RenderedFiles(video_path, thumbnail, spritesheet, info, summary, moderation=moderation)


def _encode(
    frames: Iterable[np.ndarray],
    path: Path,
    result: GenerationResult,
    prompt: str,
    *,
    crf: int,
    preset: str,
    stamp: Stamp | None,
    audio: Audio | None,
) -> media.VideoInfo:
    """One MP4, with the operator's mark when there is a `stamp`, and its sound."""
    return media.write_mp4(
        stamp.mark(frames) if stamp else frames,
        path,
        fps=result.fps,
        size=result.size,
        crf=crf,
        preset=preset,
        metadata={"comment": prompt[:1000], "encoder": "Moviola"},
        audio=audio,
    )


def preview_frames(result: GenerationResult) -> np.ndarray:
    """All frames at one size, for the thumbnail and spritesheet (an extension's source too)."""
    if result.prefix is None:
        return result.frames
    from PIL import Image

    height, width = result.frames.shape[1:3]
    prefix = [
        np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
        for f in result.prefix
    ]
    return np.concatenate([np.stack(prefix), result.frames])


def _reporting(
    result: GenerationResult, on_progress: ProgressCallback | None
) -> Iterator[np.ndarray]:
    total = result.frame_count
    base = 1 - WRITING_SHARE
    every = max(1, total // 20)
    for i, frame in enumerate(result.video_frames(), start=1):
        if on_progress is not None and (i % every == 0 or i == total):
            on_progress(
                Progress(
                    Stage.WRITING,
                    base + WRITING_SHARE * i / total,
                    i,
                    total,
                    result.segments - 1,
                    result.segments,
                )
            )
        yield frame
