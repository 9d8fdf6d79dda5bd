"""Still images: thumbnails and scrubbing spritesheets out of frames, and safe loading of uploads.

`load_image` is the gate for user-supplied pictures (a first frame for image-to-video). It trusts
the bytes, never the file name, only hands them to a short list of well-trodden decoders (Pillow
can also open formats such as EPS, which shell out to Ghostscript), and decodes fully so a
truncated upload fails here rather than halfway through a render.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from PIL import Image, ImageOps

from moviola.errors import MediaError
from moviola.media.encode import _check_frame
from moviola.media.files import atomic_write

MAX_IMAGE_PIXELS = 50_000_000
"""Largest image `load_image` decodes by default (about 8660 × 5773)."""

THUMBNAIL_SIDE = 640
"""Longest side of a thumbnail: sharp on a card in a grid, and never more than the video's."""

TILE_SIDE = 160
"""Longest side of a spritesheet tile: enough to recognise a moment while scrubbing."""

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview

# Formats worth accepting from a browser upload; the order is the order Pillow tries them in.
_UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

# Output format and encoder settings by suffix; quality values trade size for a clean preview.
_SAVE_FORMATS: dict[str, tuple[str, dict[str, object]]] = {
    ".webp": ("WEBP", {"quality": 85, "method": 4}),
    ".jpg": ("JPEG", {"quality": 88, "optimize": True, "progressive": True}),
    ".jpeg": ("JPEG", {"quality": 88, "optimize": True, "progressive": True}),
    ".png": ("PNG", {}),
}
# The largest side each format can store; a spritesheet of a long clip can exceed it.
_MAX_SIDE = {"WEBP": 16383, "JPEG": 65500, "PNG": 2**31 - 1}

# Transparent uploads are flattened onto white: it is how browsers and viewers showed the image
# to the person who chose it.
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class SpritesheetInfo:
    """Layout of a spritesheet: tile (c, r) shows frame `frame_indices[r * columns + c]`."""

    columns: int
    rows: int
    tile_width: int
    tile_height: int
    frame_indices: tuple[int, ...]

    @property
    def width(self) -> int:
        return self.columns * self.tile_width

    @property
    def height(self) -> int:
        return self.rows * self.tile_height


def write_thumbnail(
    frames: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    max_side: int = THUMBNAIL_SIDE,
) -> tuple[int, int]:
    """Save the middle frame as a still (format from the suffix) and return its `(width, height)`.

    The middle frame, because the first of a generated clip is often a static or fading start.
    `size` is the video's `(width, height)` (default: the frames' own): frames rendered smaller
    than the video they were encoded to are scaled as the video was, so the thumbnail has the
    video's shape, shrunk to fit `max_side` and never larger than the video itself.
    """
    label = os.fspath(path)
    fmt, options = _save_format(label)
    count = _frame_count(frames, label)
    _check_positive(max_side, "max_side", label)
    image = _to_image(frames, count // 2, label)
    target = fit_size(_check_size(size, label) or image.size, max_side, enlarge=False)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    _save(image, path, fmt, options, label)
    return image.size


def write_spritesheet(
    frames: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    count: int | None = None,
    tile_side: int = TILE_SIDE,
    columns: int | None = None,
) -> SpritesheetInfo:
    """Save a grid of evenly spaced frames, left to right then top to bottom, for scrubbing.

    `count` defaults to min(frames, 25) and is capped at the number of frames; the first and
    last frames are always included. Tiles have the shape of the video, `size=(width, height)`
    (default: the frames' own), with `tile_side` pixels on their longer side; `columns`
    defaults to a near-square grid.
    """
    label = os.fspath(path)
    fmt, options = _save_format(label)
    total = _frame_count(frames, label)
    count = min(total, 25) if count is None else min(total, _check_positive(count, "count", label))
    _check_positive(tile_side, "tile_side", label)
    columns = math.ceil(math.sqrt(count)) if columns is None else columns
    columns = min(count, _check_positive(columns, "columns", label))
    rows = math.ceil(count / columns)
    indices = _spread(total, count)

    first = _to_image(frames, indices[0], label)
    tile_width, tile_height = fit_size(_check_size(size, label) or first.size, tile_side)
    if max(columns * tile_width, rows * tile_height) > _MAX_SIDE[fmt]:
        raise MediaError(
            f"{label}: a {columns}x{rows} grid of {tile_width}x{tile_height} tiles is too large "
            f"for {fmt}; use fewer frames or smaller tiles",
            param="count",
        )
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    for slot, index in enumerate(indices):
        tile = first if slot == 0 else _to_image(frames, index, label)
        tile = tile.resize((tile_width, tile_height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        row, column = divmod(slot, columns)
        sheet.paste(tile, (column * tile_width, row * tile_height))
    _save(sheet, path, fmt, options, label)
    return SpritesheetInfo(columns, rows, tile_width, tile_height, tuple(indices))


def fit_size(size: tuple[int, int], side: int, *, enlarge: bool = True) -> tuple[int, int]:
    """`size` scaled, keeping its aspect, so that its longer side is `side` (at most `side`,
    and never more than `size` itself, when not `enlarge`)."""
    width, height = size
    scale = side / max(width, height)
    if not enlarge:
        scale = min(scale, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    name: str | None = None,
) -> Image.Image:
    """Decode an uploaded image into an upright RGB `PIL.Image`, or raise `MediaError`.

    `source` is a path or the raw bytes; `name` labels bytes in error messages (say, the request
    field they came from). The format is sniffed from the content. The pixel limit is checked
    from the header, before any pixel is decoded, so a small file that inflates to gigabytes
    (a decompression bomb) costs nothing.
    """
    label, stream = _open_source(source, name)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's process-wide bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=_decoders()) as image:
                pixels = image.width * image.height
                if pixels > max_pixels:
                    raise MediaError(
                        f"{label}: image is {image.width}x{image.height} ({pixels} pixels), over "
                        f"the limit of {max_pixels}"
                    )
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
    except MediaError:
        raise
    except Image.DecompressionBombError as err:
        raise MediaError(f"{label}: image is too large to decode ({err})") from err
    except Image.UnidentifiedImageError as err:
        raise MediaError(f"{label}: not a supported image (PNG, JPEG, WebP, GIF, ...)") from err
    except Exception as err:
        # Decoders for untrusted bytes fail in many ways (OSError, SyntaxError, struct.error,
        # ValueError...); all of them mean the same thing to the person who sent the file.
        raise MediaError(f"{label}: corrupt or truncated image ({err})") from err
    finally:
        stream.close()


def resize_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale `image` to cover `(width, height)` and crop the centre to exactly that size.

    Covering rather than fitting means no black bars: a model conditioned on a first frame would
    otherwise animate the bars too.
    """
    try:
        width, height = size
    except (TypeError, ValueError):
        raise MediaError(f"size must be (width, height), got {size!r}", param="size") from None
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MediaError(f"size must be two positive integers, got {size!r}", param="size")
    if image.size == (width, height):
        return image.copy()
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def _decoders() -> list[str]:
    # AVIF support depends on how Pillow was built; naming a format it lacks is a KeyError.
    Image.init()
    return [fmt for fmt in _UPLOAD_FORMATS if fmt in Image.OPEN]


def _open_source(source: ImageSource, name: str | None) -> tuple[str, BinaryIO]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or f"image data ({len(data)} bytes)"
        if not data:
            raise MediaError(f"{label}: image is empty")
        return label, io.BytesIO(data)
    if not isinstance(source, (str, os.PathLike)):
        raise MediaError(f"image source must be a path or bytes, got {type(source).__name__}")
    label = name or os.fspath(source)
    path = Path(source)
    if not path.is_file():
        raise MediaError(f"{label}: no such file" if not path.exists() else f"{label}: not a file")
    try:
        if path.stat().st_size == 0:
            raise MediaError(f"{label}: file is empty")
        return label, path.open("rb")
    except OSError as err:
        raise MediaError(f"{label}: {err.strerror or err}") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):
        # 16-bit greyscale: keep the high byte. Pillow's own conversion clips at 255, which
        # would turn most of the picture white.
        high = (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return Image.fromarray(high).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _frame_count(frames: np.ndarray | Sequence[np.ndarray], label: str) -> int:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise MediaError(
                f"{label}: frames must be a uint8 array shaped (T, H, W, 3), got shape "
                f"{frames.shape}",
                param="frames",
            )
        count = len(frames)
    elif isinstance(frames, Sequence):
        count = len(frames)
    else:
        raise MediaError(
            f"{label}: frames must be an array or a sequence of arrays, got "
            f"{type(frames).__name__}",
            param="frames",
        )
    if count == 0:
        raise MediaError(f"{label}: no frames", param="frames")
    return count


def _to_image(frames: np.ndarray | Sequence[np.ndarray], index: int, label: str) -> Image.Image:
    frame = frames[index]
    _check_frame(frame, index, None, label)
    return Image.fromarray(np.ascontiguousarray(frame))


def _spread(total: int, count: int) -> list[int]:
    """`count` distinct indices from 0 to total-1, as evenly spaced as integers allow."""
    if count == 1:
        return [total // 2]
    # Integer round-half-up of i * (total-1) / (count-1); exact, and distinct since count <= total.
    span, steps = total - 1, count - 1
    return [(2 * i * span + steps) // (2 * steps) for i in range(count)]


def _check_positive(value: object, name: str, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MediaError(f"{label}: {name} must be a positive integer, got {value!r}", param=name)
    return value


def _check_size(size: object, label: str) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        width, height = cast("Iterable[object]", size)
    except (TypeError, ValueError):
        raise MediaError(
            f"{label}: size must be (width, height), got {size!r}", param="size"
        ) from None
    return _check_positive(width, "size", label), _check_positive(height, "size", label)


def _save_format(label: str) -> tuple[str, dict[str, object]]:
    suffix = Path(label).suffix.lower()
    if suffix not in _SAVE_FORMATS:
        raise MediaError(
            f"{label}: unsupported image type {suffix or '(none)'}; use .webp, .jpg or .png",
            param="path",
        )
    return _SAVE_FORMATS[suffix]


def _save(
    image: Image.Image,
    path: str | os.PathLike[str],
    fmt: str,
    options: dict[str, object],
    label: str,
) -> None:
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=fmt, **options)
    except OSError as err:
        raise MediaError(f"{label}: could not write image ({err})") from err
