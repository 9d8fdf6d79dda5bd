"""The optional visible mark: burned into the bottom-right corner of every frame, nowhere else."""

import numpy as np

from moviola import media
from moviola.engine import GenerationRequest
from moviola.media.watermark import burn_in, watermark_frames
from moviola.render.files import render
from moviola.render.stamp import Stamp


def test_the_mark_is_drawn_in_the_bottom_right_corner_only():
    frame = np.zeros((180, 320, 3), np.uint8)
    marked = burn_in(frame, "AI generated")
    assert not frame.any()  # the input is left as it was
    changed = np.argwhere((marked != frame).any(axis=2))
    assert len(changed) > 50
    assert changed[:, 0].min() > 180 // 2 and changed[:, 1].min() > 320 // 2
    assert marked.max() > 100  # light text, readable on a dark frame


def test_every_frame_gets_the_same_mark():
    frames = np.full((3, 96, 160, 3), 40, np.uint8)
    marked = np.stack(list(watermark_frames(frames, "Moviola")))
    assert (marked[0] != frames[0]).any()
    assert (marked == marked[0]).all()


def test_a_render_burns_the_mark_in_only_when_configured(engine, tmp_path):
    request = GenerationRequest("a heron", model="tiny", frames=8, size=(320, 192), seed=5)
    plain = render(engine, request, tmp_path / "plain.mp4", stamp=Stamp())
    marked = render(engine, request, tmp_path / "marked.mp4", stamp=Stamp(watermark="AI video"))
    plain_frames, _ = media.decode_frames(plain.video)
    marked_frames, _ = media.decode_frames(marked.video)
    difference = np.abs(plain_frames.astype(int) - marked_frames.astype(int)).mean(axis=(0, 3))
    height, width = difference.shape
    corner = difference[height * 3 // 4 :, width // 2 :]
    elsewhere = difference[: height // 2]
    assert corner.max() > 40  # the mark
    assert elsewhere.max() < 15  # elsewhere: only H.264's noise, which a mark changes a little
    assert plain.credentials is None  # a stamp without an identity signs nothing
