"""Finding a face with NudeNet's detector, on a drawn portrait it recognises as one."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from moviola.render.faces import FaceFinder


def portrait(width: int = 320, height: int = 320, cx: int = 160, cy: int = 140) -> np.ndarray:
    """A drawn head and shoulders (hair, skin, eyes, brows, nose, mouth, a blue top) on a plain
    background: NudeNet's 320n model reports it as a face."""
    r = 60
    image = Image.new("RGB", (width, height), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse([cx - 2.2 * r, cy + 1.1 * r, cx + 2.2 * r, cy + 4 * r], fill=(40, 60, 120))
    draw.rectangle([cx - 0.35 * r, cy + 0.8 * r, cx + 0.35 * r, cy + 1.4 * r], fill=(224, 172, 140))
    draw.ellipse([cx - 1.05 * r, cy - 1.35 * r, cx + 1.05 * r, cy + 0.2 * r], fill=(60, 40, 20))
    draw.ellipse([cx - 0.8 * r, cy - r, cx + 0.8 * r, cy + r], fill=(224, 172, 140))
    for side in (-1, 1):
        x, y = cx + side * 0.35 * r, cy - 0.2 * r
        draw.ellipse([x - 0.14 * r, y - 0.08 * r, x + 0.14 * r, y + 0.08 * r], fill=(255, 255, 255))
        draw.ellipse([x - 0.06 * r, y - 0.06 * r, x + 0.06 * r, y + 0.06 * r], fill=(40, 30, 20))
        draw.line(
            [cx + side * 0.2 * r, cy - 0.38 * r, cx + side * 0.5 * r, cy - 0.4 * r],
            fill=(50, 30, 20),
            width=3,
        )
    draw.polygon(
        [(cx, cy - 0.1 * r), (cx - 0.1 * r, cy + 0.25 * r), (cx + 0.1 * r, cy + 0.25 * r)],
        fill=(200, 140, 110),
    )
    draw.arc(
        [cx - 0.3 * r, cy + 0.3 * r, cx + 0.3 * r, cy + 0.6 * r],
        20,
        160,
        fill=(150, 50, 50),
        width=4,
    )
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)))


def test_the_detector_finds_a_drawn_face_where_it_is():
    finder = FaceFinder()
    assert FaceFinder.available()
    face = finder.find(portrait())
    assert face is not None and face.score >= 0.4
    # The face is the skin ellipse: 96–224 across, 80–200 down.
    assert 80 <= face.x <= 120 and 200 <= face.x + face.width <= 240
    assert 60 <= face.y <= 120 and 180 <= face.y + face.height <= 220
    # In a wider frame, off centre: the box follows it, in that frame's pixels.
    wide = np.full((360, 640, 3), (90, 120, 160), np.uint8)
    wide[20:340, 300:620] = portrait()
    moved = finder.find(wide)
    assert moved is not None and 380 <= moved.x <= 440 and 70 <= moved.y <= 140


def test_no_face_no_box():
    assert FaceFinder().find(np.full((96, 160, 3), 128, np.uint8)) is None
