"""Writing frames to a web-ready MP4.

The output is the one format every browser, phone and editor plays: H.264 in yuv420p, BT.709
tagged, constant frame rate, `moov` first so playback starts before the download ends, and
optionally AAC-LC sound at 48 kHz. Frames are streamed through the encoder one at a time, so a
long render never has to fit in memory twice; the sound under each frame is encoded right after
it, so the two streams stay in step however many frames come.
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

from moviola.audio import MAX_CHANNELS, RATE, Audio, boundary, playable, silence
from moviola.errors import MediaError
from moviola.media.files import atomic_write
from moviola.media.probe import SWS_ACCURATE_RND, SWS_LANCZOS, VideoInfo, probe

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.packet import Packet
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
# The usual AAC-LC rates for web video: clean speech and music, and next to nothing beside a
# 720p H.264 stream.
_AUDIO_BIT_RATES = {1: 96_000, 2: 128_000}


def write_mp4(
    frames: Frames,
    path: str | os.PathLike[str],
    *,
    fps: int | float | Fraction,
    size: tuple[int, int] | None = None,
    crf: int = 18,
    preset: str = "medium",
    metadata: Mapping[str, str] | None = None,
    audio: Audio | None = None,
) -> VideoInfo:
    """Encode RGB frames to an H.264 MP4 at `path`, atomically, and return what was written.

    `size=(width, height)` scales every frame to exactly that size (aspect is not preserved:
    crop or pad beforehand if it matters), so frames may then differ in size (an extension's
    source and its continuation). Without it the frames' own size is used, which must be the
    same for all and even, because yuv420p stores colour at half resolution. Frame i is shown
    at i / fps, so the file has exactly as many frames as were given and lasts frames / fps
    seconds.

    `audio` adds an AAC-LC track at 48 kHz (resampled if need be; mono stays mono, more than two
    channels become stereo) that starts with frame 0 and is made exactly as long as the frames:
    trimmed, or padded with silence.
    """
    target = Path(path)
    label = os.fspath(path)
    rate = _frame_rate(fps)
    _check_quality(crf, preset)
    tags = _tags(metadata)
    sound = _sound(audio, label)
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
                sound=sound,
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
    sound: Audio | None,
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
        track = None if sound is None else _AudioTrack(out, sound)

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
            if track is not None:
                out.mux(track.encode(boundary(index + 1, rate)))
        out.mux(stream.encode(None))
        if track is not None:
            out.mux(track.finish())


class _AudioTrack:
    """The sound of one MP4, fed to the AAC encoder in step with the frames.

    Sample n has timestamp n in a 1/48000 time base, so the sound under frame i begins exactly at
    `boundary(i)`. The encoder's 1024 priming samples come out with negative timestamps, which
    the MP4 muxer hides behind an edit list: players, and FFmpeg's `start_time`, begin the sound
    at 0 with the first sample given.
    """

    def __init__(self, out: OutputContainer, sound: Audio) -> None:
        self.layout = "mono" if sound.channels == 1 else "stereo"
        # FFmpeg's "fast" coder is its choice above 64 kb/s: at these rates it codes as well as
        # the default "twoloop" (a closer waveform, measured) in half the time, which matters
        # when the sound must cost next to nothing beside the picture.
        options = {"aac_coder": "fast"}
        self.stream = out.add_stream("aac", rate=RATE, layout=self.layout, options=options)
        self.stream.bit_rate = _AUDIO_BIT_RATES[sound.channels]
        self.samples = sound.samples
        self.sent = 0

    def encode(self, stop: int) -> list[Packet]:
        """Packets for the sound up to sample `stop`, silence past the end of what was given."""
        from av.audio.frame import AudioFrame

        chunk = self.samples[:, self.sent : stop]
        if chunk.shape[1] < stop - self.sent:
            pad = np.zeros((len(chunk), stop - self.sent - chunk.shape[1]), np.float32)
            chunk = np.concatenate([chunk, pad], axis=1)
        frame = AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout=self.layout
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE, self.sent, Fraction(1, RATE)
        self.sent = stop
        return self.stream.encode(frame)

    def finish(self) -> list[Packet]:
        return self.stream.encode(None)


def _sound(audio: object, label: str) -> Audio | None:
    """What will be encoded: 48 kHz, one or two channels, finite and within [-1, 1]."""
    if audio is None:
        return None
    if not isinstance(audio, Audio):
        raise MediaError(
            f"{label}: audio must be a moviola.audio.Audio, got {type(audio).__name__}",
            param="audio",
        )
    if audio.length == 0:  # nothing to resample (FFmpeg's resampler fails on no samples)
        return silence(0, channels=min(audio.channels, MAX_CHANNELS))
    import av

    try:
        return playable(audio)
    except av.FFmpegError as err:  # e.g. a rate so far from 48 kHz that no filter fits
        raise MediaError(
            f"{label}: audio at {audio.rate} Hz could not be resampled ({err.strerror or err})",
            param="audio",
        ) from err


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
