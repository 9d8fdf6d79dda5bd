"""Sound as Moviola keeps it: PCM samples and the arithmetic that lines them up with frames.

    tone = Audio(np.sin(np.linspace(0, 440 * 2 * np.pi, 48_000))[None].astype(np.float32), 48_000)
    fit(tone, frames=24, fps=24).duration  # 1.0: exactly as long as 24 frames at 24 fps
    span(tone, 6, 12, fps=24)  # the sound under frames 6-11, cut at the frames' own samples

Every sound a model makes, a source carries or a soundtrack adds is turned into `RATE` (48 kHz)
as soon as it exists, because that is what AAC in MP4 plays everywhere and because 48,000 is a
multiple of every common frame rate (8, 16, 24, 25, 30, 48, 60): frame k then starts exactly at
sample k × 48000 / fps, and joins land on a sample, not between two. The engine and the media
layer both use this module; PyAV (for resampling) is imported only when a sound is resampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

RATE = 48_000
"""The sample rate of every sound Moviola stores, mixes and encodes."""

MAX_RATE = 384_000
"""The highest sample rate accepted (what any audio interface records at most)."""

MAX_CHANNELS = 2
"""Stereo at most: what every player plays; more channels are mixed down to two."""

CROSSFADE_S = 0.010
"""How long a join between two sounds blends: short enough to keep the beat, long enough that no
click is heard (a jump between two unrelated samples is a click)."""


@dataclass(frozen=True, eq=False)
class Audio:
    """PCM sound: `samples` is float32 shaped (channels, n), nominally in [-1, 1]."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        samples = self.samples
        if not isinstance(samples, np.ndarray) or samples.ndim != 2:
            raise ValueError("audio samples must be an array shaped (channels, n)")
        if not 1 <= samples.shape[0] <= 8:
            raise ValueError(f"audio must have 1 to 8 channels, not {samples.shape[0]}")
        if samples.dtype != np.float32:
            object.__setattr__(self, "samples", samples.astype(np.float32))
        if (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, int)
            or not 0 < self.rate <= MAX_RATE
        ):
            raise ValueError(
                f"audio rate must be an integer of 1 to {MAX_RATE} Hz, not {self.rate!r}"
            )

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def length(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.length / self.rate

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"Audio({self.channels} ch, {self.length} samples at {self.rate} Hz)"


def silence(length: int, *, channels: int = 1, rate: int = RATE) -> Audio:
    return Audio(np.zeros((channels, max(0, length)), np.float32), rate)


def boundary(frame: int, fps: float | Fraction, rate: int = RATE) -> int:
    """The sample at which frame `frame` begins: round(frame × rate / fps), computed exactly so
    that the pieces of a sound cut at frame boundaries add up to the sound cut at the ends."""
    return round(Fraction(frame) * rate / _fraction(fps))


def fit(audio: Audio, frames: int, fps: float | Fraction) -> Audio:
    """`audio` made exactly as long as `frames` frames at `fps`: trimmed, or padded with
    silence (a model's sound often comes out a few milliseconds off the picture's length)."""
    target = boundary(frames, fps, audio.rate)
    if audio.length == target:
        return audio
    if audio.length > target:
        return Audio(audio.samples[:, :target], audio.rate)
    pad = np.zeros((audio.channels, target - audio.length), np.float32)
    return Audio(np.concatenate([audio.samples, pad], axis=1), audio.rate)


def span(audio: Audio, start: int, stop: int, fps: float | Fraction) -> Audio:
    """The sound under frames [start, stop), cut at those frames' own samples (silence past
    the end of `audio`)."""
    first, last = boundary(start, fps, audio.rate), boundary(stop, fps, audio.rate)
    piece = audio.samples[:, first:last]
    if piece.shape[1] < last - first:
        pad = np.zeros((audio.channels, last - first - piece.shape[1]), np.float32)
        piece = np.concatenate([piece, pad], axis=1)
    return Audio(piece, audio.rate)


def with_channels(audio: Audio, channels: int) -> Audio:
    """Mono to `channels` by copying, more channels to fewer by averaging."""
    if audio.channels == channels:
        return audio
    if audio.channels == 1:
        return Audio(np.repeat(audio.samples, channels, axis=0), audio.rate)
    if channels == 1:
        return Audio(audio.samples.mean(axis=0, keepdims=True), audio.rate)
    if channels == 2:
        s = audio.samples
        if audio.channels in (6, 8):
            # 5.1 / 7.1 in FFmpeg's order (FL FR FC LFE BL BR [SL SR]): the ITU-R BS.775
            # downmix, centre and surrounds at -3 dB to both sides, the LFE left out.
            side = math.sqrt(0.5)
            left = s[0] + side * (s[2] + s[4:].reshape(-1, 2, s.shape[1])[:, 0].sum(axis=0))
            right = s[1] + side * (s[2] + s[4:].reshape(-1, 2, s.shape[1])[:, 1].sum(axis=0))
            peak = 1 + side * (1 + (audio.channels - 4) // 2)
            return Audio(np.stack([left, right]) / peak, audio.rate)
        # Other layouts: first channel left, second right, the rest to both.
        rest = s[2:].mean(axis=0) if audio.channels > 2 else 0.0
        return Audio(np.stack([s[0], s[1]]) * 0.5 + rest * 0.5, audio.rate)
    raise ValueError(f"cannot turn {audio.channels} channels into {channels}")


def playable(audio: Audio) -> Audio:
    """At `RATE`, with at most `MAX_CHANNELS` channels, and finite: what is stored and mixed."""
    if audio.channels > MAX_CHANNELS:
        audio = with_channels(audio, MAX_CHANNELS)
    if audio.rate != RATE:
        audio = resample(audio, RATE)
    samples = audio.samples
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return Audio(np.clip(samples, -1.0, 1.0), audio.rate)


def resample(audio: Audio, rate: int = RATE) -> Audio:
    """`audio` at `rate` through FFmpeg's resampler (PyAV), the length scaled exactly."""
    if audio.rate == rate:
        return audio
    if audio.length == 0:
        return Audio(np.zeros((audio.channels, 0), np.float32), rate)
    import av

    layout = "mono" if audio.channels == 1 else "stereo" if audio.channels == 2 else None
    if layout is None:
        audio = with_channels(audio, MAX_CHANNELS)
        layout = "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(audio.samples), format="fltp", layout=layout
    )
    frame.sample_rate = audio.rate
    frame.pts = 0
    pieces = [out.to_ndarray() for out in resampler.resample(frame)]
    pieces += [out.to_ndarray() for out in resampler.resample(None)]
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((audio.channels, 0))
    target = round(Fraction(audio.length) * rate / audio.rate)
    resampled = Audio(samples.astype(np.float32), rate)
    # The resampler's filter delay can leave it a few samples short or long.
    if resampled.length != target:
        resampled = Audio(_pad_or_trim(resampled.samples, target), rate)
    return resampled


def concat(pieces: Sequence[Audio]) -> Audio:
    """`pieces` end to end, as they are (for pieces that already blend where they meet)."""
    if not pieces:
        raise ValueError("nothing to concatenate")
    rate, channels = pieces[0].rate, max(p.channels for p in pieces)
    if any(p.rate != rate for p in pieces):
        raise ValueError("pieces to concatenate must share one rate")
    return Audio(np.concatenate([with_channels(p, channels).samples for p in pieces], axis=1), rate)


def join(
    pieces: Sequence[Audio],
    *,
    leads: Sequence[Audio | None] | None = None,
    crossfade_s: float = CROSSFADE_S,
) -> Audio:
    """One sound from `pieces` in order, as long as all of them together.

    Each join blends over `crossfade_s` so that no click is heard. Where a piece has a lead
    (`leads[i]`: the sound the piece's own model made just before it, under a conditioning frame
    that was dropped), the tail of the piece before is crossfaded into the tail of that lead:
    the sound is continuous and the next piece still starts on its own first sample. Without a
    lead (a hard cut) the piece before fades out and the next fades in, each over half the time.
    """
    if not pieces:
        raise ValueError("nothing to join")
    rate = pieces[0].rate
    channels = max(p.channels for p in pieces)
    if any(p.rate != rate for p in pieces):
        raise ValueError("pieces to join must share one rate")
    arrays = [with_channels(p, channels).samples.copy() for p in pieces]
    leads = list(leads) if leads is not None else [None] * len(pieces)
    width = max(2, round(crossfade_s * rate))
    for index in range(1, len(arrays)):
        before, after = arrays[index - 1], arrays[index]
        lead = leads[index]
        if lead is not None and lead.length > 0 and before.shape[1] > 0:
            n = min(width, lead.length, before.shape[1])
            tail = with_channels(lead, channels).samples[:, -n:]
            fade_in = _ramp(n)
            before[:, -n:] = before[:, -n:] * _equal_power(1 - fade_in) + tail * _equal_power(
                fade_in
            )
        else:
            half = width // 2
            n_before, n_after = min(half, before.shape[1]), min(half, after.shape[1])
            if n_before:
                before[:, -n_before:] *= _ramp(n_before)[::-1]
            if n_after:
                after[:, :n_after] *= _ramp(n_after)
    return Audio(np.concatenate(arrays, axis=1), rate)


def rms(audio: Audio) -> float:
    """Root mean square over every sample: 0 for silence, about 0.707 for a full-scale sine."""
    if audio.length == 0:
        return 0.0
    return float(math.sqrt(float(np.mean(np.square(audio.samples, dtype=np.float64)))))


def _ramp(n: int) -> np.ndarray:
    """0 → 1 over n samples, raised-cosine shaped (no corner at either end)."""
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n, dtype=np.float32))).astype(np.float32)


def _equal_power(weight: np.ndarray) -> np.ndarray:
    # Unrelated sounds add in power, not amplitude: sin/cos weights keep the loudness level.
    return np.sin(weight * (math.pi / 2)).astype(np.float32)


def _pad_or_trim(samples: np.ndarray, length: int) -> np.ndarray:
    if samples.shape[1] >= length:
        return samples[:, :length]
    pad = np.zeros((samples.shape[0], length - samples.shape[1]), samples.dtype)
    return np.concatenate([samples, pad], axis=1)


def _fraction(fps: float | Fraction) -> Fraction:
    if isinstance(fps, Fraction):
        return fps
    if isinstance(fps, int):
        return Fraction(fps)
    return Fraction(fps).limit_denominator(1001)
