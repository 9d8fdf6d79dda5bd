"""`moviola import SRC…` and `moviola export DEST`: videos into the library and back out."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.config import Settings
    from moviola.importer.library import Outcome
    from moviola.importer.report import Report
    from moviola.importer.sources import Candidate
    from moviola.store.models import Video


def _settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        # Before reading the settings: the data dir's moviola.toml is one of their sources.
        os.environ["MOVIOLA_DATA_DIR"] = str(data_dir)
    from moviola.config import Settings

    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


def _human(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[bytes]:>22}"),
        TextColumn("{task.fields[tally]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def import_videos(
    sources: list[Path] = typer.Argument(
        None, help="Folders, ZIP archives or video files (MP4, MOV, WebM, GIF) to import."
    ),
    from_api: str = typer.Option(
        None,
        "--from-api",
        help="Also import every completed video of another Videos-API server (its base URL).",
    ),
    api_key: str = typer.Option(
        None,
        "--api-key",
        envvar="MOVIOLA_IMPORT_API_KEY",
        help="The API key for --from-api (or MOVIOLA_IMPORT_API_KEY).",
    ),
    page_size: int = typer.Option(
        100, "--page-size", help="Videos per page when listing --from-api."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be imported; write nothing."
    ),
    report_file: Path = typer.Option(
        None, "--report", help="Write a JSON report of every video here."
    ),
    owner: str = typer.Option(
        None, "--owner", help="The API key id whose library receives the videos (default: local)."
    ),
    data_dir: Path = typer.Option(None, "--data-dir", help="The library's data dir."),
) -> None:
    """Import videos, with every piece of metadata found, into the library (safe to re-run)."""
    with one_line_errors():
        from moviola.errors import InvalidRequestError
        from moviola.importer import sources as walking
        from moviola.importer.library import Library
        from moviola.importer.run import run_import

        if not sources and not from_api:
            raise InvalidRequestError("give folders, archives or videos to import, or --from-api")
        settings = _settings(data_dir)
        console = Console(stderr=True)
        api = None
        with Library(settings, owner=owner, dry_run=dry_run) as library:
            found = walking.walk(list(sources or []))
            try:
                listed = len(found.candidates) + len(found.problems)
                if from_api:
                    from moviola.importer.remote import VideosApi

                    api = VideosApi(
                        from_api,
                        api_key,
                        page_size=page_size,
                        max_bytes=settings.max_import_bytes,
                    )
                total_bytes = sum(c.size or 0 for c in found.candidates)
                done_word = "to import" if dry_run else "imported"
                tally = {done_word: 0, "duplicate": 0, "skipped": 0, "failed": 0}
                done_bytes = 0
                with _bar(console) as bar:
                    task = bar.add_task(
                        "checking" if dry_run else "importing",
                        total=listed,
                        bytes="",
                        tally="",
                    )

                    def one_more() -> None:
                        nonlocal listed
                        listed += 1
                        bar.update(task, total=listed)

                    candidates: Iterable[Candidate] = found.candidates
                    if api is not None:
                        # Imported as they are listed: the total grows as the pages come in.
                        candidates = itertools.chain(
                            candidates, _counted(api.candidates(), one_more)
                        )

                    def show() -> None:
                        of = f" / {_human(total_bytes)}" if total_bytes and not from_api else ""
                        shown = ", ".join(f"{n} {k}" for k, n in tally.items() if n)
                        bar.update(task, bytes=f"{_human(done_bytes)}{of}", tally=shown)

                    def on_bytes(count: int) -> None:
                        nonlocal done_bytes
                        done_bytes += count
                        show()

                    def on_outcome(outcome: Outcome) -> None:
                        key = {"would_import": done_word, "imported": done_word}.get(
                            outcome.status, outcome.status
                        )
                        tally[key] = tally.get(key, 0) + 1
                        bar.advance(task)
                        show()

                    report = run_import(
                        library,
                        candidates,
                        problems=found.problems,
                        on_bytes=on_bytes,
                        on_outcome=on_outcome,
                    )
            finally:
                found.close()
                if api is not None:
                    api.close()
        if report_file is not None:
            report.write(report_file)
        _summary(report)
        if report.failed:
            raise typer.Exit(1)


def _counted(candidates: Iterator[Candidate], grow: Callable[[], None]) -> Iterator[Candidate]:
    for candidate in candidates:
        grow()
        yield candidate


def _summary(report: Report) -> None:
    out = Console(highlight=False, soft_wrap=True)  # piped: a line per line
    counts = report.counts()
    if report.dry_run:
        for outcome in report.outcomes:
            if outcome.status == "would_import":
                found = ", ".join(f"{k} ({v})" for k, v in outcome.found.items())
                out.print(f"would import {outcome.location}" + (f"  [{found}]" if found else ""))
        out.print(
            f"dry run: {counts['would_import']} would be imported, "
            f"{counts['duplicate']} already in the library, "
            + (f"{counts['skipped']} skipped, " if counts["skipped"] else "")
            + f"{counts['failed']} failed; nothing was written"
        )
    else:
        imported = sum(o.bytes or 0 for o in report.outcomes if o.status == "imported")
        out.print(
            f"imported {counts['imported']} ({_human(imported)}), "
            f"skipped {counts['duplicate']} as duplicate, "
            + (f"{counts['skipped']} not ready on their server, " if counts["skipped"] else "")
            + f"failed {counts['failed']}"
        )
        if report.lineage_linked or report.lineage_missing:
            out.print(
                f"lineage: {report.lineage_linked} remixes linked to their parents"
                + (
                    f", {report.lineage_missing} whose parent is not in the library"
                    if report.lineage_missing
                    else ""
                )
            )
    for video_id, why in report.lineage_refused:
        out.print(f"[yellow]lineage not linked[/yellow] {video_id}: {why}")
    for outcome in report.skipped:
        out.print(f"[yellow]skipped[/yellow] {outcome.location}: {outcome.reason}")
    for outcome in report.failed:
        out.print(f"[red]failed[/red] {outcome.location}: {outcome.reason}")


def export_videos(
    destination: Path = typer.Argument(..., help="A folder, or a file ending in .zip."),
    owner: str = typer.Option(None, "--owner", help="Export this API key id's library."),
    all_owners: bool = typer.Option(False, "--all-owners", help="Every owner's videos."),
    ids: list[str] = typer.Option(None, "--id", help="Only these videos (repeatable)."),
    since: str = typer.Option(None, "--since", help="Made on or after (ISO date or time)."),
    until: str = typer.Option(None, "--until", help="Made before (ISO date or time)."),
    model: str = typer.Option(None, "--model", help="Only videos of this model."),
    search: str = typer.Option(None, "--search", help="Only videos whose prompt contains this."),
    data_dir: Path = typer.Option(None, "--data-dir", help="The library's data dir."),
) -> None:
    """Export videos, thumbnails and a manifest.json that `moviola import` reads back."""
    with one_line_errors():
        from moviola.errors import InvalidRequestError
        from moviola.importer.export import Filters, export, selected
        from moviola.importer.metadata import parse_time

        def when(value: str | None, name: str) -> float | None:
            if value is None:
                return None
            parsed = parse_time(value)
            if parsed is None:
                raise InvalidRequestError(f"{value!r} is not a date or time", param=name)
            return parsed

        settings = _settings(data_dir)
        filters = Filters(
            owner=owner,
            all_owners=all_owners,
            ids=list(ids or []),
            since=when(since, "since"),
            until=when(until, "until"),
            model=model,
            search=search,
        )
        rows = selected(settings, filters)
        console = Console(stderr=True)
        # Every file written: the videos and their previews.
        total = sum(
            described.get("bytes") or 0
            for row in rows
            for described in (row.files or {}).values()
            if described.get("expired_at") is None
        )
        done = 0
        with _bar(console) as bar:
            task = bar.add_task("exporting", total=len(rows), bytes="", tally="")

            def on_video(row: Video, sent: int) -> None:
                nonlocal done
                done += sent
                bar.update(task, advance=1, bytes=f"{_human(done)} / {_human(total)}")

            summary = export(rows, destination, on_video=on_video)
        out = Console(highlight=False, soft_wrap=True)  # piped: a line per line
        out.print(
            f"exported {summary.videos} videos ({_human(summary.bytes)}) to {summary.destination}"
        )
        for video_id, why in summary.skipped:
            out.print(f"[yellow]skipped[/yellow] {video_id}: {why}")
