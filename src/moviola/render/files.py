"""Render one request to files: the engine makes frames, the media layer writes them.

The CLI calls this directly; workers call it for each job. The video is written last and
atomically, so its presence means the whole set (thumbnail, spritesheet, video) is complete.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moviola import media
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
from moviola.render.stamp import Stamp

# Share of the whole job given to encoding the MP4, after the engine's work.
WRITING_SHARE = 0.08


@dataclass(frozen=True)
class RenderedFiles:
    video: Path
    thumbnail: Path
    spritesheet: Path
    result: GenerationResult
    info: media.VideoInfo
    timings: dict[str, float]
    shots: list[RenderedShot] = field(default_factory=list)  # a storyboard's, in order
    credentials: dict[str, Any] | None = None  # the video's C2PA credentials, when signed


@dataclass(frozen=True)
class RenderedShot:
    index: int  # from 1
    path: Path
    start_frame: int
    frames: int


def output_paths(video: Path) -> tuple[Path, Path]:
    """Where the thumbnail and spritesheet of `video` go: beside it, named after it."""
    return (
        video.with_name(video.stem + ".thumb.webp"),
        video.with_name(video.stem + ".sprite.jpg"),
    )


def render(
    engine: Engine,
    request: GenerationRequest,
    video_path: Path,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    crf: int = 18,
    preset: str = "medium",
    stamp: Stamp | None = None,
) -> RenderedFiles:
    """Generate `request` and write the MP4, its thumbnail and its spritesheet; `stamp`
    marks and signs the MP4."""
    cancel = cancel or CancelToken()
    result = engine.generate(request, on_progress=_engine_share(on_progress), cancel=cancel)
    cancel.raise_if_cancelled()
    return _write(
        result, request.prompt, Path(video_path), on_progress, crf=crf, preset=preset, stamp=stamp
    )


def render_storyboard(
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
    shots: list[RenderedShot] = []
    for shot in board.shots:
        path = video_path.with_name(f"{video_path.stem}.shot{shot.index}.mp4")
        _encode(shot.frames, path, result, shot.prompt, crf=crf, preset=preset, stamp=stamp)
        shots.append(RenderedShot(shot.index, path, shot.start_frame, len(shot.frames)))
    prompt = "\n".join(shot.prompt for shot in board.shots)
    files = _write(result, prompt, video_path, on_progress, crf=crf, preset=preset, stamp=stamp)
    return dataclasses.replace(files, shots=shots)


def _engine_share(on_progress: ProgressCallback | None) -> ProgressCallback | None:
    """The engine's reports scaled to leave the last part of the bar to writing files."""
    if on_progress is None:
        return None

    def report(p: Progress) -> None:
        if p.stage is not Stage.DONE:
            scaled = Progress(
                p.stage, p.fraction * (1 - WRITING_SHARE), p.step, p.steps, p.segment, p.segments
            )
            on_progress(scaled)

    return report


def _write(
    result: GenerationResult,
    prompt: str,
    video_path: Path,
    on_progress: ProgressCallback | None,
    *,
    crf: int,
    preset: str,
    stamp: Stamp | None = None,
) -> RenderedFiles:
    """Thumbnail and spritesheet first, the video last: its presence means the set is whole.
    A `stamp` signs the written video in place, replacing it atomically."""
    started = time.perf_counter()
    video_path.parent.mkdir(parents=True, exist_ok=True)
    thumbnail, spritesheet = output_paths(video_path)
    previews = preview_frames(result)
    media.write_thumbnail(previews, thumbnail)
    media.write_spritesheet(previews, spritesheet)
    frames = _reporting(result, on_progress)
    info, credentials, signing = _encode(
        frames, video_path, result, prompt, crf=crf, preset=preset, stamp=stamp
    )
    timings = dict(result.timings, writing=time.perf_counter() - started, **signing)
    if on_progress is not None:
        on_progress(Progress(Stage.DONE, 1.0, segments=result.segments))
    return RenderedFiles(
        video_path, thumbnail, spritesheet, result, info, timings, credentials=credentials
    )


def _encode(
    frames: Iterable[np.ndarray],
    path: Path,
    result: GenerationResult,
    prompt: str,
    *,
    crf: int,
    preset: str,
    stamp: Stamp | None,
) -> tuple[media.VideoInfo, dict | None, dict[str, float]]:
    """One MP4, marked and signed when there is a `stamp`: its info, credentials and the
    time signing took."""
    info = media.write_mp4(
        stamp.mark(frames) if stamp else frames,
        path,
        fps=result.fps,
        size=result.size,
        crf=crf,
        preset=preset,
        metadata={"comment": prompt[:1000], "encoder": "Moviola"},
    )
    if stamp is None:
        return info, None, {}
    started = time.perf_counter()
    credentials = stamp.sign(path, result.model)
    return info, credentials, {"signing": time.perf_counter() - started}


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
