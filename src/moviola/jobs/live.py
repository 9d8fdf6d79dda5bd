"""What a running job is doing now: the `live` its worker writes into its row.

A worker turns the engine's progress reports into one small JSON object, written with each
heartbeat (and at once when the stage changes or a new preview is ready):

    {"stage": "denoising", "step": 7, "steps": 30, "segment": 0, "segments": 1,
     "started_at": …, "stage_at": …, "denoise_at": …, "step_at": …, "pace": 0.41,
     "preview": 3}

Times are the wall clock's (seconds since the epoch), so the server that reads the row can
tell how long ago they were. `denoise_at` is when the current segment's first step began and
`step_at` when `step` was done: between them, this job's own seconds per step (`pace`, kept
after denoising ends too), which `moviola.jobs.eta` goes by. `preview` counts the previews
written (0: none yet); the latest is `preview.jpg` in the job's folder, replaced atomically
each time and removed with the job's run. `moviola.jobs.queue` clears `live` whenever the
job stops running.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from moviola import media
from moviola.engine import Progress, Stage
from moviola.store.blobs import Blobs

PREVIEW_NAME = "preview.jpg"
PREVIEW_WIDTH = 320  # pixels: the latent grid, scaled up smoothly to a card's width


def preview_path(blobs: Blobs, video_id: str) -> Path:
    return blobs.folder(video_id) / PREVIEW_NAME


def write_preview(path: Path, image: np.ndarray) -> None:
    """A preview (uint8 H×W×3 at the latent grid's size) as a small JPEG, written atomically."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    width, height = picture.size
    scale = PREVIEW_WIDTH / max(1, width)
    if scale > 1:
        size = (PREVIEW_WIDTH, max(1, round(height * scale)))
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    data = io.BytesIO()
    picture.save(data, format="JPEG", quality=80)
    path.parent.mkdir(parents=True, exist_ok=True)
    media.atomic_write_bytes(path, data.getvalue())


class LiveState:
    """The `live` object of one run, kept up to date from its progress reports."""

    def __init__(self, now: float | None = None):
        started = time.time() if now is None else now
        self.data: dict[str, Any] = {
            "stage": "starting",
            "step": 0,
            "steps": 0,
            "segment": 0,
            "segments": 1,
            "started_at": started,
            "stage_at": started,
            "denoise_at": None,
            "step_at": None,
            "pace": None,
            "preview": 0,
        }

    def update(self, progress: Progress, now: float | None = None) -> bool:
        """Take a report in; True when it changed the stage or the segment (worth writing at
        once, not at the next throttled heartbeat)."""
        now = time.time() if now is None else now
        data = self.data
        stage = progress.stage.value
        moved = stage != data["stage"] or progress.segment != data["segment"]
        if moved:
            data["stage_at"] = now
        if progress.stage is Stage.DENOISING:
            if moved or data["denoise_at"] is None or progress.step < data["step"]:
                data["denoise_at"], data["step_at"] = now, None  # a segment's first step begins
            if progress.step:
                data["step_at"] = now
                data["pace"] = (now - data["denoise_at"]) / progress.step
        elif moved:
            data["denoise_at"] = data["step_at"] = None
        data.update(
            stage=stage,
            step=progress.step,
            steps=progress.steps,
            segment=progress.segment,
            segments=progress.segments,
        )
        return moved

    def previewed(self) -> None:
        self.data["preview"] += 1

    def snapshot(self) -> dict[str, Any]:
        return dict(self.data)
