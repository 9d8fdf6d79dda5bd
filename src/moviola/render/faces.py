"""Where a face is in a frame: NudeNet's detector, whose classes include faces.

The detector ships inside the `nudenet` package (a dependency of the `moderation` extra, and so
of every development and CI install), so finding a face needs no download. Without the
package, `FaceFinder.available()` is False and characters keep their whole frames. The model's
raw outputs are read as the frame check reads them (`moviola.render.frame_check`), with the
same input: the frame padded to a square at the bottom right and scaled to 320×320.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from moviola.render.frame_check import _INPUT_SIZE, _blob

FACE_LABELS = frozenset({"FACE_FEMALE", "FACE_MALE"})
MIN_SCORE = 0.4  # a face NudeNet is less sure of is taken for none: the whole frame is kept


@dataclass(frozen=True)
class Face:
    """A face's box in the frame's pixels, and how sure the detector is of it."""

    x: float
    y: float
    width: float
    height: float
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.width, self.height


class FaceFinder:
    """The most confident face in a frame, by NudeNet's detector (loaded on first use)."""

    def __init__(self, min_score: float = MIN_SCORE):
        self.min_score = min_score
        self._session: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("nudenet") is not None

    def find(self, frame: np.ndarray) -> Face | None:
        """The face in `frame` (uint8 H×W×3) the detector is surest of, or None."""
        session, input_name, classes = self._detector()
        out = session.run(None, {input_name: _blob(frame)})[0][0]  # (4 + classes, anchors)
        scores = out[4:][classes]
        best = scores.max(axis=0)
        anchor = int(best.argmax())
        if float(best[anchor]) < self.min_score:
            return None
        # Box centre and size in the 320×320 input, which is the padded square scaled down.
        cx, cy, w, h = (float(v) for v in out[:4, anchor])
        height, width = frame.shape[:2]
        scale = max(height, width) / _INPUT_SIZE
        left, top = max(0.0, (cx - w / 2) * scale), max(0.0, (cy - h / 2) * scale)
        right, bottom = min(width, (cx + w / 2) * scale), min(height, (cy + h / 2) * scale)
        if right <= left or bottom <= top:
            return None
        return Face(left, top, right - left, bottom - top, float(best[anchor]))

    def _detector(self) -> tuple[Any, str, list[int]]:
        with self._lock:
            if self._session is None:
                from nudenet import NudeDetector
                from nudenet import nudenet as package

                labels = tuple(getattr(package, "__labels"))
                detector = NudeDetector()
                classes = [i for i, label in enumerate(labels) if label in FACE_LABELS]
                self._session = (detector.onnx_session, detector.input_name, classes)
            return self._session
