"""Reading videos: what a file holds (`probe`) and its pixels (`decode_frames`).

Inputs here are often uploads, so every path through this module assumes the file may be empty,
truncated, mislabelled or hostile, and answers with a one-line `MediaError` instead of an FFmpeg
exception. Only regular files are opened (a FIFO or device would block) and only through a fixed
list of container formats (a playlist could make FFmpeg read other files). Work is bounded:
packet counting runs against a deadline, and decoding stops with a refusal as soon as the frames
decoded so far would pass the memory budget.

Truncation policy: a file whose header promises more frames than its data holds (the usual shape
of an interrupted upload of a fast-start MP4) is rejected by `probe`, and so by `decode_frames`;
a shorter video than the user sent would be a silent wrong answer. When the container is whole
but the decoder drops damaged frames, `decode_frames` returns the frames it could decode and
fails only if there are none.

Audio policy: `probe` decodes every packet of the first audio stream (cheap: under 0.1 s for a
minute of stereo AAC) and refuses the file if any of them does not decode. Dropping a damaged
audio packet would not leave a visible glitch but shift all later sound off the picture, so a
file with damaged audio is refused whole, like a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from moviola.errors import MediaError

if TYPE_CHECKING:
    from av.container import InputContainer

MAX_PIXELS = 4096 * 4096
"""Largest frame `decode_frames` accepts by default, in pixels (width × height)."""

MAX_DURATION_S = 600.0
"""Longest video `decode_frames` accepts by default, in seconds."""

MAX_DECODE_BYTES = 2 * 1024**3
"""Largest decoded array `decode_frames` builds by default (T × H × W × 3 bytes): about 32 s of
1280x720 at 24 fps, room for an extension of an extension. A few kilobytes of flat frames can
decode to gigabytes, so this bounds what one source may cost a worker, however small its file;
operators set it with `max_decode_bytes`."""

PROBE_TIMEOUT_S = 30.0
"""How long opening and scanning one file may take before it is given up as unreadable."""


class BinaryFile(Protocol):
    """A readable, seekable file of bytes: an open file, a `BytesIO`, an archive's entry."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int: ...


VideoSource = str | os.PathLike[str] | BinaryFile

# The only demuxers FFmpeg may pick. Some others read further files named inside the upload
# (concat, HLS playlists), which would let a "video" pull in any file the server can read.
# Still-image demuxers are allowed in only so `probe` can say "that is an image" precisely.
_DEMUXERS = (
    "mov",  # mov, mp4, m4a, 3gp
    "matroska",
    "webm",
    "avi",
    "mpegts",
    "mpeg",
    "flv",
    "ogg",
    "asf",
    "gif",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "bmp_pipe",
    "tiff_pipe",
)
# What any reader of a video passes to `av.open`: the demuxers above, local files only.
OPEN_OPTIONS = {"format_whitelist": ",".join(_DEMUXERS), "protocol_whitelist": "file"}
# swscale's flags for conversions to and from RGB, by value: PyAV names the last two only from
# version 18, which needs Python 3.11.
SWS_LANCZOS = 0x200
SWS_FULL_CHR_H_INT = 0x2000
SWS_ACCURATE_RND = 0x40000
# Read the clock only every so many packets: a syscall per packet would dominate the scan.
_DEADLINE_EVERY = 256


@dataclass(frozen=True)
class AudioInfo:
    """A video's sound: its first audio stream, as read from the container and a decode of every
    packet. Times are in seconds on the file's clock."""

    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    duration: float
    start: float
    """When the sound begins. 0 for what `write_mp4` writes: the MP4's edit list hides the AAC
    encoder's priming samples, so players start the sound with the first frame."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as read from its container and a scan of its packets."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    codec: str
    pix_fmt: str | None
    size_bytes: int
    audio: AudioInfo | None = None
    """None when the file has no audio stream, or one without a single packet."""

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)`, the order the Videos API and `write_mp4` use."""
        return (self.width, self.height)

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def probe(source: VideoSource, *, timeout_s: float = PROBE_TIMEOUT_S) -> VideoInfo:
    """Describe a video file, or raise `MediaError` saying why it is not a usable video.

    The frame count is the number of video packets actually present (demuxed, not decoded), so it
    is right for containers that do not state it and it exposes truncated files that do. Audio
    packets are decoded, within the same deadline, so damaged sound is refused here.
    """
    label = _label(source)
    size_bytes = _check_source(source, label)
    deadline = time.monotonic() + timeout_s
    with _open(source, label, timeout_s) as container:
        return _inspect(container, label, size_bytes, deadline)


def decode_frames(
    source: VideoSource,
    *,
    max_frames: int | None = None,
    max_pixels: int = MAX_PIXELS,
    max_duration_s: float = MAX_DURATION_S,
    max_bytes: int = MAX_DECODE_BYTES,
    size: tuple[int, int] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> tuple[np.ndarray, VideoInfo]:
    """Decode a video to RGB frames shaped (T, H, W, 3), uint8, with its `VideoInfo`.

    The pixel and duration limits are checked against the probe before any decoding. The size
    of the result is bounded by the frames actually decoded: a clip whose counted frames would
    pass `max_bytes` is refused before decoding, and one that decodes to more frames than were
    counted is refused as soon as the next frame would pass it, before it is allocated.
    `max_frames` keeps the first N frames; `size=(width, height)` scales each frame while
    converting it. T can be below `info.frames` when `max_frames` stops early or the decoder
    drops damaged frames, and above it for a stream that decodes to more frames than it has
    packets.
    """
    label = _label(source)
    if max_frames is not None:
        _positive(max_frames, "max_frames")
    if size is not None:
        size = _size(size)
    info = probe(source, timeout_s=timeout_s)
    _check_limits(info, label, max_pixels=max_pixels, max_duration_s=max_duration_s)
    width, height = size or info.size
    fits = max_bytes // (width * height * 3)
    counted = info.frames if max_frames is None else min(info.frames, max_frames)
    if counted > fits:  # spares decoding a clip that would be refused halfway through
        raise _too_large(label, counted, width, height, max_bytes)
    _rewind(source)
    with _open(source, label, timeout_s) as container:
        out = np.empty((counted, height, width, 3), np.uint8)
        frames = _decode_into(container, out, fits=fits, stop=max_frames)
    if frames is None:
        raise _too_large(label, fits + 1, width, height, max_bytes)
    if len(frames) == 0:
        raise _fail(label, "no frame could be decoded")
    return frames, info


def _inspect(container: InputContainer, label: str, size_bytes: int, deadline: float) -> VideoInfo:
    if not container.streams.video:
        what = "audio only" if container.streams.audio else "not a video"
        raise _fail(label, f"{what} (no video stream)")
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec is None:  # a file cut off inside its stream's description
        raise _fail(label, "video stream cannot be decoded (no codec context)")
    if container.format.name.endswith("_pipe"):
        raise _fail(label, f"is a still image ({codec.name}), not a video")
    if not codec.width or not codec.height:
        raise _fail(label, "video stream has no picture size")

    stated = stream.frames
    audio = container.streams.audio[0] if container.streams.audio else None
    frames, sound = _scan(container, stream, audio, label, deadline)
    if frames == 0:
        raise _fail(label, "video stream holds no frames")
    if stated and frames < stated:
        raise _fail(label, f"truncated: header lists {stated} frames but only {frames} are present")

    duration = _duration(container, stream, frames)
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps and duration > 0:
        fps = Fraction(frames / duration).limit_denominator(1001)
    return VideoInfo(
        width=codec.width,
        height=codec.height,
        fps=Fraction(fps or 0),
        frames=frames,
        duration=duration,
        codec=codec.name,
        pix_fmt=codec.pix_fmt,
        size_bytes=size_bytes,
        audio=sound,
    )


def _scan(
    container: InputContainer, video: Any, audio: Any, label: str, deadline: float
) -> tuple[int, AudioInfo | None]:
    """Count the video packets and decode the audio ones, in one pass over the file."""
    sound = None if audio is None else _SoundCheck(audio, label)
    streams = (video,) if audio is None else (video, audio)
    frames = packets = 0
    for packet in container.demux(streams):
        if packet.size == 0:  # the flush packet demux yields at end of stream
            continue
        packets += 1
        if packets % _DEADLINE_EVERY == 0 and time.monotonic() > deadline:
            raise _fail(label, f"gave up after reading {frames} frames (time limit)")
        if packet.stream_index == video.index:
            frames += 1
        elif sound is not None:
            sound.add(packet)
    return frames, None if sound is None else sound.finish()


class _SoundCheck:
    """Decodes one audio stream packet by packet, keeping only what `AudioInfo` needs."""

    def __init__(self, stream: Any, label: str) -> None:
        self.stream, self.label = stream, label
        self.packets = self.samples = 0
        self.end: int | None = None  # the latest packet end, in the stream's time base

    def add(self, packet: Any) -> None:
        self.packets += 1
        if packet.pts is not None and packet.duration:
            end = packet.pts + packet.duration
            self.end = end if self.end is None else max(self.end, end)
        self._decode(packet)

    def finish(self) -> AudioInfo | None:
        if self.packets == 0:  # a track with nothing in it: no sound to keep
            return None
        self._decode(None)  # frames the decoder still holds
        codec = self.stream.codec_context
        if self.samples == 0 or not codec.sample_rate or not codec.channels:
            raise _fail(self.label, "damaged audio (no sound could be decoded)")
        return AudioInfo(
            codec=codec.name,
            profile=codec.profile,
            sample_rate=codec.sample_rate,
            channels=codec.channels,
            duration=self._duration(),
            start=stream_start(self.stream),
        )

    def _decode(self, packet: Any) -> None:
        import av

        codec = self.stream.codec_context
        if codec is None:  # PyAV has no decoder for it
            raise _fail(self.label, "audio in a format that cannot be decoded")
        try:
            frames = codec.decode(packet)
        except av.FFmpegError as err:
            where = "at its end" if packet is None else self._where(packet)
            raise _fail(self.label, f"damaged audio ({where}: {_reason(err)})") from err
        self.samples += sum(frame.samples for frame in frames)

    def _where(self, packet: Any) -> str:
        if packet.pts is None or not self.stream.time_base:
            return f"packet {self.packets}"
        return f"packet {self.packets}, at {float(packet.pts * self.stream.time_base):.2f} s"

    def _duration(self) -> float:
        # Packet times are exact where the decoded count is not: the last AAC frame is decoded
        # whole, priming or padding included, while its packet says how much of it is sound.
        time_base = self.stream.time_base
        if self.end is None or not time_base:
            return self.samples / self.stream.codec_context.sample_rate
        return max(0.0, float(self.end * time_base) - stream_start(self.stream))


def stream_start(stream: Any) -> float:
    """When a stream begins, in seconds; 0 where the container does not say."""
    if stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _duration(container: InputContainer, stream: Any, frames: int) -> float:
    # The stream's own duration is exact (frames / fps for a constant-rate file); the container's
    # is rounded to microseconds and may cover other streams.
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    rate = stream.average_rate or stream.guessed_rate
    return float(frames / rate) if rate else 0.0


def _decode_into(
    container: InputContainer, out: np.ndarray, *, fits: int, stop: int | None
) -> np.ndarray | None:
    """Fill `out` in place, one preallocated array rather than a list of frames plus a stacked
    copy, up to `stop` frames. Packets are counted, not decoded, so a stream can hold more frames
    than `out` has room for: it then grows, up to `fits` frames; None when there are more."""
    from av.video.reformatter import VideoReformatter

    height, width = out.shape[1:3]
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    reformatter = VideoReformatter()  # one scaler context for the whole clip, not one per frame
    # swscale's fast YUV->RGB path darkens by 1-3 levels; the accurate one stays within 1. Decoded
    # frames often feed the next render (extend, remix), where a bias would compound.
    interpolation = SWS_LANCZOS | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT
    index = 0
    for frame in container.decode(stream):
        if index == len(out):
            if index == fits:
                return None
            grown = min(2 * index, fits, stop or fits)
            out.resize((grown, height, width, 3), refcheck=False)  # in place: no second copy
        # A fixed output size also keeps the array rectangular if the stream changes resolution.
        rgb = reformatter.reformat(frame, width, height, "rgb24", interpolation=interpolation)
        out[index] = rgb.to_ndarray()
        index += 1
        if index == stop:
            break
    return out[:index]


def _check_limits(info: VideoInfo, label: str, *, max_pixels: int, max_duration_s: float) -> None:
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise _fail(
            label, f"{info.width}x{info.height} is {pixels} pixels, over the limit of {max_pixels}"
        )
    if info.duration > max_duration_s:
        raise _fail(label, f"{info.duration:.1f} s long, over the limit of {max_duration_s:g} s")


def _size(size: object) -> tuple[int, int]:
    try:
        width, height = cast("Iterable[object]", size)
    except (TypeError, ValueError):
        raise MediaError(f"size must be (width, height), got {size!r}", param="size") from None
    return _positive(width, "size"), _positive(height, "size")


def _too_large(label: str, frames: int, width: int, height: int, max_bytes: int) -> MediaError:
    needed = frames * width * height * 3
    return _fail(
        label,
        f"decoding {frames} frames at {width}x{height} needs {_human(needed)}, over the "
        f"{_human(max_bytes)} limit on decoded frames; pass max_frames or a smaller size",
    )


def _human(count: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MediaError(f"{name} must be a positive integer, got {value!r}", param=name)
    return value


@contextlib.contextmanager
def _open(source: VideoSource, label: str, timeout_s: float) -> Iterator[InputContainer]:
    """Open for reading; any FFmpeg failure, at open or while the body reads, becomes MediaError."""
    import av

    target = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source
    try:
        container = av.open(target, mode="r", timeout=timeout_s, container_options=OPEN_OPTIONS)
    except av.FFmpegError as err:
        # EINVAL at open is FFmpeg refusing a demuxer outside the allowed list.
        why = "not a supported video format" if err.errno == errno.EINVAL else _reason(err)
        raise _fail(label, f"not a readable video ({why})") from err
    try:
        with container:
            yield container
    except av.FFmpegError as err:
        raise _fail(label, f"damaged video data ({_reason(err)})") from err


def _check_source(source: VideoSource, label: str) -> int:
    """Return the size in bytes, refusing what cannot be a video before FFmpeg sees it."""
    if not isinstance(source, (str, os.PathLike)):
        return _stream_size(source, label)
    try:
        info = Path(source).stat()
    except FileNotFoundError:
        raise _fail(label, "no such file") from None
    except OSError as err:
        raise _fail(label, err.strerror or str(err)) from None
    if not stat.S_ISREG(info.st_mode):
        raise _fail(label, "not a regular file")
    if info.st_size == 0:
        raise _fail(label, "file is empty")
    return info.st_size


def _stream_size(stream: BinaryFile, label: str) -> int:
    try:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
    except (AttributeError, OSError, ValueError) as err:
        raise _fail(label, f"not a seekable binary file ({err})") from None
    if size == 0:
        raise _fail(label, "file is empty")
    return size


def _rewind(source: VideoSource) -> None:
    if not isinstance(source, (str, os.PathLike)):
        source.seek(0)


def _label(source: VideoSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<video stream>"


def _reason(err: Exception) -> str:
    # FFmpeg errors stringify as "[Errno N] reason: 'path'"; the reason alone reads better.
    return getattr(err, "strerror", None) or str(err)


def _fail(label: str, reason: str) -> MediaError:
    return MediaError(f"{label}: {reason}")
