"""Picking a character's reference frames: sharp, well exposed, spread over the clip; and the
head-and-shoulders crop around a face."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from moviola.media.reference_frames import exposure, head_and_shoulders, luminance, pick, score


def checkers(width: int = 96, height: int = 64, cell: int = 4) -> np.ndarray:
    """A sharp, mid-grey frame: black and white squares, averaging grey."""
    ys, xs = np.mgrid[0:height, 0:width]
    board = ((ys // cell + xs // cell) % 2 * 150 + 50).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=-1)


def blurred(frame: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(3)))


def test_sharp_beats_blurred_and_exposed_beats_dark_or_blown_out():
    sharp = checkers()
    assert score(sharp).sharpness > 10 * score(blurred(sharp)).sharpness
    dark = (sharp * 0.1).astype(np.uint8)
    white = np.full_like(sharp, 255)
    assert exposure(luminance(sharp)) > 0.9
    assert exposure(luminance(dark)) < 0.3 and exposure(luminance(white)) == 0.0
    assert score(sharp).score > max(score(dark).score, score(blurred(sharp)).score)


def test_one_frame_from_each_stretch_of_the_clip_the_best_of_it():
    sharp, soft = checkers(), blurred(checkers())
    dark = (sharp * 0.1).astype(np.uint8)
    # Three stretches of four frames; the one good frame of each is somewhere inside it.
    clip = np.stack([soft, soft, sharp, dark, dark, sharp, soft, soft, soft, soft, dark, sharp])
    assert [p.index for p in pick(clip, 3)] == [2, 5, 11]
    assert [p.index for p in pick(clip[:2], 3)] == [0, 1]  # fewer frames than asked: each once
    assert pick(clip[:0], 3) == []


def test_a_head_and_shoulders_crop_holds_the_face_and_stays_in_the_frame():
    face = (100.0, 40.0, 40.0, 50.0)  # x, y, w, h
    left, top, right, bottom = head_and_shoulders(face, 640, 360)
    assert left < 100 and right > 140 and top < 40 and bottom > 90 + 50  # shoulders below
    assert (right - left, bottom - top) == (120, 160)
    # By an edge, the crop shifts to stay whole rather than shrink.
    assert head_and_shoulders((600.0, 0.0, 40.0, 50.0), 640, 360) == (520, 0, 640, 160)
    # A face larger than a third of the frame: the whole frame.
    assert head_and_shoulders((10.0, 10.0, 300.0, 300.0), 320, 320) == (0, 0, 320, 320)
