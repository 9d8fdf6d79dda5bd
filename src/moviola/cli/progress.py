"""A Rich progress bar fed by the engine's progress reports."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from moviola.engine import Progress as Report
from moviola.engine import Stage

_LABELS = {
    Stage.LOADING: "loading model",
    Stage.ENCODING_PROMPT: "encoding prompt",
    Stage.DENOISING: "denoising",
    Stage.DECODING: "decoding",
    Stage.SOUND: "making sound",
    Stage.WRITING: "writing file",
    Stage.DONE: "done",
}
_SCALE = 1000


class GenerationBar:
    """`with GenerationBar(console) as bar: render(..., on_progress=bar.update)`."""

    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]:<14}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> GenerationBar:
        self._progress.__enter__()
        self._task = self._progress.add_task(_LABELS[Stage.LOADING], total=_SCALE, detail="")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def update(self, report: Report) -> None:
        label = _LABELS[report.stage]
        if report.segments > 1 and report.stage is not Stage.DONE:
            label = f"{label} ({report.segment + 1}/{report.segments})"
        detail = ""
        if report.stage is Stage.DENOISING and report.steps:
            detail = f"step {report.step}/{report.steps}"
        elif report.stage is Stage.WRITING and report.steps:
            detail = f"frame {report.step}/{report.steps}"
        self._progress.update(
            self._task, completed=round(report.fraction * _SCALE), description=label, detail=detail
        )
