"""A character's reference frames: a few sharp, well-exposed frames spread over its clip, and
the head-and-shoulders crop around a face found in one.

A frame's score is its sharpness (the variance of the Laplacian of its luminance: blur and
motion smear flatten edges) times its exposure (how near its mean luminance is to mid-grey,
less the share of pixels clipped to black or white). The clip is cut into as many equal
stretches as frames are wanted and the best frame of each is kept, so the picks show the
subject from across the clip rather than three neighbours of one sharp moment.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# Luminance from RGB (ITU-R BT.601, as JPEG and most video decoders use).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_SCORED_SIDE = 256  # frames are scored at about this width: enough for edges, fast on any clip
_CLIPPED = 0.02  # luminance within 2% of black or white counts as clipped


@dataclass(frozen=True)
class FrameScore:
    index: int
    sharpness: float
    exposure: float

    @property
    def score(self) -> float:
        return self.sharpness * self.exposure


def luminance(frame: np.ndarray) -> np.ndarray:
    """0–1 luminance of a uint8 H×W×3 frame, sampled down to about `_SCORED_SIDE` wide."""
    step = max(1, frame.shape[1] // _SCORED_SIDE)
    rgb = frame[::step, ::step, :3].astype(np.float32) / 255
    return np.asarray(rgb @ _LUMA)


def sharpness(luma: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of `luma`."""
    if min(luma.shape) < 3:
        return 0.0
    laplacian = (
        luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
    )
    return float(laplacian.var())


def exposure(luma: np.ndarray) -> float:
    """1 for a frame centred on mid-grey with nothing clipped, down to 0 for a black or a
    white one."""
    centred = 1 - 2 * abs(float(luma.mean()) - 0.5)
    clipped = float(((luma <= _CLIPPED) | (luma >= 1 - _CLIPPED)).mean())
    return max(0.0, centred * (1 - clipped))


def score(frame: np.ndarray, index: int = 0) -> FrameScore:
    luma = luminance(frame)
    return FrameScore(index, sharpness(luma), exposure(luma))


def pick(frames: np.ndarray, count: int) -> list[FrameScore]:
    """The best frame of each of `count` equal stretches of `frames` (T×H×W×3), in order; fewer
    when the clip has fewer frames."""
    total = len(frames)
    if total == 0 or count < 1:
        return []
    bounds = np.linspace(0, total, min(count, total) + 1).round().astype(int)
    picks = []
    for start, end in itertools.pairwise(bounds):
        scored = [score(frames[i], i) for i in range(start, max(end, start + 1))]
        picks.append(max(scored, key=lambda s: (s.score, s.exposure, -s.index)))
    return picks


def head_and_shoulders(
    face: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) crop of a `width`×`height` frame that holds a head and
    shoulders around `face` (x, y, w, h): a little above the hair, down to the chest, three
    faces wide; shifted, never squeezed, where the frame ends."""
    x, y, w, h = face
    crop_w = min(width, round(3.0 * w))
    crop_h = min(height, round(3.2 * h))
    left = round(x + w / 2 - crop_w / 2)
    top = round(y - 0.6 * h)
    left = min(max(0, left), width - crop_w)
    top = min(max(0, top), height - crop_h)
    return left, top, left + crop_w, top + crop_h
