"""`moviola models pull ID`: the install the Studio runs (`moviola.jobs.installs`), in the
foreground, with a progress bar drawn from the same state: bytes done and in all, rate, ETA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

if TYPE_CHECKING:
    from moviola.config import Settings
    from moviola.engine import ModelSpec


def install(spec: ModelSpec, settings: Settings, console: Console) -> Path:
    from moviola.jobs import installs

    already = installs.weights_folder(spec, settings)
    if already is not None:
        console.print(f"{spec.id} is installed already: {already}")
        return already
    where = "built in code" if spec.repo_id is None else spec.repo_id
    console.print(f"installing {spec.id} ({where}; licence: {spec.license}) …")
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[line]}"))
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(spec.id, total=None, line="preparing")

        def show(state: installs.InstallState) -> None:
            bar.update(
                task,
                completed=state.done_bytes,
                total=state.total_bytes,
                line=installs.describe(state),
            )

        folder = installs.install(spec, settings, on_progress=show)
    console.print(f"{spec.id} is ready: {folder}")
    return folder
