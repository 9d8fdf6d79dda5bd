"""`moviola serve`: the Videos API, its worker processes and background services."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, cast

import typer

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.config import Settings


class _Given(TypedDict, total=False):
    """The settings given as options: they override the environment and moviola.toml."""

    host: str
    port: int
    data_dir: Path
    workers: int
    gpus_per_worker: int
    executor: Literal["local", "ray"]
    ray_address: str


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default 8000)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Database, videos and models."),
    workers: int | None = typer.Option(
        None,
        help="Worker processes (default 1); 0 serves the API and leaves rendering to "
        "`moviola worker` processes elsewhere.",
    ),
    gpus_per_worker: int | None = typer.Option(
        None,
        "--gpus-per-worker",
        help="GPUs each worker splits every job across, for latency (default 1: one job per "
        "GPU, the most videos an hour).",
    ),
    executor: str | None = typer.Option(
        None, help="local (worker processes here, the default) or ray (a Ray cluster)."
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="HOST:PORT of the Ray head, with --executor ray."
    ),
) -> None:
    """Serve the OpenAI-compatible Videos API (point the openai SDK's base_url at /v1)."""
    with one_line_errors():
        if data_dir is not None:
            # Before reading the settings: the data dir's moviola.toml is one of their sources.
            os.environ["MOVIOLA_DATA_DIR"] = str(data_dir)
        import uvicorn

        from moviola import logs
        from moviola.config import Settings
        from moviola.errors import InvalidRequestError
        from moviola.server import create_app

        given: _Given = {}
        if host is not None:
            given["host"] = host
        if port is not None:
            given["port"] = port
        if data_dir is not None:
            given["data_dir"] = data_dir
        if workers is not None:
            given["workers"] = workers
        if gpus_per_worker is not None:
            if gpus_per_worker < 1:
                raise InvalidRequestError(
                    "--gpus-per-worker must be 1 or more", param="gpus_per_worker"
                )
            given["gpus_per_worker"] = gpus_per_worker
        if executor is not None:
            given["executor"] = cast(Literal["local", "ray"], executor)  # Settings checks it
        if ray_address is not None:
            given["ray_address"] = ray_address
        settings = Settings(**given)
        if settings.workers < 0:
            raise InvalidRequestError("--workers must be 0 or more", param="workers")
        if settings.executor == "ray" and not settings.ray_address:
            raise InvalidRequestError(
                "--executor ray needs --ray-address HOST:PORT (the Ray head)", param="ray_address"
            )
        if settings.gpus_per_worker > 1 and settings.executor == "ray":
            raise InvalidRequestError(
                "--gpus-per-worker is for local workers: Ray actors render one job per GPU",
                param="gpus_per_worker",
            )
        if settings.gpus_per_worker > 1 and settings.executor == "local" and settings.workers:
            from moviola.jobs.supervisor import worker_groups

            worker_groups(settings)  # GPUs that cannot be cut into groups: said now, not later
        if not binds_loopback(settings.host) and not _has_keys(settings):
            typer.secho(
                f"error: refusing to listen on {settings.host} with no API key: anyone who can "
                "reach it could use it; create a key first (`moviola keys create NAME`) or "
                "listen on 127.0.0.1",
                err=True,
                fg="red",
            )
            raise typer.Exit(2)
        logs.configure()
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,  # logs.configure() already routes uvicorn's logs
            timeout_graceful_shutdown=30,
        )


def binds_loopback(host: str) -> bool:
    """Whether every address `host` stands for is this machine's loopback."""
    from moviola.web.locality import is_loopback

    if is_loopback(host):
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(is_loopback(address) for address in addresses)


def _has_keys(settings: Settings) -> bool:
    from moviola.store import db, keys

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.connect(settings.db_url)
    try:
        db.migrate(engine)
        return keys.any_keys(db.sessions(engine))
    finally:
        engine.dispose()
