"""Hover scrubbing reads a spritesheet's grid from the file, whatever wrote it."""

from __future__ import annotations

import numpy as np
import pytest

from moviola import media
from moviola.studio.routes import grid_of


@pytest.mark.parametrize(
    ("frames", "size", "options", "grid"),
    [
        (97, "160x96", {}, (5, 5, 25)),  # as rendered here: up to 25, near-square
        (12, "96x160", {}, (4, 3, 12)),  # fewer frames than 25, portrait
        (40, "160x96", {"count": 10, "columns": 10, "tile_side": 120}, (10, 1, 10)),  # a strip
        (30, "128x128", {"count": 16, "columns": 8}, (8, 2, 16)),  # wide, of 160-pixel tiles
        (3, "160x96", {}, (2, 2, 3)),  # a short clip: the last tile is empty
    ],
)
def test_the_grid_comes_from_the_sheet_itself(tmp_path, frames, size, options, grid):
    width, height = (int(n) for n in size.split("x"))
    video = np.random.default_rng(0).integers(0, 255, (frames, height, width, 3), dtype=np.uint8)
    path = tmp_path / "sheet.jpg"
    info = media.write_spritesheet(video, path, **options)
    from PIL import Image

    with Image.open(path) as sheet:
        found = grid_of(sheet.size, frames, size)
    assert (found["columns"], found["rows"], found["count"]) == grid
    assert (info.columns, info.rows) == grid[:2]
