"""Progress reports and cancellation, shared by every pipeline the engine drives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from moviola.engine.errors import GenerationCancelled


class Stage(str, Enum):
    LOADING = "loading"
    ENCODING_PROMPT = "encoding_prompt"
    DENOISING = "denoising"
    DECODING = "decoding"
    SOUND = "sound"  # a soundtrack model making the sound
    WRITING = "writing"  # reported by whoever encodes the frames (CLI, worker)
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """One report. `fraction` runs 0→1 over the engine's whole work for a request.

    While denoising, a report may carry `preview`: the current latents as a small picture
    (uint8 H×W×3 at the latent grid's size; see `moviola.engine.preview`)."""

    stage: Stage
    fraction: float
    step: int = 0
    steps: int = 0
    segment: int = 0
    segments: int = 1
    preview: Any = field(default=None, compare=False, repr=False)


ProgressCallback = Callable[[Progress], None]


class Meter(Protocol):
    """Called at each stage boundary: waits for the device, returns the stage's peak bytes."""

    def lap(self) -> int | None: ...


# Share of one segment's work per stage: text encoding is quick, denoising is nearly all of it,
# VAE decoding is heavy enough on large videos to deserve its own slice.
_LOADING_SHARE = 0.05
_ENCODE_END = 0.03
_DENOISE_END = 0.93

# A preview of the latents at most this often, and no more than about ten per segment: each
# costs a small projection and a copy to the host, nothing a step would notice.
PREVIEW_EVERY_S = 2.0
PREVIEWS_PER_SEGMENT = 10


class CancelToken:
    """Asks a running generation to stop; it does within one denoising step, before decoding.

    `check` lets a caller plug in another source of truth (a row in a database, a file), polled
    at every step.
    """

    def __init__(self, check: Callable[[], bool] | None = None):
        self._event = threading.Event()
        self._check = check

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        if not self._event.is_set() and self._check is not None and self._check():
            self._event.set()
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise GenerationCancelled()


class ProgressTracker:
    """Turns per-segment, per-step events into overall fractions and per-stage timings."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        segments: int,
        meter: Meter | None = None,
        preview_every_s: float = PREVIEW_EVERY_S,
    ):
        self._callback = callback
        self.segments = max(1, segments)
        self.timings: dict[str, float] = {}
        self.peak_memory: dict[str, int] = {}  # bytes, by stage, where the meter reads them
        self._meter = meter
        self._stage: Stage | None = None
        self._since = time.perf_counter()
        self._preview_every_s = preview_every_s
        self._preview_at: tuple[int, int, float] | None = None  # segment, step, when
        self._preview: Any = None  # made since the last step's report

    def _segment_fraction(self, segment: int, within: float) -> float:
        share = (1.0 - _LOADING_SHARE) / self.segments
        return _LOADING_SHARE + share * (segment + within)

    def enter(self, stage: Stage, *, segment: int = 0, step: int = 0, steps: int = 0) -> None:
        """Close the running stage's timer and report the start of `stage`."""
        peak = self._meter.lap() if self._meter is not None else None
        now = time.perf_counter()
        if self._stage is not None:
            key = self._stage.value
            self.timings[key] = self.timings.get(key, 0.0) + now - self._since
            if peak is not None:
                self.peak_memory[key] = max(self.peak_memory.get(key, 0), peak)
        self._stage, self._since = stage, now
        within = {
            Stage.LOADING: None,
            Stage.ENCODING_PROMPT: 0.0,
            Stage.DENOISING: _ENCODE_END,
            Stage.DECODING: _DENOISE_END,
        }
        if stage is Stage.LOADING:
            fraction = 0.0
        elif stage is Stage.DONE:
            fraction = 1.0
        else:
            fraction = self._segment_fraction(segment, within.get(stage) or 0.0)
        self._emit(Progress(stage, fraction, step, steps, segment, self.segments))

    def step(self, segment: int, step: int, steps: int) -> None:
        """Report denoising step `step` of `steps` done (with the preview kept since the last
        report, if any)."""
        within = _ENCODE_END + (_DENOISE_END - _ENCODE_END) * step / max(1, steps)
        fraction = self._segment_fraction(segment, within)
        preview, self._preview = self._preview, None
        self._emit(
            Progress(Stage.DENOISING, fraction, step, steps, segment, self.segments, preview)
        )

    def preview_due(self, segment: int, step: int, steps: int) -> bool:
        """Whether a preview of the latents after `step` steps is wanted now: someone listens,
        a step has been taken, and the last preview is both `preview_every_s` and a tenth of
        the segment's steps old."""
        if self._callback is None or step < 1:
            return False
        if self._preview_at is None:
            return True
        last_segment, last_step, last_time = self._preview_at
        if time.perf_counter() - last_time < self._preview_every_s:
            return False
        every = max(1, steps // PREVIEWS_PER_SEGMENT)
        return segment != last_segment or step - last_step >= every

    def preview(self, segment: int, step: int, image: Any) -> None:
        """Keep a preview of the latents after `step` steps (see `preview_due`): it rides on
        the next step's report, so previews add no report of their own."""
        self._preview_at = (segment, step, time.perf_counter())
        self._preview = image

    def _emit(self, progress: Progress) -> None:
        if self._callback is not None:
            self._callback(progress)
