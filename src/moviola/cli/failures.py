"""How the CLI fails: one line on stderr saying why, and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from moviola.errors import InvalidRequestError, MoviolaError


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn any failure into `error: <reason>` and exit 1 (2 for a bad request).

    Set MOVIOLA_DEBUG=1 to see the traceback of an unexpected error.
    """
    try:
        yield
    except MoviolaError as err:
        where = f" ({err.param})" if err.param else ""
        typer.secho(f"error{where}: {err.message}", err=True, fg="red")
        raise typer.Exit(2 if isinstance(err, InvalidRequestError) else 1) from None
    except KeyboardInterrupt:
        typer.secho("error: interrupted", err=True, fg="red")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as err:
        if os.environ.get("MOVIOLA_DEBUG"):
            raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        typer.secho(f"error: {type(err).__name__}: {reason}", err=True, fg="red")
        print("(set MOVIOLA_DEBUG=1 for the full traceback)", file=sys.stderr)
        raise typer.Exit(1) from None
