"""A small visible mark burned into every frame at encode time (off unless configured).

The text is drawn once per frame size into a translucent overlay; each frame is then blended
with it in numpy, so the mark costs a fraction of what encoding the frame does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

import numpy as np

OPACITY = 0.6  # of the white text; a dark shadow behind it keeps it legible on light frames


def watermark_frames(frames: Iterable[np.ndarray], text: str) -> Iterator[np.ndarray]:
    """`frames` (H×W×3 uint8 each) with `text` in their bottom-right corner."""
    for frame in frames:
        yield burn_in(frame, text)


def burn_in(frame: np.ndarray, text: str) -> np.ndarray:
    """One frame with the mark; the input array is left as it was."""
    height, width = frame.shape[:2]
    alpha, colour, (top, left) = _overlay(text, width, height)
    h, w = alpha.shape[:2]
    out = frame.copy()
    region = out[top : top + h, left : left + w].astype(np.float32)
    out[top : top + h, left : left + w] = (region * (1 - alpha) + colour * alpha).astype(np.uint8)
    return out


@lru_cache(maxsize=8)
def _overlay(text: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The mark's alpha (h×w×1) and colour (h×w×3), and where its top-left corner goes."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(8, height // 20)
    font = ImageFont.load_default(size=size)
    margin = max(2, size // 2)
    # Whole pixels: both Pillow's bitmap and FreeType fonts measure text in them.
    left, top, right, bottom = map(
        int, ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    )
    w = min(width, right - left + 2)
    h = min(height, bottom - top + 2)
    text_mask = Image.new("L", (w, h))
    ImageDraw.Draw(text_mask).text((-left, -top), text, fill=255, font=font)
    shadow_mask = Image.new("L", (w, h))
    ImageDraw.Draw(shadow_mask).text((1 - left, 1 - top), text, fill=255, font=font)
    text_a = np.asarray(text_mask, np.float32)[..., None] / 255 * OPACITY
    shadow_a = np.asarray(shadow_mask, np.float32)[..., None] / 255 * OPACITY * (1 - text_a)
    alpha = text_a + shadow_a
    # Premultiplied: white where the text is, black where only its shadow is.
    colour = np.where(alpha > 0, 255 * text_a / np.maximum(alpha, 1e-6), 0).repeat(3, axis=2)
    corner = (max(0, height - h - margin), max(0, width - w - margin))
    return alpha, colour, corner
