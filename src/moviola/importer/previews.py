"""Thumbnails and spritesheets for imported videos that came without them.

The whole clip is never decoded into memory: frames are decoded in order and only the few the
spritesheet shows are kept, scaled down, so a ten-minute upload costs a pass of decoding and a
few hundred kilobytes, not gigabytes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moviola import media
from moviola.errors import MediaError
from moviola.importer.sources import Stream
from moviola.media import formats
from moviola.media.probe import OPEN_OPTIONS

MAX_PREVIEW_BYTES = 32 << 20  # a source's own thumbnail or spritesheet, at most
SPRITE_TILES = 25


def sample_frames(path: Path, info: media.VideoInfo, count: int = SPRITE_TILES) -> np.ndarray:
    """`count` evenly spread frames (first and last included), at most a thumbnail's size."""
    import av

    total = max(1, info.frames)
    count = min(count, total)
    wanted = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(count)})
    width, height = media.fit_size(info.size, media.THUMBNAIL_SIDE, enlarge=False)
    kept: list[np.ndarray] = []
    try:
        with av.open(str(path), container_options=OPEN_OPTIONS) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            targets = iter(wanted)
            target = next(targets, None)
            for index, frame in enumerate(container.decode(stream)):
                if target is None:
                    break
                if index == target:
                    kept.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
                    target = next(targets, None)
    except av.FFmpegError as err:
        if not kept:
            raise MediaError(f"{path}: damaged video data ({err})") from err
    if not kept:
        raise MediaError(f"{path}: no frame could be decoded")
    return np.stack(kept)


def write_previews(video: Path, info: media.VideoInfo, thumbnail: Path, sprite: Path) -> None:
    """Write whichever of `thumbnail` and `sprite` is missing (each atomically)."""
    frames = sample_frames(video, info)
    if not thumbnail.exists():
        media.write_thumbnail(frames, thumbnail, size=info.size)
    if not sprite.exists():
        media.write_spritesheet(frames, sprite, size=info.size)


def preview_image(opener: Callable[[], Stream]) -> tuple[bytes, str]:
    """A source's own preview image, checked: its bytes and media type. Raises MediaError when
    it is too large (in bytes or pixels), not a WebP, JPEG or PNG, or damaged."""
    from PIL import Image

    with opener() as stream:
        data = stream.read(MAX_PREVIEW_BYTES + 1)
    if len(data) > MAX_PREVIEW_BYTES:
        raise MediaError(f"over {MAX_PREVIEW_BYTES >> 20} MiB")
    with warnings.catch_warnings():
        # Pillow warns of what the pixel count below refuses outright.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
    with image:
        if image.width * image.height > media.MAX_IMAGE_PIXELS:
            raise MediaError(f"{image.width}x{image.height}: too many pixels")
        mime = formats.IMAGE_TYPES.get(image.format or "")
        if mime is None:
            raise MediaError(f"not a WebP, JPEG or PNG image ({image.format})")
        image.verify()
    return data, mime
