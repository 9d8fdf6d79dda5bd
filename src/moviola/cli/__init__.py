"""The `moviola` command. Thin: each command parses, calls a layer below, and prints.

Nothing heavy is imported here, so `moviola --help` answers at once; torch loads only when a
command generates.
"""

from __future__ import annotations

import typer

from moviola import __version__

app = typer.Typer(
    name="moviola",
    help="Open, self-hosted video creation on open-weight models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moviola {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Open, self-hosted video creation on open-weight models."""


def _register() -> None:
    from moviola.cli import generate, keys, models, serve, worker

    app.command("generate")(generate.generate)
    app.add_typer(models.app, name="models")
    from moviola.cli import memory

    models.app.command("plan")(memory.plan)
    app.command("worker")(worker.worker)
    from moviola.cli import chat_worker

    app.command("chat-worker", hidden=True)(chat_worker.chat_worker)
    app.add_typer(keys.app, name="keys")
    app.command("serve")(serve.serve)
    from moviola.cli import audit, verify

    app.command("verify")(verify.verify)
    app.command("audit")(audit.audit)
    from moviola.cli import transfer

    app.command("import")(transfer.import_videos)
    app.command("export")(transfer.export_videos)
    from moviola.cli import cluster

    app.add_typer(cluster.app, name="cluster")
    from moviola.cli import loras

    app.add_typer(loras.app, name="loras")


_register()


def main() -> None:
    app()
