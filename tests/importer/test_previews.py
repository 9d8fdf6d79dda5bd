"""A source's own previews are kept only when they are small, whole images of a known kind."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from moviola.errors import MediaError
from moviola.importer.previews import MAX_PREVIEW_BYTES, preview_image


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def test_a_small_preview_is_kept_byte_for_byte():
    data = _png((32, 18))
    assert preview_image(lambda: io.BytesIO(data)) == (data, "image/png")


def test_previews_too_large_in_pixels_or_bytes_or_of_another_kind_are_refused():
    huge = _png((10_000, 10_000), mode="1")  # 100 million pixels in a few kilobytes
    assert len(huge) < 1 << 20
    with pytest.raises(MediaError, match="too many pixels"):
        preview_image(lambda: io.BytesIO(huge))
    with pytest.raises(MediaError, match="over 32 MiB"):
        preview_image(lambda: io.BytesIO(b"\0" * (MAX_PREVIEW_BYTES + 1)))
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    with pytest.raises(MediaError, match="not a WebP, JPEG or PNG"):
        preview_image(lambda: io.BytesIO(gif.getvalue()))


@pytest.mark.parametrize(
    ("size", "thumbnail", "tile"),
    [((1280, 720), (640, 360), (160, 90)), ((360, 640), (360, 640), (90, 160))],
)
def test_made_previews_have_the_videos_shape(tmp_path, clip, size, thumbnail, tile):
    from moviola import media
    from moviola.importer.previews import write_previews

    video = clip(tmp_path / "v.mp4", 1, frames=4, size=size)
    write_previews(video, media.probe(video), tmp_path / "t.webp", tmp_path / "s.jpg")
    with Image.open(tmp_path / "t.webp") as image:
        assert image.size == thumbnail
    with Image.open(tmp_path / "s.jpg") as image:
        assert image.size == (2 * tile[0], 2 * tile[1])  # four frames: a 2x2 grid
