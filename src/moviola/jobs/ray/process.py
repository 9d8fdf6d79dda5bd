"""The Ray executor in a process of its own, started and restarted by `moviola serve`.

A Ray driver whose head goes away is ended by Ray itself about a minute later ("Failed to
connect to GCS … will terminate"), and its calls wait meanwhile. So the driver, with the
election and the dispatcher (`ray_executor.RayExecutor`), runs in a child process of the
server, as local workers do: Ray ending it costs a restart of the child, never the API. The
child holds the election's lock, which goes with it when it dies; it says how it stands (the
executor's health and its actors) on its stdout, one JSON line a round, for `/healthz`.

Run as `python -m moviola.jobs.ray.process --parent-pid PID`; it exits when the server goes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.jobs.supervisor import WorkerStatus, worker_environment
from moviola.store.blobs import Blobs

log = logging.getLogger("moviola.ray")

REPORT_S = 0.5  # how often the child says how it stands
STABLE_S = 30.0  # a child that lived this long was not failing at start-up: restart at once
MAX_BACKOFF_S = 30.0


class RayProcess:
    """The server's side: the same `status()`, `health()` and `restarts` as the supervisor."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        from moviola.jobs.ray.executor import require_address

        require_address(settings)
        self.settings = settings
        self.restarts = 0
        self._health = _health(settings, "starting", ["the Ray executor is starting"])
        self._actors: list[WorkerStatus] = []
        self._process: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ray-process", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()  # it stands down and gives the lock up
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def status(self) -> list[WorkerStatus]:
        return list(self._actors)

    def health(self) -> dict[str, Any]:
        return dict(self._health)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moviola.jobs.ray.process",
                    "--parent-pid",
                    f"{os.getpid()}",
                ],
                env=worker_environment(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._process.stdout is not None
            for line in self._process.stdout:  # until it exits
                try:
                    report = json.loads(line)
                except ValueError:
                    continue
                self._health = report["health"]
                self._actors = [WorkerStatus(**a) for a in report["actors"]]
            code = self._process.wait()
            self._actors = []
            if self._stop.is_set():
                return
            self.restarts += 1
            reason = f"the Ray executor's process exited ({code}); restarting it"
            log.warning("%s", reason)
            self._health = _health(self.settings, "restarting", [reason])
            backoff = 1.0 if time.monotonic() - started >= STABLE_S else backoff
            self._stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)


def _health(settings: Settings, state: str, reasons: list[str]) -> dict[str, Any]:
    return {
        "kind": "ray",
        "ray_address": settings.ray_address,
        "ray": state,
        "dispatching": False,
        "actors": 0,
        "reasons": reasons,
    }


def main(argv: list[str]) -> None:
    from moviola import logs
    from moviola.config import get_settings
    from moviola.jobs.ray.executor import RayExecutor
    from moviola.store import db

    logs.configure()
    parent = int(argv[argv.index("--parent-pid") + 1])
    settings = get_settings()
    engine = db.connect(settings.db_url)
    executor = RayExecutor(settings, db.sessions(engine), Blobs(settings.blobs_path))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    executor.start()
    try:
        # Polling the parent id: an orphan is adopted by another process, even after kill -9.
        while not stop.wait(REPORT_S) and os.getppid() == parent:
            report = {
                "health": executor.health(),
                "actors": [asdict(a) for a in executor.status()],
            }
            try:
                print(json.dumps(report), flush=True)
            except (BrokenPipeError, OSError):
                break  # the server is gone
    finally:
        executor.stop()  # stands down and gives the lock up
        engine.dispose()
    # Ray's own threads may still run (a head that went away): nothing is left to finish.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
