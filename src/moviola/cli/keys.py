"""`moviola keys [--data-dir DIR] create NAME [--adopt/--no-adopt] | list | revoke KEY |
adopt KEY`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    help="API keys: create one per app or person, list them, revoke one, give one the "
    "videos made without a key.",
    no_args_is_help=True,
)


@app.callback()
def main(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="The data dir whose keys to manage (default: the settings')."
    ),
) -> None:
    """API keys: create one per app or person, list them, revoke one, give one the videos
    made without a key."""
    if data_dir is not None:
        # Before the settings are read: the data dir's moviola.toml is one of their sources.
        os.environ["MOVIOLA_DATA_DIR"] = str(data_dir)


def _sessions() -> sessionmaker[Session]:
    from moviola.cli.database import open_sessions

    return open_sessions()


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Who or what the key is for."),
    adopt: bool | None = typer.Option(
        None,
        "--adopt/--no-adopt",
        help="Move the videos (and characters …) made without a key to this key. Default: "
        "when it is the first live key, since once a key exists keyless use ends.",
        show_default=False,
    ),
) -> None:
    """Create a key and print its secret (shown this once only)."""
    with one_line_errors():
        from moviola.errors import InvalidRequestError
        from moviola.store import adoption, keys

        if not name.strip():
            raise InvalidRequestError("the key needs a name", param="name")
        moved: dict[str, int] = {}
        key, secret = keys.create_key(
            _sessions(), name.strip(), before_commit=adoption.on_create(adopt, moved)
        )
        typer.echo(secret)
        typer.secho(
            f"key {key.id} ({key.name}): copy the secret above now; it is not stored and "
            "cannot be shown again.",
            err=True,
            fg="yellow",
        )
        if moved:
            typer.echo(f"adopted {adoption.describe(moved)} made without a key", err=True)
        elif adopt:
            typer.echo("adopted nothing: there is nothing made without a key", err=True)


@app.command("list")
def list_keys() -> None:
    """Every key: id, name, prefix, when created and revoked (never the secret)."""
    with one_line_errors():
        from moviola.store import keys

        table = Table(title="API keys")
        table.add_column("id", no_wrap=True)
        table.add_column("name")
        table.add_column("prefix", no_wrap=True)
        table.add_column("created", no_wrap=True)
        table.add_column("revoked", no_wrap=True)
        for key in keys.list_keys(_sessions()):
            table.add_row(
                key.id, key.name, key.prefix, _when(key.created_at), _when(key.revoked_at)
            )
        console = Console()
        if not console.is_terminal:  # piped: never cut the ids people copy from here
            console.width = 200
        console.print(table)


@app.command("revoke")
def revoke(
    key: str = typer.Argument(..., help="The key's id, or the prefix `list` shows."),
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    with one_line_errors():
        from moviola.errors import NotFoundError
        from moviola.store import keys

        if not keys.revoke(_sessions(), key):
            raise NotFoundError(f"no live key with id or prefix {key!r}", param="key")
        typer.echo(f"revoked {key}")


@app.command("adopt")
def adopt(
    key: str = typer.Argument(..., help="The key's id, or the prefix `list` shows."),
) -> None:
    """Move everything made without a key (videos, characters …) to a live key."""
    # What a key made with --no-adopt left behind, or what was made while every key was
    # revoked: out of everyone's reach while a key exists, until a key adopts it.
    with one_line_errors():
        from moviola.errors import NotFoundError
        from moviola.store import adoption, keys

        sessions = _sessions()
        found = keys.live_key(sessions, key)
        if found is None:
            raise NotFoundError(f"no live key with id or prefix {key!r}", param="key")
        moved = adoption.adopt_into(sessions, found.id)
        typer.echo(f"adopted {adoption.describe(moved)} into {found.id} ({found.name})")
