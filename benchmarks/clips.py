"""Moving test pictures for the encoding benchmarks: smooth colour that drifts, and grain, so
x264 does the work it does on footage (flat or random frames would be too easy or too hard)."""

from __future__ import annotations

import numpy as np


def frames(count: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((count, height, width, 3), np.uint8)
    for t in range(count):
        phase = t * 0.08
        out[t, ..., 0] = 127 + 100 * np.sin(xs / 90 + phase)
        out[t, ..., 1] = 127 + 100 * np.sin(ys / 70 - phase)
        out[t, ..., 2] = 127 + 100 * np.sin((xs + ys) / 120 + phase / 2)
        out[t] = np.clip(out[t] + rng.normal(0, 6, (height, width, 3)), 0, 255)
    return out
