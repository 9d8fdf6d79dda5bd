"""What runs beside the API for as long as the server does.

- the worker supervisor (`settings.workers` worker processes; 0 for an API-only node whose
  workers run elsewhere on the same database), or with `executor = "ray"` the Ray executor
  (election, and on the elected replica the dispatcher to Ray actors);
- the webhook dispatcher and the sweeper (retention, deleted files);
- the assistant's chat worker, when the assistant runs on this server (no assistant_base_url).

Jobs of local workers that die are handed back by the supervisor at once. Expired leases are
not swept while running: workers renew theirs only between steps, so a long model load or
VAE decode would look like a lost worker.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moviola.chat.process import ChatProcess
from moviola.config import Settings
from moviola.store.blobs import Blobs

log = logging.getLogger("moviola.server")


class Background:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        from moviola.jobs.outbox import Outbox
        from moviola.jobs.supervisor import Supervisor
        from moviola.jobs.sweeper import Sweeper

        if settings.executor == "ray":
            # Rendering on a Ray cluster: the elected replica dispatches to actors there, from
            # a child process (Ray may end a driver whose head went away). Same `status()`
            # and `restarts` as the supervisor, for health and metrics.
            from moviola.jobs.ray.process import RayProcess

            self.supervisor: Any = RayProcess(settings, sessions, blobs)
        else:
            self.supervisor = Supervisor(settings)
        # The assistant's own chat worker, unless it talks to a server elsewhere.
        self.chat: ChatProcess | None = None
        if not settings.assistant_base_url:
            self.chat = ChatProcess(settings)
        # Stopped in this order: workers first, so that their last events still get sent.
        self._services: list[tuple[str, Any]] = [
            ("workers", self.supervisor),
            ("webhooks", Outbox(settings, sessions)),
            ("sweeper", Sweeper(settings, sessions, blobs)),
            *([("chat worker", self.chat)] if self.chat is not None else []),
        ]

    def start(self) -> None:
        started = []
        try:
            for name, service in self._services:
                service.start()
                started.append((name, service))
        except BaseException:
            for name, service in reversed(started):
                self._stop_one(name, service)
            raise

    def stop(self) -> None:
        for name, service in self._services:
            self._stop_one(name, service)

    @staticmethod
    def _stop_one(name: str, service: Any) -> None:
        try:
            service.stop()
        except Exception:
            log.exception("stopping the %s failed", name)
