"""The nudity check of frames: on the frames of uploaded inputs and of every finished video.

NudeNet's detector, whose model ships inside the `nudenet` package, on a few frames sampled
evenly; a frame whose best score for an exposed-nudity class reaches the threshold flags the
video. Off unless configured; the detector loads once per process that renders.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moviola.config import Settings
from moviola.errors import InvalidRequestError

BLOCKED = "moderation_blocked"
# NudeNet's classes that count as nudity; the rest (faces, feet, covered parts) never flag.
NSFW_LABELS = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
# The raw model outputs are read (see FrameCheck.score), which relies on NudeNet 3.4's detector
# (`onnx_session`, `input_name`) and its class list: the `moderation` extra pins that series.
NUDENET_SERIES = "3.4."
_INPUT_SIZE = 320  # the packaged 320n model's square input


class ModerationBlocked(InvalidRequestError):
    """Refused by the operator's policy: answered 400 with `code: moderation_blocked`."""

    code = BLOCKED


@dataclass(frozen=True)
class Decision:
    blocked: bool
    reason: str
    source: str  # "terms", "patterns", "endpoint", "frames"
    detail: dict[str, Any] = field(default_factory=dict)

    def as_audit(self, stage: str) -> dict[str, Any]:
        return {
            "stage": stage,
            "blocked": self.blocked,
            "source": self.source,
            "reason": self.reason,
            **self.detail,
        }


@dataclass(frozen=True)
class FrameScore:
    """The highest nudity score among the sampled frames, and where it was seen."""

    score: float
    label: str
    frame: int
    sampled: int


class FrameCheck:
    """NudeNet's detector on sampled frames, with the operator's threshold."""

    def __init__(self, threshold: float = 0.5, samples: int = 8):
        if not 0 < threshold <= 1:
            raise InvalidRequestError("nsfw_threshold must be in (0, 1]", param="nsfw_threshold")
        self.threshold = threshold
        self.samples = max(1, samples)
        self._session: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FrameCheck | None:
        if not settings.nsfw_check:
            return None
        import importlib.metadata
        import importlib.util

        # Said when the worker starts, not as a failure of every job it would then take.
        if importlib.util.find_spec("nudenet") is None:
            raise InvalidRequestError(
                "nsfw_check is on but nudenet is not installed: pip install 'moviola[moderation]'",
                param="nsfw_check",
            )
        version = importlib.metadata.version("nudenet")
        if not version.startswith(NUDENET_SERIES):
            raise InvalidRequestError(
                f"nsfw_check needs nudenet {NUDENET_SERIES}x, found {version}: "
                "pip install 'moviola[moderation]'",
                param="nsfw_check",
            )
        return cls(settings.nsfw_threshold, settings.nsfw_sample_frames)

    def score(self, frames: np.ndarray) -> FrameScore:
        """Score `samples` frames spread evenly over `frames` (T×H×W×3, or one H×W×3 image).

        The raw class scores of the model are read, not NudeNet's filtered detections (which
        drop anything under 0.2), so any threshold the operator sets means what it says.
        """
        frames = frames[None] if frames.ndim == 3 else frames
        picks = np.unique(np.linspace(0, len(frames) - 1, min(self.samples, len(frames))).round())
        session, input_name, labels = self._detector()
        classes = [i for i, label in enumerate(labels) if label in NSFW_LABELS]
        best = FrameScore(0.0, "", 0, len(picks))
        for index in picks.astype(int):
            out = session.run(None, {input_name: _blob(frames[index])})[0]
            if out.shape[1] != 4 + len(labels):  # another model than the labels describe
                raise RuntimeError(
                    f"NudeNet's model gives {out.shape[1] - 4} classes, its labels {len(labels)}"
                )
            scores = out[0][4:][classes]  # (classes, anchors)
            flat = int(scores.argmax())
            value = float(scores.flat[flat])
            if value > best.score:
                label = labels[classes[flat // scores.shape[1]]]
                best = FrameScore(value, label, int(index), len(picks))
        return best

    def check(self, frames: np.ndarray, what: str) -> Decision:
        """Score `frames` against the threshold; `what` names them in the reason."""
        found = self.score(frames)
        detail = {
            "score": round(found.score, 6),
            "label": found.label or None,
            "frame": found.frame,
            "sampled": found.sampled,
            "threshold": self.threshold,
        }
        if found.score >= self.threshold:
            reason = (
                f"{what} was flagged by the nudity check ({found.label} scored "
                f"{found.score:.4f} at frame {found.frame}, threshold {self.threshold})"
            )
            return Decision(True, reason, "frames", detail)
        return Decision(False, f"{what} passed the nudity check", "frames", detail)

    def _detector(self) -> tuple[Any, str, tuple[str, ...]]:
        """The detector's ONNX session, its input's name, and its classes in output order."""
        with self._lock:
            if self._session is None:
                from nudenet import NudeDetector
                from nudenet import nudenet as package

                # The class order the package itself decodes detections with.
                labels = tuple(getattr(package, "__labels"))
                detector = NudeDetector()
                self._session = (detector.onnx_session, detector.input_name, labels)
            return self._session


def _blob(frame: np.ndarray) -> np.ndarray:
    """A frame as the model's input: padded to a square at the bottom right (as NudeNet does,
    so boxes keep their origin), resized to 320×320, scaled to 0–1, NCHW float32."""
    from PIL import Image

    height, width = frame.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), np.uint8)
    square[:height, :width] = frame[..., :3]
    resized = Image.fromarray(square).resize((_INPUT_SIZE, _INPUT_SIZE), Image.Resampling.BILINEAR)
    return (np.asarray(resized, np.float32) / 255).transpose(2, 0, 1)[None]
