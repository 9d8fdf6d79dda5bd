"""The Ray executor: what runs beside the API in place of the local worker supervisor when
`executor = "ray"` (in a child process of the server: see `process`).

Every replica runs one. Each takes part in the election; the one elected connects to Ray and
dispatches (see `dispatcher`); the others stand by, ready to take over within seconds. Every
replica checks that the Ray head answers, so that `/healthz` on any of them says why jobs are
not moving when it does not; jobs then simply wait in the queue.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.jobs.ray.election import Election
from moviola.jobs.supervisor import WorkerStatus
from moviola.store.blobs import Blobs

log = logging.getLogger("moviola.ray")

IDLE_S = 0.05  # between rounds when nothing happened
RECONNECT_S = 3.0
REACH_TIMEOUT_S = 2.0
TRIES = 3  # failed starts as dispatcher before giving the election up to another replica
RESIGNED_S = 5.0  # how long a replica that gave the election up stays out of it


class RayExecutor:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        self.address = require_address(settings)
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.election = Election(settings.db_url)
        self.dispatcher: Any = None
        self.ray_state = "not checked yet"
        self.restarts = 0  # Ray restarts actors itself; kept for the metrics' sake
        self._actors: list[WorkerStatus] = []
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ray-executor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.dispatcher is not None:
            self.dispatcher.stand_down()  # the actors keep their jobs for the next dispatcher
        self.election.resign()
        if self._connected:
            import ray

            ray.shutdown()

    def status(self) -> list[WorkerStatus]:
        return list(self._actors)

    def health(self) -> dict[str, Any]:
        """The executor's part of `/healthz`: who dispatches, whether Ray answers, and why not."""
        leading = self.dispatcher is not None
        reasons = []
        if not self.ray_state.startswith("connected") and self.ray_state != "reachable":
            reasons.append(f"Ray at {self.address}: {self.ray_state}")
        elif leading and not any(a.alive for a in self._actors):
            reasons.append("no Ray actor answers yet")
        return {
            "kind": "ray",
            "ray_address": self.address,
            "ray": self.ray_state,
            "dispatching": leading,
            "actors": len(self._actors),
            "reasons": reasons,
        }

    # --- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        from moviola.jobs.ray.dispatcher import Deposed

        reached = 0.0
        failures = 0
        last_error = ""
        while not self._stop.is_set():
            try:
                if time.monotonic() - reached >= RECONNECT_S:
                    reached = time.monotonic()
                    self._check_reachable()
                if self.ray_state.startswith("unreachable"):
                    # Holding the lock without Ray would stop every replica from dispatching:
                    # only a replica that reaches Ray stands for election.
                    self._resign()
                    self._stop.wait(self.election.retry_s)
                    continue
                if not self.election.leading():
                    self._stand_down()
                    self._stop.wait(self.election.retry_s)
                    continue
                if self.dispatcher is None and not self._become_dispatcher():
                    raise RuntimeError(f"could not dispatch: Ray is {self.ray_state}")
                failures = 0
                busy = self.dispatcher.step()
                self._actors = _statuses(self.dispatcher)
                if not busy:
                    self._stop.wait(IDLE_S)
            except Deposed:
                log.warning("another replica dispatches now: standing down")
                self._stand_down()
            except Exception as err:
                error = f"{type(err).__name__}: {err}"[:300]
                if error != last_error:  # a lasting failure is logged in full once
                    log.exception("dispatching failed")
                else:
                    log.warning("dispatching failed again: %s", error)
                last_error = error
                self.ray_state = f"error: {error}"
                failures += 1
                if failures >= TRIES or self.dispatcher is not None:
                    # Ray calls fail (its head died, say) or this replica cannot start: let a
                    # replica that may fare better dispatch, and connect afresh next time.
                    log.warning("giving the dispatcher election up to another replica")
                    self._resign()
                    failures = 0
                    self._stop.wait(RESIGNED_S)
                else:
                    self._stand_down()
                    self._stop.wait(RECONNECT_S)

    def _check_reachable(self) -> None:
        """A plain TCP connection to the head: `ray.init` itself waits a minute or more for
        an address that does not answer, and nothing here may hang that long."""
        host, _, port = self.address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S):
                pass
        except (OSError, ValueError) as err:
            self.ray_state = f"unreachable ({err.__class__.__name__}: {err})"
            if self.dispatcher is not None:
                log.warning("Ray at %s is unreachable: jobs wait", self.address)
                self._stand_down()
            return
        if not self._connected:
            self.ray_state = "reachable"
        elif self.ray_state.startswith("unreachable"):
            self.ray_state = "connected (again)"

    def _become_dispatcher(self) -> bool:
        if self.ray_state.startswith("unreachable"):
            return False
        import ray

        from moviola.jobs.ray.dispatcher import RayDispatcher

        if not self._connected:
            ray.init(
                address=self.address,
                namespace=self.settings.ray_namespace,
                logging_level=logging.ERROR,
                log_to_driver=False,
                configure_logging=False,
            )
            self._connected = True
        dispatcher = RayDispatcher(
            self.settings,
            self.sessions,
            self.blobs,
            fence=self.election.fence(),
            still_leading=self.election.still_leading,
        )
        dispatcher.take_over()
        self.dispatcher = dispatcher
        self.ray_state = f"connected ({len(dispatcher.actors)} actor(s))"
        log.info("dispatching to Ray at %s", self.address)
        return True

    def _stand_down(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stand_down()
            self.dispatcher = None
            self._actors = []

    def _resign(self) -> None:
        """Stand down, give the lock up, and drop the Ray connection (made afresh if this
        replica is elected again: the head it knew may have restarted meanwhile)."""
        self._stand_down()
        if self.election.standing:
            self.election.resign()
        if self._connected:
            self._connected = False
            try:
                import ray

                ray.shutdown()
            except Exception:
                log.warning("disconnecting from Ray failed", exc_info=True)


def require_address(settings: Settings) -> str:
    if not settings.ray_address:
        from moviola.errors import InvalidRequestError

        raise InvalidRequestError(
            "the ray executor needs the Ray head's address: --ray-address HOST:PORT "
            "(or MOVIOLA_RAY_ADDRESS)",
            param="ray_address",
        )
    return settings.ray_address


def _statuses(dispatcher: Any) -> list[WorkerStatus]:
    running = {f.actor: f.job_id for f in dispatcher.in_flight.values()}
    answering = set(dispatcher.free_actors()) | set(running)
    return [
        WorkerStatus(
            name=name,
            pid=None,
            device="gpu" if dispatcher.options["gpus"] else "cpu",
            alive=name in answering,
            restarts=0,
            current_job=running.get(name),
        )
        for name in dispatcher.actors
    ]
