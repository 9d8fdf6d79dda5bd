"""`moviola audit`: read the audit log — who did what to which video, and moderation decisions —
as a table, or export it as JSON Lines or CSV."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

FORMATS = ("table", "jsonl", "csv")


def audit(
    actor: str = typer.Option(
        None, help="An API key id, or 'local' for the keyless loopback user."
    ),
    action: str = typer.Option(
        None, help="create, remix, edit, extend, storyboard, download, delete or moderation."
    ),
    video: str = typer.Option(None, help="Only entries about this video id."),
    since: str = typer.Option(None, help="From this time on (ISO 8601, UTC unless it says)."),
    until: str = typer.Option(None, help="Before this time (ISO 8601)."),
    limit: int = typer.Option(None, help="At most this many entries (the newest); 1 or more."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, jsonl or csv."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the export to this file."),
) -> None:
    """List or export the audit log, oldest entry first."""
    with one_line_errors():
        from moviola.cli.database import open_sessions
        from moviola.errors import InvalidRequestError
        from moviola.media import atomic_write
        from moviola.store import audit as log

        if fmt not in FORMATS:
            raise InvalidRequestError("--format must be table, jsonl or csv", param="format")
        if limit is not None and limit < 1:
            raise InvalidRequestError("--limit must be 1 or more", param="limit")
        if action is not None and action not in log.ACTIONS:
            raise InvalidRequestError(
                f"--action must be one of {', '.join(log.ACTIONS)}", param="action"
            )
        where = log.Filter(
            actor=actor,
            action=action,
            video_id=video,
            since=_time(since, "since"),
            until=_time(until, "until"),
        )
        entries = log.query(open_sessions(), where, limit=limit, newest_first=limit is not None)
        if limit is not None:
            entries.reverse()
        if fmt == "table":
            _table(entries)
            return
        if output is None:
            log.export(entries, sys.stdout, fmt)
            return
        with atomic_write(output) as tmp, open(tmp, "w", newline="") as out:
            count = log.export(entries, out, fmt)
        typer.secho(f"{count} {'entry' if count == 1 else 'entries'} written to {output}", err=True)


def _time(value: str | None, name: str) -> float | None:
    from moviola.errors import InvalidRequestError

    if value is None:
        return None
    try:
        # Python 3.10's fromisoformat does not read the "Z" suffix.
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(
            f"--{name} must be an ISO 8601 date or time, e.g. 2026-03-01 or 2026-03-01T12:00",
            param=name,
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _table(entries: list[dict]) -> None:
    table = Table(title=f"audit log ({len(entries)} entries)")
    for column in ("time (UTC)", "actor", "action", "video", "detail"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        detail = entry["detail"]
        summary = detail.get("reason") or ", ".join(
            f"{k}={v}" for k, v in detail.items() if v is not None
        )
        table.add_row(
            entry["time"],
            entry["actor"] or "local",
            entry["action"],
            entry["video_id"] or "",
            summary,
        )
    Console().print(table)
