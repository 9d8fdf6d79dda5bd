"""The engine end to end on the tiny models: every path real weights take."""

import numpy as np
import pytest
from PIL import Image

from moviola.engine import (
    CancelToken,
    Capability,
    GenerationCancelled,
    GenerationRequest,
    Stage,
)

TINY_MODELS = ["tiny", "tiny-ltx"]


def request(model, **kwargs):
    kwargs.setdefault("seed", 11)
    return GenerationRequest(prompt="a lighthouse in a storm", model=model, **kwargs)


@pytest.mark.parametrize("model", TINY_MODELS)
def test_text_to_video(engine, model):
    result = engine.generate(request(model, seconds=1))
    fps = result.fps
    assert result.frames.dtype == np.uint8
    assert result.frames.shape == (fps, 96, 160, 3)
    assert result.capability is Capability.TEXT
    assert result.seed == 11 and result.segments == 1
    assert set(result.timings) >= {"loading", "encoding_prompt", "denoising", "decoding"}
    assert result.frames.std() > 0  # noise, but not a constant


@pytest.mark.parametrize("model", TINY_MODELS)
def test_same_seed_same_frames_and_other_seed_other_frames(engine, model):
    a = engine.generate(request(model, frames=9))
    b = engine.generate(request(model, frames=9))
    c = engine.generate(request(model, frames=9, seed=12))
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("model", TINY_MODELS)
def test_the_prompt_conditions_the_output(engine, model):
    a = engine.generate(request(model, frames=9))
    b = engine.generate(GenerationRequest("a cat asleep", model=model, frames=9, seed=11))
    assert not np.array_equal(a.frames, b.frames)


@pytest.mark.parametrize("model", TINY_MODELS)
def test_image_to_video(engine, model):
    image = Image.new("RGB", (400, 240), (250, 30, 30))
    result = engine.generate(request(model, image=image, frames=9))
    assert result.capability is Capability.IMAGE
    assert result.frames.shape[:3] == (9, 96, 160)
    plain = engine.generate(request(model, frames=9))
    assert not np.array_equal(result.frames, plain.frames)


@pytest.mark.parametrize("model", TINY_MODELS)
def test_video_to_video_keeps_the_source_length(engine, model):
    source = np.random.default_rng(0).integers(0, 255, (21, 90, 160, 3), dtype=np.uint8)
    result = engine.generate(request(model, video=source, strength=0.5))
    assert result.capability is Capability.VIDEO
    assert len(result.frames) == 21
    assert result.size == (160, 90)  # encoded back at the source's size


@pytest.mark.parametrize("model", TINY_MODELS)
def test_a_source_longer_than_one_generation_is_rendered_in_windows(engine, model):
    source = np.zeros((50, 96, 160, 3), np.uint8)
    result = engine.generate(request(model, video=source))
    assert len(result.frames) == 50 and result.segments == 2


@pytest.mark.parametrize("model", TINY_MODELS)
def test_long_videos_chain_to_exactly_the_frames_asked_for(engine, model):
    result = engine.generate(request(model, seconds=3, size=(1280, 720)))
    assert len(result.frames) == 3 * result.fps
    assert result.segments > 1
    assert result.size == (1280, 720)
    assert result.render_size[0] > result.render_size[1]


def test_chained_segments_continue_from_the_last_kept_frame(engine, monkeypatch):
    """Each continuation is conditioned on the previous segment's last frame, and its own
    first frame (that frame, re-rendered) is dropped: no frame repeated, none lost."""
    from moviola.engine import generate as generate_module

    calls = []
    real_run = generate_module.Engine._run

    def spy(self, pipe, spec, call, tracker, segment, cancel):
        frames, audio = real_run(self, pipe, spec, call, tracker, segment, cancel)
        calls.append((call, frames))
        return frames, audio

    monkeypatch.setattr(generate_module.Engine, "_run", spy)
    result = engine.generate(request("tiny", frames=80))

    assert [c.capability for c, _ in calls] == [
        Capability.TEXT,
        Capability.IMAGE,
        Capability.IMAGE,
    ]
    kept = [calls[0][1]] + [frames[1:] for _, frames in calls[1:]]
    for (call, _), previous in zip(calls[1:], kept, strict=False):
        assert np.array_equal(np.asarray(call.image), previous[-1])
    assert np.array_equal(result.frames, np.concatenate(kept)[:80])


@pytest.mark.parametrize("model", TINY_MODELS)
def test_extend_continues_a_video_and_keeps_it_untouched(engine, model):
    source = np.random.default_rng(1).integers(0, 255, (20, 96, 160, 3), dtype=np.uint8)
    result = engine.generate(request(model, extend=source, seconds=1))
    assert result.prefix is source
    assert result.frame_count == 20 + result.fps
    frames = list(result.video_frames())
    assert len(frames) == result.frame_count
    assert np.array_equal(frames[19], source[19])


def test_progress_goes_through_every_stage_in_order_and_ends_at_one(engine):
    reports = []
    engine.generate(request("tiny", frames=9, steps=3), on_progress=reports.append)
    stages = [r.stage for r in reports]
    order = [Stage.LOADING, Stage.ENCODING_PROMPT, Stage.DENOISING, Stage.DECODING, Stage.DONE]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == order
    steps = [r.step for r in reports if r.stage is Stage.DENOISING and r.step]
    assert steps == [1, 2, 3]
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_video_to_video_reports_the_steps_it_really_runs(engine):
    source = np.zeros((9, 96, 160, 3), np.uint8)
    reports = []
    engine.generate(
        request("tiny", video=source, steps=8, strength=0.5), on_progress=reports.append
    )
    totals = {r.steps for r in reports if r.stage is Stage.DENOISING and r.step}
    assert totals == {4}


def test_a_light_remix_on_few_steps_still_denoises_one_step(engine):
    # int(2 × 0.3) is 0: without a floor the pipeline would run no step and fail.
    source = np.zeros((9, 96, 160, 3), np.uint8)
    reports = []
    result = engine.generate(
        request("tiny", video=source, steps=2, strength=0.3), on_progress=reports.append
    )
    assert len(result.frames) == 9
    assert {r.steps for r in reports if r.stage is Stage.DENOISING and r.step} == {1}


def test_cancel_stops_within_a_step_and_skips_decoding(engine):
    token = CancelToken()
    reports = []

    def on_progress(report):
        reports.append(report)
        if report.stage is Stage.DENOISING and report.step == 2:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        engine.generate(request("tiny", frames=9, steps=20), on_progress=on_progress, cancel=token)
    assert max(r.step for r in reports) == 2
    assert Stage.DECODING not in {r.stage for r in reports}


def test_cancel_before_start(engine):
    token = CancelToken()
    token.cancel()
    with pytest.raises(GenerationCancelled):
        engine.generate(request("tiny", frames=9), cancel=token)


def test_an_external_cancel_check_is_polled(engine):
    asked = []

    def check():
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(GenerationCancelled):
        engine.generate(request("tiny", frames=9, steps=20), cancel=CancelToken(check))


def test_the_engine_keeps_pipelines_loaded(engine):
    engine.generate(request("tiny", frames=5))
    assert "tiny" in engine.pipelines.loaded()
