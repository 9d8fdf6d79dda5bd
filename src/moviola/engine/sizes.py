"""Size and duration policy: what the user asks for → what the model renders.

Any `WxH` is accepted. The model renders at its native size of the nearest aspect ratio (or,
when no native size has that aspect, at its native area with the requested aspect, rounded to
the sizes it accepts); `moviola.media` then scales to exactly the requested size when encoding.
Durations become frame counts by fps and the model's frame rule; anything longer than one
generation is planned as chained segments.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from moviola.engine.catalogue import FrameRule, ModelSpec
from moviola.errors import InvalidRequestError

MIN_SIDE = 16
MAX_SIDE = 4096
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
# Aspect ratios closer than this (in log space, ≈1%) count as the same.
_SAME_ASPECT = 0.01


def parse_size(text: str) -> tuple[int, int]:
    """`"1280x720"` → `(1280, 720)`; anything else is an `InvalidRequestError` on `size`."""
    match = _SIZE.match(text or "")
    if not match:
        raise InvalidRequestError(
            f"size must look like WIDTHxHEIGHT (e.g. 1280x720), got {text!r}", param="size"
        )
    return check_size((int(match[1]), int(match[2])))


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidRequestError(
            f"size {width}x{height} is out of range: each side must be {MIN_SIDE}–{MAX_SIDE}",
            param="size",
        )
    if width % 2 or height % 2:
        # H.264 in yuv420p (what every player plays) needs even sides.
        raise InvalidRequestError(
            f"size {width}x{height} has an odd side; width and height must be even",
            param="size",
        )
    return width, height


def render_size(spec: ModelSpec, requested: tuple[int, int] | None) -> tuple[int, int]:
    """The (width, height) the model renders at for a requested output size."""
    if requested is None:
        return spec.native_sizes[0]
    want = math.log(requested[0] / requested[1])
    nearest = min(spec.native_sizes, key=lambda s: abs(math.log(s[0] / s[1]) - want))
    if abs(math.log(nearest[0] / nearest[1]) - want) <= _SAME_ASPECT:
        return nearest
    area = nearest[0] * nearest[1]
    aspect = requested[0] / requested[1]
    m = spec.size_multiple
    width = max(m, round(math.sqrt(area * aspect) / m) * m)
    height = max(m, round(math.sqrt(area / aspect) / m) * m)
    return width, height


def frames_for_seconds(seconds: float, fps: int) -> int:
    return max(1, round(seconds * fps))


@dataclass(frozen=True)
class Segment:
    """One pipeline call of a longer video.

    `frames` is what the pipeline is asked for (a count its frame rule accepts); the first
    segment keeps all of them, each later one starts from the previous segment's last frame and
    so contributes `frames - 1` new ones.
    """

    index: int
    frames: int
    continues: bool


def plan_segments(
    total_frames: int, rule: FrameRule, max_frames: int, *, existing: int = 0
) -> list[Segment]:
    """Segments whose stitched frames cover `total_frames` (trim the excess after stitching).

    With `existing` > 0 the video already has that many frames (an extension): every segment
    then continues from the last frame before it.
    """
    longest = rule.at_most(max_frames)
    if longest < 2:
        raise ValueError(f"max_frames={max_frames} leaves no room to continue a video")
    segments: list[Segment] = []
    have = existing
    if have == 0:
        first = min(longest, rule.at_least(total_frames))
        segments.append(Segment(0, first, continues=False))
        have = first
    while have < total_frames:
        # +1: the conditioning frame comes back as this segment's first frame and is dropped.
        frames = min(longest, rule.at_least(total_frames - have + 1))
        segments.append(Segment(len(segments), frames, continues=True))
        have += frames - 1
    return segments
