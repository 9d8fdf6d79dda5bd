"""probe and decode_audio on files with sound: exact facts from good ones, refusals of damage."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from moviola.audio import RATE, Audio, rms
from moviola.errors import MediaError
from moviola.media import AudioInfo, decode_audio, decode_frames, probe, write_mp4

pytestmark = pytest.mark.timeout(30)


def tone(seconds: float, *, rate: int = RATE, channels: int = 2) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return Audio(np.repeat(wave[None], channels, axis=0), rate)


@pytest.fixture(scope="module")
def with_sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 frames at 16 fps with two seconds of a stereo tone."""
    path = tmp_path_factory.mktemp("sound") / "sound.mp4"
    frames = np.full((32, 48, 64, 3), 120, np.uint8)
    write_mp4(frames, path, fps=16, audio=tone(2.0))
    return path


def audio_packets(path: Path) -> list[tuple[int, int]]:
    """Where the audio packets' payloads lie in the file: (offset, size)."""
    with av.open(str(path)) as container:
        return [
            (packet.pos, packet.size)
            for packet in container.demux(container.streams.audio[0])
            if packet.size and packet.pos is not None
        ]


def damage(path: Path, target: Path, *, only: int | None = None) -> Path:
    """A copy of `path` with the payload of its audio packets (or of packet `only`) replaced by
    random bytes: the container stays whole, the sound does not."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    packets = audio_packets(path)
    for offset, size in packets if only is None else packets[only : only + 1]:
        data[offset : offset + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def test_probe_reports_the_sound(with_sound: Path) -> None:
    info = probe(with_sound)
    assert info.audio == AudioInfo(
        codec="aac", profile="LC", sample_rate=48_000, channels=2, duration=2.0, start=0.0
    )
    assert info.has_audio and info.duration == 2.0


def test_a_video_without_sound_has_no_audio_info(clip) -> None:
    path, info, _ = clip
    assert info.audio is None and not info.has_audio
    assert decode_audio(path) is None


def test_decode_audio_gives_the_sound_at_48k(with_sound: Path) -> None:
    sound = decode_audio(with_sound)
    assert sound is not None
    assert (sound.rate, sound.channels, sound.length) == (RATE, 2, 2 * RATE)
    assert sound.samples.dtype == np.float32 and np.abs(sound.samples).max() <= 1.0
    assert rms(sound) == pytest.approx(0.354, abs=0.02)


def test_decode_audio_accepts_binary_file_objects(with_sound: Path) -> None:
    from_path = decode_audio(with_sound)
    assert from_path is not None
    with open(with_sound, "rb") as fh:
        from_file = decode_audio(fh)
    from_memory = decode_audio(io.BytesIO(with_sound.read_bytes()))
    for other in (from_file, from_memory):
        assert other is not None
        np.testing.assert_array_equal(other.samples, from_path.samples)


def test_sound_in_other_containers_and_rates(tmp_path: Path) -> None:
    # Matroska, mono AAC at 44.1 kHz: written by PyAV, not write_mp4.
    path = tmp_path / "upload.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=44_100, layout="mono")
        for index in range(24):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            out.mux(video.encode(frame))
        samples = tone(1.0, rate=44_100, channels=1).samples
        sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 44_100, 0
        out.mux(audio.encode(sound))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    info = probe(path)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 44_100, 1)
    assert info.audio.duration == pytest.approx(1.0, abs=0.03)
    decoded = decode_audio(path)
    assert decoded is not None and (decoded.rate, decoded.channels) == (RATE, 1)
    assert decoded.length == pytest.approx(RATE, abs=0.03 * RATE)
    assert rms(Audio(decoded.samples[:, 2048:-2048], RATE)) == pytest.approx(0.354, abs=0.02)


def test_sound_that_starts_late_is_placed_on_the_pictures_clock(tmp_path: Path) -> None:
    path = tmp_path / "late.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=16)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        for index in range(32):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            out.mux(video.encode(frame))
        sound = av.AudioFrame.from_ndarray(tone(1.5).samples, format="fltp", layout="stereo")
        sound.sample_rate, sound.pts = RATE, RATE // 2  # half a second after frame 0
        out.mux(audio.encode(sound))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    info = probe(path)
    # The muxer hides the encoder's priming only for a track that starts at 0; here the 1024
    # priming samples (21 ms of near silence) play just before the tone.
    assert info.audio is not None
    assert info.audio.start == pytest.approx(0.5 - 1024 / RATE, abs=1e-3)  # edits are in ms
    decoded = decode_audio(path)
    assert decoded is not None and decoded.length == pytest.approx(2 * RATE, abs=RATE // 1000)
    assert rms(Audio(decoded.samples[:, : RATE // 2 - 64], RATE)) < 1e-3
    assert rms(Audio(decoded.samples[:, RATE // 2 + 2048 : -2048], RATE)) > 0.3


@pytest.mark.parametrize("only", [None, 20], ids=["every-packet", "one-packet"])
@pytest.mark.parametrize(
    "reader", [probe, decode_audio, decode_frames], ids=["probe", "decode_audio", "decode"]
)
def test_damaged_sound_is_refused(with_sound: Path, tmp_path: Path, reader, only) -> None:
    path = damage(with_sound, tmp_path / "damaged.mp4", only=only)
    with pytest.raises(MediaError, match="damaged audio") as caught:
        reader(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: damaged audio (") and "\n" not in message
    assert caught.value.code == "invalid_media"


def test_damaged_sound_is_refused_from_a_file_object(with_sound: Path, tmp_path: Path) -> None:
    data = damage(with_sound, tmp_path / "damaged.mp4").read_bytes()
    with pytest.raises(MediaError, match="damaged audio"):
        probe(io.BytesIO(data))


def test_decode_audio_refuses_what_probe_refuses(tmp_path: Path, clip) -> None:
    random = tmp_path / "random.mp4"
    random.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    playlist = tmp_path / "upload.mp4"
    playlist.write_text(f"ffconcat version 1.0\nfile '{clip[0]}'\n")
    for path, needle in [
        (tmp_path / "missing.mp4", "no such file"),
        (random, "random.mp4"),
        (playlist, "not a supported video format"),
    ]:
        with pytest.raises(MediaError, match=needle):
            decode_audio(path)


def test_decode_audio_refuses_sound_over_the_limit(with_sound: Path) -> None:
    with pytest.raises(MediaError, match=r"audio is 2\.0 s long, over the limit of 1\.5 s"):
        decode_audio(with_sound, max_duration_s=1.5)
    sound = decode_audio(with_sound, max_duration_s=2.0)  # the limit is inclusive
    assert sound is not None and sound.length == 2 * RATE
