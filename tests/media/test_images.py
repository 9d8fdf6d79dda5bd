"""Thumbnails, spritesheets and the upload gate `load_image`."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moviola.errors import MediaError
from moviola.media import load_image, resize_image, write_spritesheet, write_thumbnail

pytestmark = pytest.mark.timeout(20)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def color_at(image: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.convert("RGB"))[xy[1], xy[0]].astype(int)


def distinct_colors(count: int) -> np.ndarray:
    """A different flat colour per frame, so a tile or thumbnail reveals which frame it shows."""
    index = np.arange(count)
    return np.stack([index * 37 % 256, index * 91 % 256, 255 - index * 53 % 256], -1).astype(
        np.uint8
    )


# Thumbnails


@pytest.mark.parametrize(("name", "fmt"), [("t.webp", "WEBP"), ("t.jpg", "JPEG"), ("t.png", "PNG")])
def test_thumbnail_is_the_middle_frame_at_full_size(
    tmp_path: Path, name: str, fmt: str, solid_frames
) -> None:
    frames = solid_frames(distinct_colors(7))
    path = tmp_path / name
    assert write_thumbnail(frames, path) == (64, 48)
    with Image.open(path) as image:
        assert (image.format, image.size) == (fmt, (64, 48))
        assert np.abs(color_at(image, (32, 24)) - frames[3, 0, 0]).max() <= 6


def test_thumbnail_max_side_keeps_aspect(tmp_path: Path, make_frames) -> None:
    path = tmp_path / "t.webp"
    assert write_thumbnail(make_frames(3, 128, 72), path, max_side=64) == (64, 36)
    with Image.open(path) as image:
        assert image.size == (64, 36)
    portrait = make_frames(1, 72, 128)
    assert write_thumbnail(portrait, tmp_path / "p.jpg", max_side=64) == (36, 64)
    # Never enlarged.
    assert write_thumbnail(portrait, tmp_path / "big.jpg", max_side=1000) == (72, 128)


@pytest.mark.parametrize(
    ("render", "video", "expected"),
    [
        ((96, 160), (720, 1280), (360, 640)),  # a small render, upscaled to the video's shape
        ((160, 96), (1280, 720), (640, 360)),  # the render's 5:3 is stretched to 16:9, as encoded
        ((64, 48), (320, 240), (320, 240)),  # never larger than the video itself
        ((1280, 720), (1920, 1080), (640, 360)),
    ],
)
def test_thumbnail_has_the_videos_shape_at_a_useful_size(
    tmp_path: Path, solid_frames, render, video, expected
) -> None:
    frames = solid_frames(distinct_colors(5), width=render[0], height=render[1])
    path = tmp_path / "t.webp"
    assert write_thumbnail(frames, path, size=video) == expected
    with Image.open(path) as image:
        assert image.size == expected
        assert abs(image.width / image.height - video[0] / video[1]) < 0.01
        centre = (image.width // 2, image.height // 2)
        assert np.abs(color_at(image, centre) - frames[2, 0, 0]).max() <= 6


def test_thumbnail_accepts_a_list_of_frames(tmp_path: Path, solid_frames) -> None:
    frames = list(solid_frames(distinct_colors(3)))
    assert write_thumbnail(frames, tmp_path / "t.png") == (64, 48)


@pytest.mark.parametrize(
    ("frames", "name", "kwargs", "needle"),
    [
        (np.zeros((2, 48, 64, 3), np.uint8), "t.gif", {}, "unsupported image type"),
        (np.zeros((2, 48, 64, 3), np.uint8), "thumb", {}, "unsupported image type"),
        (np.zeros((0, 48, 64, 3), np.uint8), "t.jpg", {}, "no frames"),
        (np.zeros((2, 48, 64, 3), np.float32), "t.jpg", {}, "uint8"),
        (np.zeros((2, 48, 64, 3), np.uint8), "t.jpg", {"max_side": 0}, "max_side"),
        (np.zeros((2, 48, 64, 3), np.uint8), "t.jpg", {"size": (64, -1)}, "size"),
        (np.zeros((2, 48, 64, 3), np.uint8), "t.jpg", {"size": "64x48"}, "size"),
    ],
)
def test_thumbnail_bad_input(tmp_path: Path, frames, name: str, kwargs, needle: str) -> None:
    with pytest.raises(MediaError, match=needle):
        write_thumbnail(frames, tmp_path / name, **kwargs)
    assert list(tmp_path.iterdir()) == []


# Spritesheets


def test_spritesheet_default_grid(tmp_path: Path, solid_frames) -> None:
    frames = solid_frames(distinct_colors(30), width=64, height=36)
    path = tmp_path / "sprite.jpg"
    info = write_spritesheet(frames, path)
    assert (info.columns, info.rows) == (5, 5)
    assert (info.tile_width, info.tile_height) == (160, 90)
    assert len(info.frame_indices) == 25
    assert info.frame_indices[0] == 0 and info.frame_indices[-1] == 29
    assert list(info.frame_indices) == sorted(set(info.frame_indices))
    steps = np.diff(info.frame_indices)
    assert steps.min() >= 1 and steps.max() - steps.min() <= 1  # evenly spread
    with Image.open(path) as image:
        assert (image.format, image.size) == ("JPEG", (800, 450))
        # Tile (2, 3) is slot 17: its centre shows that frame's colour.
        centre = (2 * 160 + 80, 3 * 90 + 45)
        expected = frames[info.frame_indices[17], 0, 0]
        assert np.abs(color_at(image, centre) - expected).max() <= 8


def test_spritesheet_explicit_layout(tmp_path: Path, solid_frames) -> None:
    frames = solid_frames(distinct_colors(10))
    info = write_spritesheet(frames, tmp_path / "s.webp", count=5, tile_side=40, columns=3)
    assert (info.columns, info.rows, info.tile_width, info.tile_height) == (3, 2, 40, 30)
    assert info.frame_indices == (0, 2, 5, 7, 9)
    assert (info.width, info.height) == (120, 60)
    with Image.open(tmp_path / "s.webp") as image:
        assert (image.format, image.size) == ("WEBP", (120, 60))
        # The unused sixth cell stays black.
        assert color_at(image, (100, 45)).max() <= 8


@pytest.mark.parametrize(
    ("render", "video", "tile"),
    [((96, 160), (720, 1280), (90, 160)), ((160, 96), (1280, 720), (160, 90))],
)
def test_spritesheet_tiles_have_the_videos_shape(
    tmp_path: Path, solid_frames, render, video, tile
) -> None:
    frames = solid_frames(distinct_colors(9), width=render[0], height=render[1])
    info = write_spritesheet(frames, tmp_path / "s.jpg", size=video)
    assert (info.columns, info.rows, info.tile_width, info.tile_height) == (3, 3, *tile)
    with Image.open(tmp_path / "s.jpg") as image:
        assert image.size == (3 * tile[0], 3 * tile[1])
        assert abs(image.width / image.height - video[0] / video[1]) < 0.02
        # Tile (1, 2) is slot 7, frame 7: the tiles lie where the layout says.
        centre = (tile[0] + tile[0] // 2, 2 * tile[1] + tile[1] // 2)
        assert np.abs(color_at(image, centre) - frames[7, 0, 0]).max() <= 8


def test_spritesheet_count_is_capped_at_the_frame_count(tmp_path: Path, make_frames) -> None:
    info = write_spritesheet(make_frames(3), tmp_path / "s.png", count=10)
    assert info.frame_indices == (0, 1, 2)
    assert (info.columns, info.rows) == (2, 2)
    single = write_spritesheet(make_frames(9), tmp_path / "one.png", count=1)
    assert (single.frame_indices, single.columns, single.rows) == ((4,), 1, 1)


def test_spritesheet_too_large_for_the_format(tmp_path: Path, make_frames) -> None:
    with pytest.raises(MediaError, match="too large"):
        write_spritesheet(make_frames(4), tmp_path / "s.webp", count=4, columns=4, tile_side=5000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs", [{"count": 0}, {"tile_side": 0}, {"columns": -1}, {"size": (0, 9)}, {"size": (5,)}]
)
def test_spritesheet_bad_arguments(tmp_path: Path, kwargs, make_frames) -> None:
    with pytest.raises(MediaError) as caught:
        write_spritesheet(make_frames(4), tmp_path / "s.jpg", **kwargs)
    assert caught.value.param == next(iter(kwargs))


# Loading uploads


def test_load_image_sniffs_the_content_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(png_bytes(Image.new("RGB", (30, 20), (10, 200, 30))))
    image = load_image(path)
    assert (image.mode, image.size) == ("RGB", (30, 20))
    assert color_at(image, (5, 5)).tolist() == [10, 200, 30]


def test_load_image_from_bytes(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 0, 255)).save(buffer, format="JPEG")
    image = load_image(buffer.getvalue())
    assert (image.mode, image.size) == ("RGB", (16, 16))
    assert color_at(image, (8, 8))[2] > 240


def test_load_image_flattens_transparency_onto_white() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (0, 0, 255, 255))
    loaded = load_image(png_bytes(image))
    assert loaded.mode == "RGB"
    assert color_at(loaded, (0, 0)).tolist() == [0, 0, 255]
    assert color_at(loaded, (3, 3)).tolist() == [255, 255, 255]


def test_load_image_applies_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).size == (20, 40)


def test_load_image_scales_16_bit_greyscale() -> None:
    grey = Image.fromarray(np.full((8, 8), 40000, np.uint16))
    loaded = load_image(png_bytes(grey))
    assert loaded.mode == "RGB"
    assert color_at(loaded, (1, 1)).tolist() == [156, 156, 156]  # 40000 >> 8


def test_load_image_returns_an_independent_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(Image.new("RGB", (8, 8), (1, 2, 3))))
    image = load_image(path)
    path.unlink()
    assert color_at(image, (0, 0)).tolist() == [1, 2, 3]


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture; the CRC is valid, only the size is wrong."""
    data = bytearray(png_bytes(Image.new("RGB", (1, 1))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("side", [10_000, 100_000])
def test_decompression_bomb_is_refused_from_the_header(side: int) -> None:
    with pytest.raises(MediaError, match=r"too large|over the limit"):
        load_image(bomb_png(side, side), name="input_reference")


def test_max_pixels_is_enforced() -> None:
    data = png_bytes(Image.new("RGB", (100, 100)))
    assert load_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(MediaError, match="10000 pixels"):
        load_image(data, max_pixels=9_999)


def test_bad_uploads_raise_media_error_naming_the_source(tmp_path: Path, make_frames) -> None:
    good = png_bytes(Image.fromarray(make_frames(1, 64, 48)[0]))
    unsupported = "not a supported image"
    cases = {
        "truncated.png": (good[: len(good) // 2], "truncated"),
        "random.png": (
            np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes(),
            unsupported,
        ),
        "empty.png": (b"", "empty"),
        "notes.png": (b"just some text, not an image\n" * 20, unsupported),
        # Pillow can open PostScript by running Ghostscript; uploads must never reach it.
        "script.png": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", unsupported),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(MediaError, match=reason) as caught:
            load_image(path)
        assert str(caught.value).startswith(f"{path}: "), name
        with pytest.raises(MediaError, match=f"^upload.png: .*{reason}"):
            load_image(data, name="upload.png")


def test_missing_and_odd_sources(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(MediaError, match="not a file"):
        load_image(tmp_path)
    with pytest.raises(MediaError, match="path or bytes"):
        load_image(12345)  # type: ignore[arg-type]


# Cover-crop


def test_resize_image_covers_and_crops_the_centre(palette) -> None:
    # Left third red, middle third green, right third blue.
    array = np.zeros((100, 300, 3), np.uint8)
    array[:, :100], array[:, 100:200], array[:, 200:] = palette[0], palette[1], palette[2]
    out = resize_image(Image.fromarray(array), (100, 100))
    assert out.size == (100, 100)
    assert np.abs(color_at(out, (50, 50)) - palette[1]).max() <= 2  # only the middle survives
    assert np.abs(color_at(out, (2, 50)) - palette[1]).max() <= 2


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (33, 17), (64, 48)])
def test_resize_image_hits_the_exact_size(size: tuple[int, int], make_frames) -> None:
    image = Image.fromarray(make_frames(1, 64, 48)[0])
    out = resize_image(image, size)
    assert out.size == size and out.mode == "RGB"
    assert image.size == (64, 48)  # the input is not modified


@pytest.mark.parametrize("size", [(0, 10), (10, -5), (1.5, 2), "big"])
def test_resize_image_rejects_bad_sizes(size) -> None:
    with pytest.raises(MediaError):
        resize_image(Image.new("RGB", (10, 10)), size)
