"""Moderation: the operator's policy on prompts, and a nudity check of frames.

Prompt policy (checked by the service before anything is queued): blocked terms (whole words,
any case), blocked regular expressions, and optionally any OpenAI-compatible `/v1/moderations`
endpoint. Frame check (in the worker, on the frames of uploaded inputs and of every finished
video): NudeNet's detector, whose model ships inside the `nudenet` package, on a few frames
sampled evenly; a frame whose best score for an exposed-nudity class reaches the threshold
flags the video.

Everything here is off unless configured; the detector loads once per worker process.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from moviola.config import Settings
from moviola.errors import InvalidRequestError

log = logging.getLogger("moviola.moderation")

BLOCKED = "moderation_blocked"
UNAVAILABLE = "moderation_unavailable"
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
# The order of the classes in the model's output rows (after the four box coordinates).
_LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
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


# --- prompts -----------------------------------------------------------------------------------


class PromptPolicy:
    """Blocked terms and patterns, then the external endpoint: the first that objects wins."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None):
        self.terms = [t for t in settings.blocked_terms if t.strip()]
        self.patterns = [re.compile(p, re.IGNORECASE) for p in settings.blocked_patterns]
        self._terms_re = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(t.strip()) for t in self.terms) + r")(?!\w)",
                re.IGNORECASE,
            )
            if self.terms
            else None
        )
        self.url = settings.moderation_url
        self.api_key = settings.moderation_api_key
        self.model = settings.moderation_model
        self.timeout = settings.moderation_timeout_s
        self._client = client

    @property
    def enabled(self) -> bool:
        return bool(self._terms_re or self.patterns or self.url)

    def check(self, prompt: str) -> Decision | None:
        """A blocking decision, or None when the prompt may go ahead."""
        if self._terms_re is not None:
            match = self._terms_re.search(prompt)
            if match:
                return Decision(True, f"the prompt contains the blocked term {match[0]!r}", "terms")
        for pattern in self.patterns:
            if pattern.search(prompt):
                return Decision(
                    True, f"the prompt matches a blocked pattern ({pattern.pattern})", "patterns"
                )
        if self.url:
            return self._ask_endpoint(prompt)
        return None

    def _ask_endpoint(self, prompt: str) -> Decision | None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body: dict[str, Any] = {"input": prompt}
        if self.model:
            body["model"] = self.model
        try:
            client = self._client or httpx.Client(timeout=self.timeout)
            try:
                response = client.post(self.url, json=body, headers=headers)
            finally:
                if self._client is None:
                    client.close()
            response.raise_for_status()
            result = response.json()["results"][0]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as err:
            # Fail closed: an operator who asked for moderation gets no unmoderated video.
            log.warning("the moderation endpoint %s failed: %s", self.url, err)
            raise InvalidRequestError(
                "the moderation service did not answer; try again later",
                param="prompt",
                code=UNAVAILABLE,
            ) from None
        if not result.get("flagged"):
            return None
        categories = sorted(k for k, v in (result.get("categories") or {}).items() if v)
        reason = "the moderation service flagged the prompt"
        if categories:
            reason += f" ({', '.join(categories)})"
        return Decision(True, reason, "endpoint", {"categories": categories})


# --- frames ------------------------------------------------------------------------------------


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
        import importlib.util

        # Said when the worker starts, not as a failure of every job it would then take.
        if importlib.util.find_spec("nudenet") is None:
            raise InvalidRequestError(
                "nsfw_check is on but nudenet is not installed: pip install 'moviola[moderation]'",
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
        session, input_name = self._detector()
        classes = [i for i, label in enumerate(_LABELS) if label in NSFW_LABELS]
        best = FrameScore(0.0, "", 0, len(picks))
        for index in picks.astype(int):
            out = session.run(None, {input_name: _blob(frames[index])})[0]
            scores = out[0][4:][classes]  # (classes, anchors)
            flat = int(scores.argmax())
            value = float(scores.flat[flat])
            if value > best.score:
                label = _LABELS[classes[flat // scores.shape[1]]]
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

    def _detector(self) -> tuple[Any, str]:
        with self._lock:
            if self._session is None:
                from nudenet import NudeDetector

                detector = NudeDetector()
                self._session = (detector.onnx_session, detector.input_name)
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
