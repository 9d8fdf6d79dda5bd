"""Reading and writing video and images: MP4 encoding, probing, decoding, thumbnails, uploads.

Frames are numpy uint8 arrays shaped (T, H, W, 3) in RGB. Every problem with a file a person
supplied or asked for surfaces as `moviola.errors.MediaError` with a one-line reason. PyAV is
imported only when a video is actually read or written.
"""

from moviola.media.encode import PRESETS, write_mp4
from moviola.media.files import atomic_write, atomic_write_bytes, sha256_file
from moviola.media.images import (
    MAX_IMAGE_PIXELS,
    THUMBNAIL_SIDE,
    TILE_SIDE,
    SpritesheetInfo,
    fit_size,
    load_image,
    resize_image,
    write_spritesheet,
    write_thumbnail,
)
from moviola.media.probe import (
    MAX_DECODE_BYTES,
    MAX_DURATION_S,
    MAX_PIXELS,
    PROBE_TIMEOUT_S,
    AudioInfo,
    VideoInfo,
    decode_frames,
    probe,
)
from moviola.media.sound import decode_audio

__all__ = [
    "MAX_DECODE_BYTES",
    "MAX_DURATION_S",
    "MAX_IMAGE_PIXELS",
    "MAX_PIXELS",
    "PRESETS",
    "PROBE_TIMEOUT_S",
    "THUMBNAIL_SIDE",
    "TILE_SIDE",
    "AudioInfo",
    "SpritesheetInfo",
    "VideoInfo",
    "atomic_write",
    "atomic_write_bytes",
    "decode_audio",
    "decode_frames",
    "fit_size",
    "load_image",
    "probe",
    "resize_image",
    "sha256_file",
    "write_mp4",
    "write_spritesheet",
    "write_thumbnail",
]
