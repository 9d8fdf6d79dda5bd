"""Sound from the engine: the model's own (tiny-ltx2), the source's, a soundtrack (tiny-audio),
joined sample-exactly across segments, extensions and storyboard shots."""

from __future__ import annotations

import numpy as np
import pytest

from moviola import audio
from moviola.audio import RATE, Audio
from moviola.engine import AudioMode, GenerationRequest, SoundKind
from moviola.engine.soundtrack import get_soundtrack_model
from moviola.engine.storyboard import StoryboardShot, generate_storyboard
from moviola.errors import InvalidRequestError

NOISE_FLOOR = 1e-3  # RMS of a sound that is there at all


def request(model: str = "tiny-ltx2", **kwargs) -> GenerationRequest:
    kwargs.setdefault("seed", 5)
    kwargs.setdefault("soundtrack_model", "tiny-audio")
    kwargs.setdefault("prompt", "rain on a tin roof")
    return GenerationRequest(model=model, **kwargs)


def tone(frames: int, fps: int, hz: float = 330.0) -> Audio:
    t = np.arange(audio.boundary(frames, fps)) / RATE
    wave = 0.4 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.3 * t))
    return Audio(np.stack([wave, wave * 0.8]).astype(np.float32), RATE)


def correlation_at(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    if lag > 0:
        a, b = a[lag:], b[: len(b) - lag]
    elif lag < 0:
        a, b = a[:lag], b[-lag:]
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def window_rms(sound: Audio, frame: int, fps: int) -> float:
    """The sound under the two frames either side of `frame` (a join)."""
    return audio.rms(audio.span(sound, frame - 2, frame + 2, fps))


def test_a_model_with_sound_gives_the_video_its_sound(engine):
    result = engine.generate(request(seconds=1))
    assert result.audio_kind is SoundKind.MODEL
    assert result.audio.rate == RATE and result.audio.channels == 2
    assert result.audio.length == audio.boundary(len(result.frames), result.fps)
    assert audio.rms(result.audio) > NOISE_FLOOR


def test_same_seed_same_sound_other_prompt_other_sound(engine):
    a = engine.generate(request(frames=17))
    b = engine.generate(request(frames=17))
    c = engine.generate(request(frames=17, prompt="a choir in a cathedral"))
    assert np.array_equal(a.audio.samples, b.audio.samples)
    assert not np.allclose(a.audio.samples, c.audio.samples)


def test_none_strips_the_sound_and_silent_models_make_none(engine):
    assert engine.generate(request(frames=9, audio="none")).audio is None
    silent = engine.generate(request("tiny", frames=9))
    assert silent.audio is None and silent.audio_kind is None


def test_chained_segments_join_their_sound_with_no_gap(engine):
    result = engine.generate(request(seconds=3))  # 72 frames: three segments of at most 33
    assert result.segments == 3
    fps = result.fps
    assert result.audio.length == audio.boundary(72, fps)
    # The joins fall after the first segment's 33 frames and the next one's 32 new ones.
    for join in (33, 65):
        assert window_rms(result.audio, join, fps) > NOISE_FLOOR


def test_an_extension_keeps_the_sources_sound_for_the_source_part(engine):
    fps = 24
    source = np.random.default_rng(2).integers(0, 255, (24, 96, 160, 3), dtype=np.uint8)
    sound = tone(24, fps)
    result = engine.generate(request(extend=source, source_audio=sound, seconds=1))
    assert result.audio_kind is SoundKind.MODEL
    assert result.audio.length == audio.boundary(len(source) + len(result.frames), fps)
    before = audio.span(result.audio, 0, 24, fps).samples[0]
    original = sound.samples[0]
    kept = len(before) - round(audio.CROSSFADE_S * RATE)  # all but the crossfade into the new
    assert np.array_equal(before[:kept], original[:kept])
    lags = range(-50, 51)
    best = max(lags, key=lambda lag: correlation_at(before, original, lag))
    assert best == 0 and correlation_at(before, original, 0) > 0.99
    assert window_rms(result.audio, 24, fps) > NOISE_FLOOR


def test_a_silent_models_remix_keeps_the_sources_sound_aligned(engine):
    fps = 16
    source = np.random.default_rng(3).integers(0, 255, (20, 96, 160, 3), dtype=np.uint8)
    sound = tone(20, fps)
    result = engine.generate(request("tiny", video=source, source_audio=sound, fps=fps))
    assert result.audio_kind is SoundKind.SOURCE
    assert np.array_equal(result.audio.samples, audio.fit(sound, 20, fps).samples)
    stripped = engine.generate(
        request("tiny", video=source, source_audio=sound, fps=fps, audio="none")
    )
    assert stripped.audio is None


def test_a_soundtrack_gives_a_silent_model_sound_from_the_prompt(engine):
    result = engine.generate(request("tiny", seconds=1, audio="soundtrack"))
    assert result.audio_kind is SoundKind.SOUNDTRACK
    assert result.audio.length == audio.boundary(len(result.frames), result.fps)
    assert audio.rms(result.audio) > NOISE_FLOOR
    other = engine.generate(
        request("tiny", seconds=1, audio="soundtrack", prompt="a brass band marching")
    )
    assert not np.allclose(result.audio.samples, other.audio.samples)


def test_a_soundtrack_longer_than_one_call_is_made_in_windows(engine):
    window = get_soundtrack_model("tiny-audio").max_seconds
    made = engine.soundtracks.make("wind", seconds=window + 2.5, seed=1, model="tiny-audio")
    assert made.duration >= window + 2.5
    assert window_rms(made, int(window * 24), 24) > NOISE_FLOOR  # the join is not a gap


def test_add_sound_keeps_the_picture_and_hears_it(engine):
    fps = 24
    rng = np.random.default_rng(4)
    source = rng.integers(0, 255, (17, 96, 160, 3), dtype=np.uint8)
    result = engine.generate(request(video=source, audio=AudioMode.ADD, fps=fps))
    assert np.array_equal(result.frames, source)
    assert result.audio_kind is SoundKind.MODEL
    assert result.audio.length == audio.boundary(17, fps)
    flat = np.full_like(source, 128)
    other = engine.generate(request(video=flat, audio=AudioMode.ADD, fps=fps))
    assert not np.allclose(result.audio.samples, other.audio.samples)  # it hears the picture


def test_add_sound_with_a_silent_model_makes_a_soundtrack(engine):
    source = np.random.default_rng(5).integers(0, 255, (16, 96, 160, 3), dtype=np.uint8)
    result = engine.generate(request("tiny", video=source, audio="add", fps=16))
    assert np.array_equal(result.frames, source)
    assert result.audio_kind is SoundKind.SOUNDTRACK
    assert result.audio.length == audio.boundary(16, 16)


def test_a_storyboards_sound_is_continuous_across_its_shots(engine):
    from PIL import Image

    shots = [
        StoryboardShot("a fox wakes", 1),
        StoryboardShot("it runs into the snow", 1),
        StoryboardShot("night falls", 1, image=Image.new("RGB", (160, 96), (20, 20, 60))),
    ]
    board = generate_storyboard(engine, shots, request(size=(160, 96)))
    whole, fps = board.result.audio, board.result.fps
    assert whole.length == audio.boundary(len(board.result.frames), fps)
    assert board.result.audio_kind is SoundKind.MODEL
    for shot in board.shots[1:]:  # a continuing shot, then one starting afresh
        assert window_rms(whole, shot.start_frame, fps) > NOISE_FLOOR
    # No stretch of a frame's length anywhere is silent.
    per_frame = [
        audio.rms(audio.span(whole, k, k + 1, fps)) for k in range(len(board.result.frames))
    ]
    assert min(per_frame) > NOISE_FLOOR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"audio": "loud"}, "audio must be one of"),
        ({"audio": "add"}, "needs a video"),
    ],
)
def test_bad_sound_requests_are_refused_before_anything_runs(engine, kwargs, message):
    with pytest.raises(InvalidRequestError, match=message) as caught:
        engine.plan(request(frames=9, **kwargs))
    assert caught.value.param == "audio"
