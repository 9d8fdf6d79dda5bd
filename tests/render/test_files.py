"""Rendering a request to files: what the CLI and the workers share."""

import pytest
from PIL import Image

from moviola import media
from moviola.engine import CancelToken, GenerationCancelled, GenerationRequest, Stage
from moviola.render.files import output_paths, render


def test_render_writes_the_three_files_at_the_requested_size(engine, tmp_path):
    request = GenerationRequest("a heron", model="tiny", seconds=1, size=(320, 180), seed=2)
    reports = []
    files = render(engine, request, tmp_path / "out" / "heron.mp4", on_progress=reports.append)
    assert files.video == tmp_path / "out" / "heron.mp4"
    assert (files.thumbnail, files.spritesheet) == output_paths(files.video)
    info = media.probe(files.video)
    assert (info.width, info.height, info.frames, info.fps) == (320, 180, 16, 16)
    assert files.info == info
    with Image.open(files.thumbnail) as thumbnail:  # the video's shape, not the render size's
        assert thumbnail.size == (320, 180)
    assert set(files.timings) >= {"loading", "denoising", "decoding", "writing"}
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert reports[-1].stage is Stage.DONE
    assert Stage.WRITING in {r.stage for r in reports}


def test_a_cancelled_render_leaves_no_files(engine, tmp_path):
    token = CancelToken()

    def on_progress(report):
        if report.stage is Stage.DENOISING and report.step:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        render(
            engine,
            GenerationRequest("a heron", model="tiny", frames=9, steps=5),
            tmp_path / "heron.mp4",
            on_progress=on_progress,
            cancel=token,
        )
    assert list(tmp_path.iterdir()) == []


def test_an_extension_writes_source_and_continuation(engine, tmp_path):
    import numpy as np

    source = np.full((10, 96, 160, 3), 90, np.uint8)
    request = GenerationRequest("onwards", model="tiny", extend=source, frames=8, seed=1)
    files = render(engine, request, tmp_path / "longer.mp4")
    frames, info = media.decode_frames(files.video)
    assert info.frames == 18
    assert abs(int(frames[:10].mean()) - 90) <= 2  # the source, untouched up to H.264


def test_a_storyboard_with_sound_gives_every_file_its_part_of_it(engine, tmp_path):
    from moviola import audio
    from moviola.engine.storyboard import StoryboardShot

    shots = [StoryboardShot("thunder", 1), StoryboardShot("rain", 1), StoryboardShot("sun", 1)]
    base = GenerationRequest("", model="tiny-ltx2", size=(160, 96), seed=3)
    files = render(engine, base, tmp_path / "board.mp4", shots=shots)
    assert files.summary.audio_kind == "model"
    whole = media.decode_audio(files.video)
    assert files.info.audio is not None
    assert abs(files.info.audio.duration - files.info.duration) < 1 / 24
    for shot in files.shots:
        own = media.probe(shot.path)
        assert own.audio is not None and abs(own.audio.duration - own.duration) < 1 / 24
        part = media.decode_audio(shot.path)
        expected = audio.span(whole, shot.start_frame, shot.start_frame + shot.frames, 24)
        assert part.length == expected.length
    for shot in files.shots[1:]:  # no gap where one shot meets the next
        at_join = audio.span(whole, shot.start_frame - 2, shot.start_frame + 2, 24)
        assert audio.rms(at_join) > 1e-3
