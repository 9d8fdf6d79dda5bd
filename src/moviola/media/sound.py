"""Reading a video's sound (`decode_audio`), through the same hardened path as its pixels.

The file is probed first, so everything `probe` refuses is refused here too, damaged audio
included, and the decode that follows is bounded by `max_duration_s` of sound at 48 kHz and by
the deadline. The result is placed on the picture's clock: sample 0 sounds with frame 0.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from moviola.audio import RATE, Audio, playable
from moviola.media.probe import (
    _DEADLINE_EVERY,
    MAX_DURATION_S,
    PROBE_TIMEOUT_S,
    AudioInfo,
    VideoSource,
    _fail,
    _label,
    _open,
    _reason,
    _rewind,
    probe,
    stream_start,
)

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.container import InputContainer


def decode_audio(
    source: VideoSource,
    *,
    max_duration_s: float = MAX_DURATION_S,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> Audio | None:
    """A video's sound as `moviola.audio` keeps it (48 kHz float32, mono or stereo), or None
    when the file has no audio stream.

    The sound is aligned with the first frame: silence is added in front of audio that starts
    after the picture, and what plays before the picture is dropped. Its end is where the
    stream's packets say the sound ends, not where the decoder's last whole frame does.
    """
    label = _label(source)
    info = probe(source, timeout_s=timeout_s)
    sound = info.audio
    if sound is None:
        return None
    if sound.duration > max_duration_s:
        raise _fail(
            label, f"audio is {sound.duration:.1f} s long, over the limit of {max_duration_s:g} s"
        )
    _rewind(source)
    deadline = time.monotonic() + timeout_s
    with _open(source, label, timeout_s) as container:
        samples, first = _decode(container, label, limit_s=max_duration_s, deadline=deadline)
        origin = stream_start(container.streams.video[0])
    start = sound.start if first is None else first
    return playable(Audio(_on_picture_clock(samples, start, origin, sound), RATE))


def _decode(
    container: InputContainer, label: str, *, limit_s: float, deadline: float
) -> tuple[np.ndarray, float | None]:
    """All the sound in the first audio stream, at `RATE`, and the time of its first frame."""
    stream = container.streams.audio[0]
    sound = _Collector(stream.codec_context.channels, limit_s, label)
    first: float | None = None
    packets = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        packets += 1
        if packets % _DEADLINE_EVERY == 0 and time.monotonic() > deadline:
            raise _fail(label, f"gave up decoding audio after {packets} packets (time limit)")
        for frame in _decoded(stream, packet, label):
            first = frame.time if first is None else first
            sound.add(frame)
    for frame in _decoded(stream, None, label):  # frames the decoder still holds
        sound.add(frame)
    return sound.finish(), first


def _decoded(stream: Any, packet: Any, label: str) -> list[AudioFrame]:
    import av

    try:
        return list(stream.codec_context.decode(packet))
    except av.FFmpegError as err:
        raise _fail(label, f"damaged audio ({_reason(err)})") from err


class _Collector:
    """Decoded frames to planar float32 at `RATE`, mono or stereo, through FFmpeg's resampler.

    Converting frame by frame keeps one copy of the sound in memory instead of two, and
    FFmpeg's downmix knows which channel is which (centre, LFE, surrounds) in a 5.1 source. A
    stream may change format midway; each run of frames in one format gets its own resampler.
    """

    def __init__(self, channels: int, limit_s: float, label: str) -> None:
        self.layout = "mono" if channels == 1 else "stereo"
        self.limit_s, self.label = limit_s, label
        # A second of slack for decoders that end on a whole frame. The probe has checked the
        # length the packets state; this stops a stream that decodes to far more than that
        # before it fills memory.
        self.budget = round(limit_s * RATE) + RATE
        self.pieces: list[np.ndarray] = []
        self.length = 0
        self.resampler: Any = None
        self.source: tuple[str, str, int] | None = None

    def add(self, frame: AudioFrame) -> None:
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        if source != self.source:
            self._flush()
            import av

            self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=RATE)
            self.source = source
        self._run(frame)

    def finish(self) -> np.ndarray:
        self._flush()
        if not self.pieces:
            raise _fail(self.label, "damaged audio (no sound could be decoded)")
        return np.concatenate(self.pieces, axis=1)

    def _flush(self) -> None:
        if self.resampler is not None:
            self._run(None)
        self.resampler = self.source = None

    def _run(self, frame: AudioFrame | None) -> None:
        import av

        try:
            converted = [out.to_ndarray() for out in self.resampler.resample(frame)]
        except (av.FFmpegError, ValueError) as err:
            raise _fail(self.label, f"audio could not be converted ({_reason(err)})") from err
        self.pieces += converted
        self.length += sum(piece.shape[1] for piece in converted)
        if self.length > self.budget:
            raise _fail(
                self.label,
                f"audio decodes to more sound than its packets state, past the limit of "
                f"{self.limit_s:g} s",
            )


def _on_picture_clock(
    samples: np.ndarray, start: float, origin: float, sound: AudioInfo
) -> np.ndarray:
    """`samples` (which begin at `start` s) shifted so that sample 0 is at `origin`, the first
    frame, and cut where the stream's packets end."""
    lead = round((start - origin) * RATE)
    if lead > 0:
        samples = np.concatenate([np.zeros((len(samples), lead), np.float32), samples], axis=1)
    elif lead < 0:
        samples = samples[:, -lead:]
    end = round((sound.start + sound.duration - origin) * RATE)
    return samples[:, : max(0, end)]
