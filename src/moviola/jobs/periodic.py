"""A task that runs one pass every few seconds on a daemon thread, for the server's
background services (webhook delivery, the sweeper)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses implement `run_pass()`; `start()` runs it every `interval_s` until `stop()`."""

    name: str = "periodic"

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pass(self) -> object:
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        last_error = ""
        while not self._stop.is_set():
            try:
                self.run_pass()
                last_error = ""
            except Exception as err:  # a locked database, a full disk: the next pass tries again
                line = f"{type(err).__name__}: {err}".splitlines()[0]
                # The same failure at every pass, maybe every second, would bury the log in
                # tracebacks: its traceback is logged once, then a line each time.
                exc_info = err if line != last_error else None
                log.error("%s: pass failed: %s", self.name, line, exc_info=exc_info)
                last_error = line
            self._stop.wait(self.interval_s)
