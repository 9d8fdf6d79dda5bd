"""Synthetic clips for the media tests: small, deterministic and quick to encode."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from moviola.media import VideoInfo, write_mp4

# Flat, saturated colours: a channel swap or a wrong colour matrix shows up as a large error.
PALETTE = np.array(
    [[220, 30, 30], [30, 200, 40], [40, 50, 210], [230, 210, 40], [20, 20, 20], [240, 240, 240]],
    dtype=np.uint8,
)


def _make_frames(count: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth colour gradient with a grey square that moves a few pixels per frame.

    Smooth colour, like camera footage, so 4:2:0 chroma subsampling costs little and a small
    error bound still catches real mistakes; the square makes every frame distinct.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack(
        [40 + 180 * xs / max(1, width - 1), 40 + 160 * ys / max(1, height - 1), 150 + 0 * xs],
        axis=-1,
    ).astype(np.uint8)
    frames = np.broadcast_to(background, (count, height, width, 3)).copy()
    side = max(4, height // 4)
    for index in range(count):
        x = (index * 4) % max(1, width - side)
        frames[index, height // 3 : height // 3 + side, x : x + side] = 128
    return frames


def _solid_frames(colors: np.ndarray, width: int = 64, height: int = 48) -> np.ndarray:
    """One flat frame per colour: the easiest way to tell which frame ended up where."""
    return np.broadcast_to(colors[:, None, None, :], (len(colors), height, width, 3)).copy()


@pytest.fixture(scope="session")
def make_frames() -> Callable[..., np.ndarray]:
    return _make_frames


@pytest.fixture(scope="session")
def solid_frames() -> Callable[..., np.ndarray]:
    return _solid_frames


@pytest.fixture(scope="session")
def palette() -> np.ndarray:
    return PALETTE.copy()


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VideoInfo, np.ndarray]:
    """One reference clip shared by the read-side tests: 20 frames, 64x48, 16 fps."""
    source = _make_frames(20)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    info = write_mp4(source, path, fps=16)
    return path, info, source


@pytest.fixture
def write_clip(tmp_path: Path) -> Callable[..., tuple[Path, VideoInfo]]:
    def write(
        frames: np.ndarray, name: str = "out.mp4", fps: int | Fraction = 16, **kwargs
    ) -> tuple[Path, VideoInfo]:
        path = tmp_path / name
        return path, write_mp4(frames, path, fps=fps, **kwargs)

    return write
