"""`moviola worker`: render queued videos until stopped.

`moviola serve` starts one per device and watches over them. More can run on other machines
that share the database (PostgreSQL) and the blob folder.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import typer

from moviola.cli.failures import one_line_errors

log = logging.getLogger("moviola.worker")

PARENT_POLL_S = 0.5
# After its parent has gone a worker hands its job back and exits; one that has not managed
# to within this long (stuck loading a model, say) exits anyway, and the job's lease runs out.
ORPHAN_GRACE_S = 10.0


def worker(
    name: str = typer.Option(
        None, help="The name it holds jobs under; unique per worker (default: host-pid)."
    ),
    device: str = typer.Option(
        None,
        help="auto, cpu, cuda, cuda:1 … or a group: cuda:2,cuda:3 (default: the setting).",
    ),
    gpus_per_worker: int = typer.Option(
        None,
        "--gpus-per-worker",
        help="Split every job across this many GPUs, for latency (default: the setting, 1).",
    ),
    parent_pid: int = typer.Option(
        None, "--parent-pid", hidden=True, help="Exit when this process is no longer the parent."
    ),
    crash_loop: bool = typer.Option(
        False,
        "--crash-loop",
        hidden=True,
        help="The workers before this one died soon after starting: a crash logs one line.",
    ),
) -> None:
    """Render queued videos until stopped; SIGTERM or Ctrl-C hands the current job back."""
    with one_line_errors():
        from moviola import logs
        from moviola.config import get_settings
        from moviola.errors import InvalidRequestError
        from moviola.jobs.worker import Worker
        from moviola.store import db
        from moviola.store.blobs import Blobs

        logs.configure()
        # Alembic announces its plugins each time a worker (re)starts: noise in the server's log.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        settings = get_settings()
        if gpus_per_worker is not None:
            if gpus_per_worker < 1:
                raise InvalidRequestError(
                    "--gpus-per-worker must be 1 or more", param="gpus_per_worker"
                )
            settings = settings.model_copy(update={"gpus_per_worker": gpus_per_worker})
        if settings.worker_nice and hasattr(os, "nice"):
            # Rendering is batch work; the API answering polls is what people wait on. On a
            # machine with few cores, a lower priority keeps the API's latency flat.
            os.nice(settings.worker_nice)
        engine = db.connect(settings.db_url)
        db.migrate(engine)
        stop = threading.Event()
        _stop_on_signals(stop)
        if parent_pid is not None:
            _stop_with_parent(parent_pid, stop)
        name = name or f"{socket.gethostname()[:40]}-{os.getpid()}"
        job_worker = Worker(
            settings, db.sessions(engine), Blobs(settings.blobs_path), name=name, device=device
        )
        log.info("%s: waiting for jobs on %s", name, device or settings.device)
        try:
            job_worker.run(stop)
        except Exception as err:
            if crash_loop:
                # Its predecessors most likely died the same way, and the log has that
                # traceback already: repeated at every restart it would bury everything else.
                line = f"{type(err).__name__}: {err}".splitlines()[0]
                log.error("%s: crashed again: %s", name, line)
            else:
                log.exception("%s: crashed", name)  # the whole traceback, for the operator's log
            raise typer.Exit(1) from None
        log.info("%s: stopped", name)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()
        # A second Ctrl-C means "now". A second SIGTERM changes nothing: a service manager and
        # the server may both send one.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _stop_with_parent(parent_pid: int, stop: threading.Event) -> None:
    """Stop when the parent goes, even by `kill -9`, so that a dead server leaves no workers.

    An orphan is adopted by another process, so its parent id changes; polling that works on
    every POSIX system and cannot be fooled by a new process reusing the old id.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        log.warning("the process that started this worker (pid %d) is gone: stopping", parent_pid)
        stop.set()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
