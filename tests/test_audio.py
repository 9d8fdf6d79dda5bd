"""Sound lined up with frames: cutting at frame boundaries, fitting, joining without a click."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from moviola import audio
from moviola.audio import RATE, Audio


def tone(seconds: float, hz: float = 440.0, rate: int = RATE, channels: int = 1) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return Audio(np.repeat(wave[None], channels, axis=0), rate)


def test_a_frame_starts_on_an_exact_sample():
    assert audio.boundary(24, 24) == RATE
    assert audio.boundary(1, 16) == 3000
    # NTSC: 30000/1001 fps; pieces cut frame by frame add up to the whole.
    fps = Fraction(30000, 1001)
    pieces = [audio.boundary(k + 1, fps) - audio.boundary(k, fps) for k in range(300)]
    assert sum(pieces) == audio.boundary(300, fps)
    assert set(pieces) <= {1601, 1602}


def test_fit_trims_or_pads_to_the_frames():
    sound = tone(1.0)
    assert audio.fit(sound, 12, 24).length == RATE // 2
    longer = audio.fit(sound, 48, 24)
    assert longer.length == 2 * RATE
    assert not longer.samples[:, RATE:].any()  # the padding is silence
    assert np.array_equal(longer.samples[:, :RATE], sound.samples)


def test_span_cuts_at_the_frames_own_samples():
    sound = Audio(np.arange(RATE, dtype=np.float32)[None], RATE)
    piece = audio.span(sound, 6, 12, 24)
    assert piece.length == 12_000 and piece.samples[0, 0] == 12_000
    past_the_end = audio.span(sound, 20, 30, 24)
    assert past_the_end.length == 20_000 and not past_the_end.samples[:, 8_000:].any()


def test_resample_keeps_the_length_and_the_sound():
    sound = tone(1.0, rate=16_000)
    up = audio.resample(sound, RATE)
    assert (up.rate, up.length) == (RATE, RATE)
    assert audio.rms(up) == pytest.approx(audio.rms(sound), rel=0.01)
    spectrum = np.abs(np.fft.rfft(up.samples[0]))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


def test_playable_is_48k_stereo_at_most_and_finite():
    five_one = Audio(np.full((6, 1000), np.nan, np.float32), 24_000)
    made = audio.playable(five_one)
    assert (made.rate, made.channels) == (RATE, 2)
    assert np.isfinite(made.samples).all()


def test_mono_and_stereo_mix_into_stereo():
    mono, stereo = tone(0.1), tone(0.1, channels=2)
    joined = audio.join([mono, stereo])
    assert joined.channels == 2 and joined.length == mono.length + stereo.length


def test_a_join_with_a_lead_is_continuous_and_exactly_as_long():
    """The next piece's own sound under the dropped conditioning frame (its lead) takes over
    from the piece before within the crossfade, so the join has no jump and no dip."""
    fps = 24
    whole = tone(2.0, hz=220)
    first = audio.span(whole, 0, 24, fps)
    lead = audio.span(whole, 23, 24, fps)
    second = audio.span(whole, 24, 48, fps)
    # The piece before ends in a different sound (another segment), the lead continues the next.
    other = Audio(first.samples * -1.0, RATE)
    joined = audio.join([other, second], leads=[None, lead])
    assert joined.length == whole.length
    at = audio.boundary(24, fps)
    assert joined.samples[0, at - 1] == pytest.approx(lead.samples[0, -1], abs=1e-6)
    jump = np.abs(np.diff(joined.samples[0, at - 4 : at + 4])).max()
    typical = np.abs(np.diff(whole.samples[0])).max()
    assert jump <= typical * 1.01


def test_a_hard_cut_fades_briefly_and_leaves_no_gap():
    a, b = tone(0.5, hz=300), tone(0.5, hz=500)
    joined = audio.join([a, b])
    assert joined.length == a.length + b.length
    window = joined.samples[0, a.length - 960 : a.length + 960]  # 40 ms around the join
    assert audio.rms(Audio(window[None], RATE)) > 0.25  # the tones' RMS is 0.354


def test_rms_of_silence_and_of_a_sine():
    assert audio.rms(audio.silence(100)) == 0.0
    assert audio.rms(tone(1.0)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="channels, n"):
        Audio(np.zeros(10, np.float32), RATE)
    with pytest.raises(ValueError, match="rate"):
        Audio(np.zeros((1, 10), np.float32), 0)
    assert Audio(np.zeros((1, 4), np.float64), RATE).samples.dtype == np.float32


def test_five_one_mixes_down_by_position():
    n = 100
    channels = np.zeros((6, n), np.float32)
    channels[2] = 1.0  # the centre only: equally in both, the LFE (3) nowhere
    channels[3] = 1.0
    stereo = audio.with_channels(Audio(channels, RATE), 2)
    assert stereo.samples[0] == pytest.approx(stereo.samples[1])
    channels[2] = 0.0
    assert not audio.with_channels(Audio(channels, RATE), 2).samples.any()


def test_an_empty_sound_resamples_to_an_empty_sound():
    assert audio.resample(audio.silence(0, rate=24_000)).length == 0
