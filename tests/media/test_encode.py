"""write_mp4 and the atomic file helpers: exact timing, layout, colour, size, and failure safety."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from moviola.errors import MediaError
from moviola.media import (
    atomic_write,
    atomic_write_bytes,
    decode_frames,
    probe,
    sha256_file,
    write_mp4,
)

pytestmark = pytest.mark.timeout(20)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4 box types at the top of the file, in order, parsed from the size/type headers."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        assert size >= 8, f"bad box size {size} at {offset}"
        boxes.append(kind.decode("latin-1"))
        offset += size
    assert offset == len(data)
    return boxes


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    "fps", [16, 24, Fraction(30000, 1001), 29.97], ids=["16", "24", "ntsc", "float"]
)
def test_round_trip_is_frame_exact(write_clip, fps, make_frames) -> None:
    source = make_frames(17)
    path, info = write_clip(source, fps=fps)
    rate = Fraction(fps).limit_denominator(1001)

    assert (info.width, info.height, info.size) == (64, 48, (64, 48))
    assert info.fps == rate
    assert info.frames == 17
    assert info.duration == pytest.approx(float(17 / rate), abs=1e-9)
    assert (info.codec, info.pix_fmt, info.has_audio) == ("h264", "yuv420p", False)
    assert info.size_bytes == path.stat().st_size
    assert probe(path) == info

    decoded, decoded_info = decode_frames(path)
    assert decoded.shape == source.shape and decoded.dtype == np.uint8
    assert decoded_info == info


def test_timestamps_are_constant_rate(write_clip, make_frames) -> None:
    path, _ = write_clip(make_frames(10), fps=Fraction(30000, 1001))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(stream)]
    assert times == pytest.approx([i * 1001 / 30000 for i in range(10)], abs=1e-6)


def test_moov_comes_before_mdat(write_clip, make_frames) -> None:
    path, _ = write_clip(make_frames(8))
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_colors_survive_the_round_trip(write_clip, solid_frames, palette) -> None:
    source = solid_frames(palette)
    path, _ = write_clip(source)
    decoded, _ = decode_frames(path)
    error = np.abs(decoded.astype(np.int16) - source).mean(axis=(1, 2))
    assert error.max() < 1.5, error  # a channel swap, matrix mix-up or rounding bias is not
    red = decoded[0].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_moving_content_is_preserved(write_clip, make_frames) -> None:
    source = make_frames(12)
    path, _ = write_clip(source)
    decoded, _ = decode_frames(path)
    assert np.abs(decoded.astype(np.int16) - source).mean() < 2
    # Frame order is kept: each decoded frame is nearest to its own source frame.
    for index, frame in enumerate(decoded):
        distances = np.abs(source.astype(np.int16) - frame).mean(axis=(1, 2, 3))
        assert distances.argmin() == index


@pytest.mark.parametrize("size", [(128, 96), (100, 60), (32, 24)])
def test_scales_to_exact_size(write_clip, size: tuple[int, int], solid_frames, palette) -> None:
    source = solid_frames(palette[:3])
    path, info = write_clip(source, size=size)
    assert info.size == size
    decoded, _ = decode_frames(path)
    assert decoded.shape == (3, size[1], size[0], 3)
    expected = np.broadcast_to(palette[:3, None, None, :], decoded.shape)
    assert np.abs(decoded.astype(np.int16) - expected).mean() < 1.5


def test_portrait_720p_native_and_upscaled(write_clip, make_frames) -> None:
    native = make_frames(3, width=720, height=1280)
    _, info = write_clip(native, name="native.mp4", preset="ultrafast")
    assert (info.size, info.frames) == ((720, 1280), 3)
    _, info = write_clip(make_frames(3, 360, 640), name="scaled.mp4", size=(720, 1280))
    assert (info.size, info.frames) == ((720, 1280), 3)


def test_streams_from_an_iterator(write_clip, make_frames) -> None:
    source = make_frames(9)
    path, info = write_clip(frame for frame in source)
    assert info.frames == 9
    decoded, _ = decode_frames(path)
    assert np.abs(decoded.astype(np.int16) - source).mean() < 2


def test_accepts_non_contiguous_views(write_clip, make_frames) -> None:
    source = make_frames(4)
    mirrored = source[:, :, ::-1]  # columns reversed: rows are not packed
    path, _ = write_clip(mirrored)
    decoded, _ = decode_frames(path)
    assert np.abs(decoded.astype(np.int16) - mirrored).mean() < 2


def test_metadata_tags_are_written(write_clip, make_frames) -> None:
    tags = {"title": "A red fox", "comment": "seed=7"}
    path, _ = write_clip(make_frames(4), metadata=tags)
    with av.open(str(path)) as container:
        assert tags.items() <= container.metadata.items()


def test_custom_metadata_keys_are_not_dropped(write_clip, make_frames) -> None:
    tags = {"title": "Fox", "moviola:prompt": "a fox, snow, dusk ❄"}
    path, _ = write_clip(make_frames(4), metadata=tags)
    with av.open(str(path)) as container:
        assert tags.items() <= container.metadata.items()


def test_lower_crf_makes_a_larger_file(write_clip, make_frames) -> None:
    source = make_frames(10)
    _, fine = write_clip(source, name="fine.mp4", crf=10)
    _, coarse = write_clip(source, name="coarse.mp4", crf=40)
    assert fine.size_bytes > coarse.size_bytes


@pytest.mark.parametrize(
    ("frames", "kwargs", "needle"),
    [
        (np.zeros((0, 48, 64, 3), np.uint8), {}, "no frames"),
        (iter([]), {}, "no frames"),
        (np.zeros((3, 48, 64, 3), np.float32), {}, "uint8"),
        (np.zeros((3, 48, 64, 4), np.uint8), {}, "(H, W, 3)"),
        (np.zeros((48, 64, 3), np.uint8), {}, "(T, H, W, 3)"),
        ([np.zeros((48, 64, 3), np.uint8), "frame"], {}, "frame 1"),
        (np.zeros((3, 47, 64, 3), np.uint8), {}, "even"),
        (np.zeros((3, 48, 63, 3), np.uint8), {}, "even"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"size": (101, 60)}, "even"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"size": (0, 60)}, "size"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"fps": 0}, "fps"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"fps": float("nan")}, "fps"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"fps": "24"}, "fps"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"crf": 60}, "crf"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"preset": "warp"}, "preset"),
        (np.zeros((3, 48, 64, 3), np.uint8), {"metadata": {"title": 3}}, "metadata"),
        (None, {}, "frames"),
    ],
)
def test_bad_input_raises_media_error(tmp_path: Path, frames, kwargs, needle: str) -> None:
    path = tmp_path / "bad.mp4"
    kwargs = {"fps": 16, **kwargs}
    with pytest.raises(MediaError) as caught:
        write_mp4(frames, path, **kwargs)
    assert needle in str(caught.value)
    assert leftovers(tmp_path) == []


def test_odd_frames_are_fine_when_scaled_to_even(write_clip, make_frames) -> None:
    _, info = write_clip(make_frames(3, 63, 47), size=(64, 48))
    assert info.size == (64, 48)


def test_error_names_the_output_file(tmp_path: Path) -> None:
    path = tmp_path / "named.mp4"
    with pytest.raises(MediaError, match=r"named\.mp4"):
        write_mp4(np.zeros((2, 48, 64, 3), np.float32), path, fps=16)


def test_missing_directory_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "out.mp4"
    with pytest.raises(MediaError, match=r"out\.mp4"):
        write_mp4(np.zeros((2, 48, 64, 3), np.uint8), path, fps=16)


class Boom(RuntimeError):
    pass


def exploding(frames: np.ndarray, after: int):
    for index, frame in enumerate(frames):
        if index == after:
            raise Boom("generator failed")
        yield frame


@pytest.mark.parametrize("after", [1, 30])
def test_failure_mid_stream_leaves_nothing(tmp_path: Path, after: int, make_frames) -> None:
    with pytest.raises(Boom):
        write_mp4(exploding(make_frames(40), after), tmp_path / "out.mp4", fps=16)
    assert leftovers(tmp_path) == []


def test_failed_rewrite_keeps_the_existing_file(tmp_path: Path, make_frames) -> None:
    path = tmp_path / "out.mp4"
    write_mp4(make_frames(6), path, fps=16)
    before = path.read_bytes()

    with pytest.raises(Boom):
        write_mp4(exploding(make_frames(20), 10), path, fps=16)
    bad_frame = [*make_frames(3), np.zeros((10, 10, 3), np.uint8)]
    with pytest.raises(MediaError, match="frame 3"):
        write_mp4(bad_frame, path, fps=16)

    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["out.mp4"]
    assert probe(path).frames == 6


def test_atomic_write_replaces_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with atomic_write(path) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".clip.mp4.") and tmp.suffix == ".mp4"
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"
    assert path.read_bytes() == b"new"
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_atomic_write_cleans_up_on_error(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_atomic_write_bytes_and_sha256(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    path = atomic_write_bytes(tmp_path / "blob.bin", data)
    assert path.read_bytes() == data
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert leftovers(tmp_path) == ["blob.bin"]


def test_with_a_size_frames_of_different_sizes_are_each_scaled_to_it(tmp_path):
    from moviola.media import probe, write_mp4

    big = np.full((3, 120, 200, 3), 200, np.uint8)
    small = np.full((2, 48, 80, 3), 40, np.uint8)
    info = write_mp4([*big, *small], tmp_path / "mixed.mp4", fps=8, size=(200, 120))
    assert (info.width, info.height, info.frames) == (200, 120, 5)
    assert probe(tmp_path / "mixed.mp4").frames == 5
