"""`moviola keys create NAME | list | revoke ID_OR_PREFIX`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    help="API keys: create one per app or person, list them, revoke one.",
    no_args_is_help=True,
)


def _sessions() -> sessionmaker[Session]:
    from moviola.cli.database import open_sessions

    return open_sessions()


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


@app.command("create")
def create(name: str = typer.Argument(..., help="Who or what the key is for.")) -> None:
    """Create a key and print its secret (shown this once only)."""
    with one_line_errors():
        from moviola.errors import InvalidRequestError
        from moviola.store import keys

        if not name.strip():
            raise InvalidRequestError("the key needs a name", param="name")
        key, secret = keys.create_key(_sessions(), name.strip())
        typer.echo(secret)
        typer.secho(
            f"key {key.id} ({key.name}): copy the secret above now; it is not stored and "
            "cannot be shown again.",
            err=True,
            fg="yellow",
        )


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
