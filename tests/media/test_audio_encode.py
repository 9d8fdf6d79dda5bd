"""write_mp4 with sound: one AAC-LC track at 48 kHz, starting with frame 0, as long as the frames.

Every check decodes the file that was written, with PyAV directly where the point is what any
player would hear, and with `decode_audio` where it is the round trip Moviola itself makes.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from moviola.audio import RATE, Audio, boundary, resample, rms
from moviola.errors import MediaError
from moviola.media import decode_audio, decode_frames, probe, write_mp4

pytestmark = pytest.mark.timeout(30)

# The native FFmpeg AAC encoder's delay: 1024 samples of priming before the first one given.
AAC_PRIMING = 1024


def tone(seconds: float, *, rate: int = RATE, channels: int = 2, hz: float = 440.0) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return Audio(np.repeat(wave[None], channels, axis=0), rate)


def sweep(seconds: float, *, rate: int = RATE, channels: int = 2) -> Audio:
    """Rising chirps, a different one per channel: unlike a steady tone, a sweep lines up with
    itself at one lag only, so a shift of even one sample shows."""
    t = np.arange(round(seconds * rate)) / rate
    waves = [
        0.5 * np.sin(2 * np.pi * (low * t + (high - low) * t**2 / (2 * seconds)))
        for low, high in [(200, 4000), (300, 6000)][:channels]
    ]
    return Audio(np.stack(waves).astype(np.float32), rate)


def decode_with_pyav(path: Path) -> tuple[np.ndarray, float | None]:
    """What a player hears: every decoded sample in order, and the first frame's time."""
    with av.open(str(path)) as container:
        frames = list(container.decode(container.streams.audio[0]))
    return np.concatenate([frame.to_ndarray() for frame in frames], axis=1), frames[0].time


def best_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4000) -> tuple[int, float]:
    """The shift (in samples) at which `decoded` best matches `reference`, and their correlation
    at that shift."""
    n = min(reference.size, decoded.size)
    a, b = reference[:n].astype(np.float64), decoded[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    circular = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.r_[np.arange(max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(np.r_[circular[: max_lag + 1], circular[-max_lag:]])])
    if lag >= 0:
        a, b = a[: n - lag], b[lag:]
    else:
        a, b = a[-lag:], b[: n + lag]
    return lag, float(np.corrcoef(a, b)[0, 1])


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(type, payload start, box end) for each MP4 box between `start` and `end`."""
    end = len(data) if end is None else end
    found, offset = [], start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        assert size >= header, f"bad box size {size} at {offset}"
        found.append((kind.decode("latin-1"), offset + header, offset + size))
        offset += size
    return found


def edit_lists(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Each track's edit list as (segment duration, media time) pairs, by handler ("vide",
    "soun"): a media time of -1 is an empty edit, one above 0 skips that many media units."""
    data = path.read_bytes()
    moov = next(box for box in boxes(data) if box[0] == "moov")
    lists = {}
    for kind, start, end in boxes(data, moov[1], moov[2]):
        if kind != "trak":
            continue
        children = {k: (s, e) for k, s, e in boxes(data, start, end)}
        mdia = {k: (s, e) for k, s, e in boxes(data, *children["mdia"])}
        handler = data[mdia["hdlr"][0] + 8 : mdia["hdlr"][0] + 12].decode("latin-1")
        elst = next(b for b in boxes(data, *children["edts"]) if b[0] == "elst")
        version, count = data[elst[1]], struct.unpack(">I", data[elst[1] + 4 : elst[1] + 8])[0]
        entry = ">QqHH" if version else ">IiHH"
        width = struct.calcsize(entry)
        lists[handler] = [
            struct.unpack(entry, data[at : at + width])[:2]
            for at in range(elst[1] + 8, elst[1] + 8 + count * width, width)
        ]
    return lists


@pytest.fixture
def write_with(tmp_path: Path, make_frames):
    def write(audio: Audio | None, *, frames: int = 48, fps: int | Fraction = 24, **kwargs):
        path = tmp_path / "out.mp4"
        source = kwargs.pop("source", None)
        source = make_frames(frames) if source is None else source
        return path, write_mp4(source, path, fps=fps, audio=audio, **kwargs)

    return write


def test_stereo_sound_is_one_aac_lc_track_at_48k(write_with) -> None:
    path, info = write_with(tone(2.0), frames=48, fps=24)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        audio, video = container.streams.audio[0], container.streams.video[0]
        codec = audio.codec_context
        assert (codec.name, codec.profile, codec.sample_rate, codec.channels) == (
            "aac",
            "LC",
            48_000,
            2,
        )
        assert 64_000 <= codec.bit_rate <= 160_000  # 128 kb/s asked; a pure tone needs less
        assert audio.start_time == 0 and video.start_time == 0
        audio_s = float(audio.duration * audio.time_base)
        video_s = float(video.duration * video.time_base)
    assert abs(audio_s - video_s) < 1 / 24
    assert info.audio is not None and info.has_audio
    assert (info.audio.codec, info.audio.profile) == ("aac", "LC")
    assert (info.audio.sample_rate, info.audio.channels, info.audio.start) == (48_000, 2, 0.0)
    assert abs(info.audio.duration - info.duration) < 1 / 24
    top = [kind for kind, _, _ in boxes(path.read_bytes())]
    assert top.index("moov") < top.index("mdat")
    samples, _ = decode_with_pyav(path)
    assert rms(Audio(samples, RATE)) > 0.3  # the tone is 0.354; silence or noise is not


def test_the_encoders_priming_is_hidden_so_sample_0_is_the_first_given(write_with) -> None:
    sound = sweep(1.0)
    path, _ = write_with(sound, frames=24, fps=24)
    # The muxer's edit list skips exactly the priming; the video's starts at its first frame.
    lists = edit_lists(path)
    assert [media_time for _, media_time in lists["soun"]] == [AAC_PRIMING]
    assert lists["vide"][-1][1] >= 0
    # What a player decodes starts at time 0 with the first sample given, not 1024 early.
    samples, first_time = decode_with_pyav(path)
    assert first_time == 0
    for channel in range(2):
        lag, correlation = best_lag(sound.samples[channel], samples[channel])
        assert lag == 0 and correlation > 0.95, (channel, lag, correlation)


def test_mono_stays_mono(write_with) -> None:
    path, info = write_with(tone(1.0, channels=1), frames=24)
    assert info.audio is not None and info.audio.channels == 1
    with av.open(str(path)) as container:
        codec = container.streams.audio[0].codec_context
        assert (codec.channels, codec.layout.name) == (1, "mono")
        assert 60_000 <= codec.bit_rate <= 120_000


def test_more_than_two_channels_become_stereo(write_with) -> None:
    surround = Audio(np.repeat(tone(1.0, channels=1).samples, 6, axis=0), RATE)
    _, info = write_with(surround, frames=24)
    assert info.audio is not None and info.audio.channels == 2


@pytest.mark.parametrize("rate", [16_000, 24_000, 44_100])
def test_sound_at_other_rates_is_resampled(write_with, rate: int) -> None:
    sound = sweep(1.0, rate=rate)
    path, info = write_with(sound, frames=24)
    assert info.audio is not None and info.audio.sample_rate == 48_000
    decoded = decode_audio(path)
    assert decoded is not None and decoded.length == RATE
    reference = resample(sound, RATE).samples
    lag, correlation = best_lag(reference[0], decoded.samples[0])
    assert abs(lag) <= 2 and correlation > 0.9, (lag, correlation)


@pytest.mark.parametrize("seconds", [0.4, 1.0, 3.7], ids=["shorter", "exact", "longer"])
def test_sound_is_fitted_to_the_frames(write_with, seconds: float) -> None:
    sound = tone(seconds)
    path, info = write_with(sound, frames=24, fps=24)
    assert info.audio is not None
    assert abs(info.audio.duration - info.duration) < 1 / 24
    decoded = decode_audio(path)
    assert decoded is not None and decoded.length == boundary(24, 24)
    heard = min(sound.length, decoded.length)
    assert rms(Audio(decoded.samples[:, 2048 : heard - 2048], RATE)) > 0.3
    if heard < decoded.length:  # the padding is silence, give or take the codec's smear
        assert rms(Audio(decoded.samples[:, heard + 2048 :], RATE)) < 0.01


def test_round_trip_matches_the_input(write_with) -> None:
    sound = sweep(2.0)
    path, _ = write_with(sound, frames=48, fps=24)
    decoded = decode_audio(path)
    assert decoded is not None
    assert (decoded.rate, decoded.channels, decoded.length) == (RATE, 2, sound.length)
    for channel in range(2):
        lag, correlation = best_lag(sound.samples[channel], decoded.samples[channel])
        assert abs(lag) <= 2 and correlation > 0.9, (channel, lag, correlation)


@pytest.mark.parametrize(
    "fps", [16, 25, Fraction(30000, 1001), 29.97], ids=["16", "25", "ntsc", "float"]
)
def test_sound_and_picture_end_together_at_any_rate(write_with, fps) -> None:
    path, info = write_with(tone(3.0), frames=37, fps=fps)
    rate = Fraction(fps).limit_denominator(1001)
    assert info.audio is not None
    assert abs(info.audio.duration - info.duration) < 1 / rate
    decoded = decode_audio(path)
    assert decoded is not None and decoded.length == boundary(37, rate)


def test_frames_from_an_iterator_get_their_sound(write_with, make_frames) -> None:
    frames = make_frames(30)
    path, info = write_with(tone(5.0), source=(frame for frame in frames), fps=24)
    assert info.frames == 30
    decoded = decode_audio(path)
    assert decoded is not None and decoded.length == boundary(30, 24)


def test_scaled_frames_with_sound(write_with, make_frames) -> None:
    path, info = write_with(tone(1.0), source=make_frames(12, 63, 47), fps=12, size=(128, 96))
    assert info.size == (128, 96) and info.audio is not None
    assert abs(info.audio.duration - 1.0) < 1e-9
    assert decode_frames(path)[0].shape == (12, 96, 128, 3)


def test_without_sound_the_file_has_only_video(write_with) -> None:
    path, info = write_with(None, frames=12)
    assert info.audio is None and not info.has_audio
    with av.open(str(path)) as container:
        assert [stream.type for stream in container.streams] == ["video"]
    assert decode_audio(path) is None


def test_an_empty_or_unplayable_sound_still_gives_a_track(write_with) -> None:
    _, info = write_with(Audio(np.zeros((2, 0), np.float32), 16_000), frames=12, fps=12)
    assert info.audio is not None and abs(info.audio.duration - 1.0) < 1e-9
    wild = np.full((1, RATE), np.nan, np.float32)
    wild[0, ::2] = np.inf
    path, info = write_with(Audio(wild, RATE), frames=12, fps=12)
    decoded = decode_audio(path)
    assert decoded is not None and np.isfinite(decoded.samples).all()


@pytest.mark.parametrize("audio", [np.zeros((2, 100), np.float32), "sound.wav"])
def test_anything_but_audio_is_refused_before_writing(tmp_path: Path, make_frames, audio) -> None:
    with pytest.raises(MediaError, match="audio must be") as caught:
        write_mp4(make_frames(4), tmp_path / "out.mp4", fps=16, audio=audio)
    assert caught.value.param == "audio"
    assert list(tmp_path.iterdir()) == []


def test_sound_does_not_change_the_picture(tmp_path: Path, make_frames) -> None:
    frames = make_frames(10)
    silent = write_mp4(frames, tmp_path / "silent.mp4", fps=16)
    loud = write_mp4(frames, tmp_path / "loud.mp4", fps=16, audio=tone(1.0))
    assert (loud.frames, loud.duration, loud.fps) == (silent.frames, silent.duration, silent.fps)
    picture_silent, _ = decode_frames(tmp_path / "silent.mp4")
    picture_loud, _ = decode_frames(tmp_path / "loud.mp4")
    np.testing.assert_array_equal(picture_silent, picture_loud)
    assert probe(tmp_path / "loud.mp4") == loud


def test_an_absurd_rate_is_refused_before_any_sound_exists() -> None:
    with pytest.raises(ValueError, match="rate"):
        Audio(np.ones((1, 50), np.float32), 2**31 - 1)
