"""Writing frames to a web-ready MP4.

The output is the one format every browser, phone and editor plays: H.264 in yuv420p, BT.709
tagged, constant frame rate, `moov` first so playback starts before the download ends. Frames are
streamed through the encoder one at a time, so a long render never has to fit in memory twice.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moviola.errors import MediaError
from moviola.media.files import atomic_write
from moviola.media.probe import SWS_ACCURATE_RND, SWS_LANCZOS, VideoInfo, probe

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

Frames = np.ndarray | Iterable[np.ndarray]
"""A uint8 array shaped (T, H, W, 3), or any iterable of (H, W, 3) uint8 arrays, in RGB."""

PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
"""libx264 speed presets, fastest (largest file) to slowest (smallest file)."""

MAX_FPS = 1000
MAX_ENCODER_THREADS = 16

# Keys the MP4 muxer maps to classic iTunes-style atoms, which every player shows. Any other key
# switches the file to QuickTime `mdta` tags instead, because the muxer silently drops unknown
# keys otherwise and losing caller metadata without a word is worse than a less common tag box.
_STANDARD_TAGS = frozenset(
    {
        "title",
        "artist",
        "album_artist",
        "album",
        "composer",
        "date",
        "comment",
        "genre",
        "copyright",
        "grouping",
        "lyrics",
        "description",
        "synopsis",
        "show",
        "episode_id",
        "network",
        "keywords",
    }
)
# AVCOL_SPC_BT709, AVCOL_PRI_BT709 and AVCOL_TRC_BT709 all share this value.
_BT709 = 1


def write_mp4(
    frames: Frames,
    path: str | os.PathLike[str],
    *,
    fps: int | float | Fraction,
    size: tuple[int, int] | None = None,
    crf: int = 18,
    preset: str = "medium",
    metadata: Mapping[str, str] | None = None,
) -> VideoInfo:
    """Encode RGB frames to an H.264 MP4 at `path`, atomically, and return what was written.

    `size=(width, height)` scales every frame to exactly that size (aspect is not preserved:
    crop or pad beforehand if it matters), so frames may then differ in size (an extension's
    source and its continuation). Without it the frames' own size is used, which must be the
    same for all and even, because yuv420p stores colour at half resolution. Frame i is shown
    at i / fps, so the file has exactly as many frames as were given and lasts frames / fps
    seconds.
    """
    target = Path(path)
    label = os.fspath(path)
    rate = _frame_rate(fps)
    _check_quality(crf, preset)
    tags = _tags(metadata)
    first, stream = _peek(frames, label)
    height, width = first.shape[:2]
    out_width, out_height = _output_size(size, width, height, label)

    import av

    try:
        with atomic_write(target) as tmp:
            _encode(
                _checked(stream, first.shape if size is None else None, label),
                tmp,
                rate=rate,
                size=(out_width, out_height),
                crf=crf,
                preset=preset,
                tags=tags,
            )
    except (av.FFmpegError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise MediaError(f"{label}: could not write video ({reason})") from err
    return probe(target)


def _encode(
    frames: Iterator[np.ndarray],
    tmp: Path,
    *,
    rate: Fraction,
    size: tuple[int, int],
    crf: int,
    preset: str,
    tags: dict[str, str],
) -> None:
    import av
    from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

    width, height = size
    movflags = "+faststart"
    if not tags.keys() <= _STANDARD_TAGS:
        movflags += "+use_metadata_tags"
    with av.open(os.fspath(tmp), mode="w", format="mp4", options={"movflags": movflags}) as out:
        out.metadata.update(tags)
        stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # A time base of exactly 1/fps makes frame i's timestamp i: constant frame rate with no
        # rounding drift, even for 30000/1001.
        stream.time_base = 1 / rate
        codec = stream.codec_context
        codec.time_base = 1 / rate
        codec.thread_type = "AUTO"
        codec.thread_count = _encoder_threads()
        # Tag what the conversion below produces, so players do not guess BT.601 and shift hues.
        codec.colorspace = codec.color_primaries = codec.color_trc = _BT709
        codec.color_range = ColorRange.MPEG

        # One scaler for the whole clip; reformat() on each frame would build a context per frame.
        reformatter = VideoReformatter()
        interpolation = SWS_LANCZOS | SWS_ACCURATE_RND
        for index, array in enumerate(frames):
            frame = reformatter.reformat(
                _as_video_frame(array),
                width,
                height,
                "yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
                interpolation=interpolation,
            )
            frame.pts = index
            frame.time_base = codec.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _encoder_threads() -> int:
    """One x264 thread per CPU this process may run on, capped where more stops helping.

    An explicit count, because with 0 ("auto") the libx264 in PyAV's wheels was measured
    encoding on a single core.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_ENCODER_THREADS))


def _as_video_frame(array: np.ndarray) -> VideoFrame:
    from av.video.frame import VideoFrame

    # Wrapping the array's memory avoids one full-frame copy; it needs packed pixels in each row,
    # which every C-ordered frame has. Other layouts (e.g. a flipped view) are packed first.
    if array.strides[1:] != (3, 1):
        array = np.ascontiguousarray(array)
    return VideoFrame.from_numpy_buffer(array, format="rgb24")


def _peek(frames: Frames, label: str) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """Return the first frame (to size the stream) and an iterator over all of them.

    Validation happens before the output file is created, so an empty or malformed input
    leaves the filesystem untouched.
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise _frame_error(label, "frames", frames, "a uint8 array shaped (T, H, W, 3)")
        if len(frames) == 0:
            raise MediaError(f"{label}: no frames to encode", param="frames")
        _check_frame(frames[0], 0, None, label)
        return frames[0], iter(frames)
    try:
        iterator = iter(frames)
    except TypeError:
        raise _frame_error(label, "frames", frames, "an array or an iterable of arrays") from None
    first = next(iterator, None)
    if first is None:
        raise MediaError(f"{label}: no frames to encode", param="frames")
    _check_frame(first, 0, None, label)
    return first, itertools.chain([first], iterator)


def _checked(
    frames: Iterator[np.ndarray], shape: tuple[int, ...] | None, label: str
) -> Iterator[np.ndarray]:
    for index, frame in enumerate(frames):
        _check_frame(frame, index, shape, label)
        yield frame


def _check_frame(frame: object, index: int, shape: tuple[int, ...] | None, label: str) -> None:
    """Refuse anything but packed-RGB uint8 of one size; floats are refused, not guessed at."""
    if (
        not isinstance(frame, np.ndarray)
        or frame.dtype != np.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
    ):
        raise _frame_error(label, f"frame {index}", frame, "a uint8 RGB array shaped (H, W, 3)")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise MediaError(f"{label}: frame {index} is empty ({frame.shape})", param="frames")
    if shape is not None and frame.shape != shape:
        raise MediaError(
            f"{label}: frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
            f"{shape[1]}x{shape[0]}; all frames must share one size",
            param="frames",
        )


def _frame_error(label: str, what: str, value: object, expected: str) -> MediaError:
    if isinstance(value, np.ndarray):
        got = f"{value.dtype} array shaped {value.shape}"
    else:
        got = type(value).__name__
    return MediaError(f"{label}: {what} must be {expected}, got {got}", param="frames")


def _output_size(
    size: tuple[int, int] | None, width: int, height: int, label: str
) -> tuple[int, int]:
    if size is None:
        if width % 2 or height % 2:
            raise MediaError(
                f"{label}: frames are {width}x{height}, but H.264 yuv420p needs an even width and "
                "height; pass size= to scale them",
                param="size",
            )
        return width, height
    try:
        out_width, out_height = size
    except (TypeError, ValueError):
        raise MediaError(
            f"{label}: size must be (width, height), got {size!r}", param="size"
        ) from None
    for value in (out_width, out_height):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2 or value % 2:
            raise MediaError(
                f"{label}: size must be two even positive integers, got {size!r}", param="size"
            )
    return out_width, out_height


def _frame_rate(fps: object) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        raise MediaError(f"fps must be a number, got {type(fps).__name__}", param="fps")
    if isinstance(fps, float):
        if not math.isfinite(fps):
            raise MediaError(f"fps must be finite, got {fps}", param="fps")
        # 29.97 means 2997/100, not the binary float's 33-digit fraction, which no container
        # time base can carry.
        rate = Fraction(fps).limit_denominator(1001)
    else:
        rate = Fraction(fps)
    if not 0 < rate <= MAX_FPS:
        raise MediaError(f"fps must be above 0 and at most {MAX_FPS}, got {fps}", param="fps")
    return rate


def _check_quality(crf: object, preset: object) -> None:
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise MediaError(f"crf must be an integer from 0 to 51, got {crf!r}", param="crf")
    if preset not in PRESETS:
        raise MediaError(
            f"preset must be one of {', '.join(PRESETS)}; got {preset!r}", param="preset"
        )


def _tags(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    tags = dict(metadata)
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise MediaError(
                f"metadata must map non-empty strings to strings, got {key!r}: {value!r}",
                param="metadata",
            )
    return tags
