"""probe and decode_frames: exact facts from good files, one-line MediaErrors from bad ones."""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import shutil
import tracemalloc
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from moviola.errors import MediaError
from moviola.media import decode_frames, probe, write_mp4

pytestmark = pytest.mark.timeout(20)


def write_with_pyav(
    path: Path, *, video: np.ndarray | None = None, audio: bool = False, fmt: str | None = None
) -> None:
    """Files write_mp4 never makes: other containers, audio tracks."""
    video = np.zeros((0, 48, 64, 3), np.uint8) if video is None else video
    with av.open(str(path), "w", format=fmt) as out:
        vstream = out.add_stream("libx264", rate=24) if len(video) else None
        if vstream is not None:
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream("aac", rate=48000) if audio else None
        for index, array in enumerate(video):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(vstream.encode(frame))
        if vstream is not None:
            out.mux(vstream.encode(None))
        if astream is not None:
            for index in range(10):
                samples = np.zeros((1, 1024), np.float32)
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, index * 1024
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))


def test_probe_reports_what_was_written(clip) -> None:
    path, written, _ = clip
    info = probe(path)
    assert info == written
    assert (info.size, info.fps, info.frames) == ((64, 48), Fraction(16), 20)
    assert info.duration == pytest.approx(20 / 16, abs=1e-9)


def test_probe_accepts_a_binary_file_object(clip) -> None:
    path, written, _ = clip
    with open(path, "rb") as fh:
        assert probe(fh) == written
    assert probe(io.BytesIO(path.read_bytes())) == written


def test_frames_are_counted_when_the_container_does_not_say(tmp_path: Path, make_frames) -> None:
    path = tmp_path / "clip.mkv"
    write_with_pyav(path, video=make_frames(11), fmt="matroska")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # the case under test
    info = probe(path)
    assert (info.frames, info.size, info.codec) == (11, (64, 48), "h264")
    assert info.fps == 24
    assert len(decode_frames(path)[0]) == 11


def test_audio_track_is_reported(tmp_path: Path, make_frames) -> None:
    path = tmp_path / "with_audio.mp4"
    write_with_pyav(path, video=make_frames(6), audio=True, fmt="mp4")
    info = probe(path)
    assert info.has_audio and info.frames == 6


def test_decode_returns_rgb_frames(clip) -> None:
    path, info, source = clip
    frames, decoded_info = decode_frames(path)
    assert decoded_info == info
    assert frames.shape == (20, 48, 64, 3) and frames.dtype == np.uint8
    assert frames.flags.c_contiguous
    assert np.abs(frames.astype(np.int16) - source).mean() < 2


def test_decode_max_frames_keeps_the_first(clip) -> None:
    path, _, _ = clip
    everything, _ = decode_frames(path)
    first, info = decode_frames(path, max_frames=5)
    assert first.shape[0] == 5 and info.frames == 20
    np.testing.assert_array_equal(first, everything[:5])
    assert decode_frames(path, max_frames=500)[0].shape[0] == 20


def test_decode_scales_while_decoding(clip) -> None:
    path, _, _ = clip
    frames, info = decode_frames(path, size=(32, 24))
    assert frames.shape == (20, 24, 32, 3)
    assert info.size == (64, 48)  # the info still describes the file
    frames, _ = decode_frames(path, size=(50, 50), max_frames=2)
    assert frames.shape == (2, 50, 50, 3)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_pixels": 64 * 48 - 1}, "3072 pixels, over the limit of 3071"),
        ({"max_duration_s": 1.0}, "1.2 s long, over the limit of 1 s"),
        ({"max_bytes": 64 * 48 * 3 * 20 - 1}, "pass max_frames or a smaller size"),
        ({"max_bytes": 32 * 24 * 3 * 5 - 1, "max_frames": 5, "size": (32, 24)}, "max_frames"),
    ],
)
def test_decode_refuses_over_limit_videos(clip, kwargs, needle: str) -> None:
    path, _, _ = clip
    with pytest.raises(MediaError) as caught:
        decode_frames(path, **kwargs)
    assert needle in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_frames": 0}, {"max_frames": 2.5}, {"size": (0, 10)}, {"size": (10, -1)}, {"size": (5,)}],
)
def test_decode_rejects_bad_arguments(clip, kwargs) -> None:
    with pytest.raises(MediaError) as caught:
        decode_frames(clip[0], **kwargs)
    assert caught.value.param == next(iter(kwargs))


def test_decode_limits_are_inclusive(clip) -> None:
    path, info, _ = clip
    frames, _ = decode_frames(
        path,
        max_pixels=64 * 48,
        max_duration_s=info.duration,
        max_bytes=64 * 48 * 3 * 20,
    )
    assert len(frames) == 20


@pytest.fixture(scope="module")
def flat_upload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1200 flat 1024x1024 frames: about 50 KB on disk, 3.8 GB decoded."""
    path = tmp_path_factory.mktemp("flat") / "flat.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1024, 1024, "yuv420p"
        grey = np.full((1024, 1024, 3), 90, np.uint8)
        frame = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuv420p")
        for index in range(1200):
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def traced_peak(call: Callable[[], object]) -> int:
    """The most memory Python and numpy held at once while `call` ran."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_tiny_file_that_decodes_to_gigabytes_is_refused_before_decoding(flat_upload) -> None:
    assert flat_upload.stat().st_size < 100_000

    def decode() -> None:
        with pytest.raises(MediaError, match="limit on decoded frames") as caught:
            decode_frames(flat_upload)
        assert "1200 frames at 1024x1024 needs 3.8 GB, over the 2.1 GB limit" in str(caught.value)

    assert traced_peak(decode) < 16 << 20


def test_the_budget_holds_for_frames_the_probe_did_not_count(
    flat_upload, clip, monkeypatch
) -> None:
    # A stream can decode to more frames than it has packets: the budget is on what is decoded.
    probing = importlib.import_module("moviola.media.probe")
    counted = probing.probe
    monkeypatch.setattr(
        probing, "probe", lambda *a, **kw: dataclasses.replace(counted(*a, **kw), frames=1)
    )
    frame_bytes = 1024 * 1024 * 3
    budget = 40 * frame_bytes

    def decode() -> None:
        with pytest.raises(MediaError, match="decoding 41 frames at 1024x1024"):
            decode_frames(flat_upload, max_bytes=budget)

    assert traced_peak(decode) < budget + 2 * frame_bytes
    # Within the budget every frame comes back, not only the counted one.
    path, _, source = clip
    frames, _ = decode_frames(path)
    assert frames.shape == source.shape
    assert len(decode_frames(path, max_frames=7)[0]) == 7


def bad_files(tmp_path: Path, clip_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "random": tmp_path / "random.mp4",
        "text": tmp_path / "notes.mp4",
        "png": tmp_path / "picture.mp4",
        "jpeg": tmp_path / "photo.mp4",
        "truncated": tmp_path / "truncated.mp4",
        "directory": tmp_path / "folder.mp4",
        "audio": tmp_path / "sound.mp4",
    }
    files["empty"].touch()
    rng = np.random.default_rng(1)
    files["random"].write_bytes(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    files["text"].write_text("this is not a video\n" * 50)
    Image.new("RGB", (64, 48), (200, 10, 10)).save(files["png"], format="PNG")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(files["jpeg"], format="JPEG")
    data = clip_path.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["directory"].mkdir()
    write_with_pyav(files["audio"], audio=True, fmt="mp4")
    return files


BAD_KINDS = ["missing", "empty", "random", "text", "png", "jpeg", "truncated", "directory", "audio"]


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("reader", [probe, decode_frames], ids=["probe", "decode"])
def test_bad_files_raise_media_error_naming_the_file(tmp_path: Path, clip, kind, reader) -> None:
    path = bad_files(tmp_path, clip[0])[kind]
    with pytest.raises(MediaError) as caught:
        reader(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert caught.value.code == "invalid_media"


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such file"),
        ("empty", "empty"),
        ("png", "still image"),
        ("truncated", "truncated"),
        ("directory", "not a regular file"),
        ("audio", "no video stream"),
    ],
)
def test_bad_files_say_why(tmp_path: Path, clip, kind: str, needle: str) -> None:
    path = bad_files(tmp_path, clip[0])[kind]
    with pytest.raises(MediaError, match=needle):
        probe(path)


def test_truncation_inside_the_header_is_caught(tmp_path: Path, clip) -> None:
    data = clip[0].read_bytes()
    for cut in (16, 200, len(data) - 100):
        path = tmp_path / f"cut{cut}.mp4"
        path.write_bytes(data[:cut])
        with pytest.raises(MediaError, match=path.name):
            probe(path)


def test_file_not_made_by_us_with_wrong_extension_still_probes(tmp_path: Path, clip) -> None:
    path = tmp_path / "clip.bin"
    shutil.copy(clip[0], path)
    assert probe(path).frames == 20


def test_large_video_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    write_mp4(np.zeros((2, 64, 64, 3), np.uint8), path, fps=16, size=(1920, 1080))
    with pytest.raises(MediaError, match=r"1920x1080 is 2073600 pixels"):
        decode_frames(path, max_pixels=1280 * 720)


def test_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        probe(fifo)


def test_damaged_frame_data_never_crashes(tmp_path: Path, make_frames) -> None:
    path = tmp_path / "damaged.mp4"
    write_mp4(make_frames(24), path, fps=16, crf=30)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 8
    rng = np.random.default_rng(3)
    middle = start + (len(data) - start) // 2
    data[middle : middle + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    try:
        frames, info = decode_frames(path)
    except MediaError as err:
        assert str(path) in str(err)
    else:
        assert 0 < len(frames) <= info.frames == 24
        assert frames.shape[1:] == (48, 64, 3)


def test_playlists_that_pull_in_other_files_are_refused(tmp_path: Path, clip) -> None:
    # An FFmpeg concat list is a text file that makes the demuxer open other local files.
    playlist = tmp_path / "upload.mp4"
    playlist.write_text(f"ffconcat version 1.0\nfile '{clip[0]}'\n")
    with pytest.raises(MediaError, match="not a supported video format"):
        probe(playlist)
    with pytest.raises(MediaError, match="upload"):
        decode_frames(playlist)
