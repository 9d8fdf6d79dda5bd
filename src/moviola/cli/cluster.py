"""`moviola cluster status`: the Ray cluster as Moviola uses it, and the queue feeding it."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import typer

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.config import Settings

app = typer.Typer(no_args_is_help=True, help="The Ray cluster that renders (executor = ray).")

INFO_TIMEOUT_S = 10.0


@app.command("status")
def status(
    ray_address: str = typer.Option(
        None, "--ray-address", help="HOST:PORT of the Ray head (default: the setting)."
    ),
) -> None:
    """Nodes, GPUs, render actors and the models they hold, the dispatcher, queue depth."""
    with one_line_errors():
        from rich.console import Console
        from rich.table import Table

        from moviola.config import get_settings
        from moviola.errors import InvalidRequestError

        settings = get_settings()
        address = ray_address or settings.ray_address
        if not address:
            raise InvalidRequestError(
                "no Ray address: give --ray-address HOST:PORT or set MOVIOLA_RAY_ADDRESS",
                param="ray_address",
            )
        console = Console()
        queued, running, dispatcher = _queue(settings)
        console.print(
            f"queue: [bold]{queued}[/] queued, [bold]{running}[/] in progress; "
            f"dispatcher: {dispatcher or 'none elected'}"
        )
        nodes, actors = _cluster(address, settings.ray_namespace)

        table = Table("node", "address", "alive", "CPUs", "GPUs", title="nodes")
        for node in nodes:
            resources = node.get("Resources", {})
            table.add_row(
                node["NodeID"][:12],
                node.get("NodeManagerAddress", "?"),
                "yes" if node.get("Alive") else "no",
                f"{resources.get('CPU', 0):g}",
                f"{resources.get('GPU', 0):g}",
            )
        console.print(table)

        table = Table("actor", "node", "pid", "GPUs", "loaded models", "job", title="actors")
        for name, info in actors:
            if info is None:
                table.add_row(name, "?", "?", "?", "not answering", "")
                continue
            running_jobs = [t["job_id"] for t in info["tasks"] if t["state"] == "running"]
            table.add_row(
                name,
                info["node_ip"],
                str(info["pid"]),
                ",".join(map(str, info["gpus"])) or "-",
                ", ".join(info["loaded_models"]) or "-",
                ", ".join(running_jobs) or "idle",
            )
        console.print(table)


def _queue(settings: Settings) -> tuple[int, int, str | None]:
    from sqlalchemy import func, select

    from moviola.jobs.ray.election import Election
    from moviola.store import db
    from moviola.store.models import Video, VideoStatus

    engine = db.connect(settings.db_url)
    try:
        with db.sessions(engine)() as session:
            counts = dict(
                session.execute(
                    select(Video.status, func.count())
                    .where(Video.deleted_at.is_(None))
                    .group_by(Video.status)
                ).all()
            )
    finally:
        engine.dispose()
    election = Election(settings.db_url)
    holder = election.holder()
    election.resign()
    return counts.get(VideoStatus.QUEUED, 0), counts.get(VideoStatus.IN_PROGRESS, 0), holder


def _cluster(
    address: str, namespace: str
) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any] | None]]]:
    import ray

    from moviola.jobs.ray.actor import ACTOR_PREFIX

    ray.init(
        address=address,
        namespace=namespace,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        nodes = ray.nodes()
        names = sorted(n for n in ray.util.list_named_actors() if str(n).startswith(ACTOR_PREFIX))
        refs = {name: ray.get_actor(name).info.remote() for name in names}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=INFO_TIMEOUT_S)
        actors = []
        for name, ref in refs.items():
            info = None
            if ref in ready:
                with contextlib.suppress(ray.exceptions.RayError):
                    info = ray.get(ref)
            actors.append((name, info))
        return nodes, actors
    finally:
        ray.shutdown()
