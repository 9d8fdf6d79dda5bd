"""The server's chat worker: the local chat model in a process of its own, kept alive.

Generation never runs in the API process: a chat model that crashes or runs out of memory
takes down the chat worker, not the API. `ChatProcess` starts `moviola chat-worker`, learns its
URL from the ready file the worker writes once the model is loaded, restarts it when it dies
(ever more slowly while it keeps dying at start-up, like the video workers' supervisor), and
stops it with the server. The worker exits by itself when the server goes, even by `kill -9`.

Only a model that can run without a download is started; otherwise `url` stays None and
`not_ready_reason()` names `moviola models pull ID`.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from moviola.config import Settings

log = logging.getLogger("moviola.chat")

POLL_S = 0.1  # how soon a dead worker, or a ready one, is noticed
STABLE_S = 30.0  # a worker that lived this long was not dying at start-up: restart at once
FIRST_BACKOFF_S = 0.5  # the wait after a first failure, doubled at each one in a row
MAX_BACKOFF_S = 60.0
STOP_TIMEOUT_S = 10.0
# The worker's token, passed in its environment (a command line is visible to every user).
TOKEN_ENV = "MOVIOLA_CHAT_WORKER_TOKEN"


class ChatProcess:
    """One chat worker for `settings.assistant_model`; `url` is its …/v1 base while ready."""

    def __init__(self, settings: Settings):
        from moviola.engine.chat_models import find_chat_model, is_installed

        self.settings = settings
        self.spec = find_chat_model(settings.assistant_model)
        self.installed = is_installed(self.spec, settings.models_path)
        # Only this server may use its worker: the port is open to every local user.
        self.token = secrets.token_urlsafe(24)
        self.restarts = 0
        self._process: subprocess.Popen | None = None
        self._url: str | None = None
        self._ready_file: Path | None = None
        self._dir = ""  # the ready files' folder, made at start
        self._started_at = 0.0
        self._last_exit = ""  # how the last worker died, until its successor is ready
        self._backoff = 0.0
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """The worker's base URL (http://127.0.0.1:PORT/v1); None while it is not ready."""
        process = self._process
        if process is None or process.poll() is not None:
            return None  # dead, and not yet noticed by the watcher
        return self._url

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def not_ready_reason(self) -> str:
        if not self.installed:
            return (
                f"the chat model {self.spec.id} is not on this machine; "
                f"fetch it with `moviola models pull {self.spec.id}`"
            )
        if self._thread is None or self._stopping.is_set():
            return "the chat worker is not running"
        if self._last_exit:
            # Crashing as it starts (out of memory, a broken driver): the log has the reason.
            return f"the chat worker {self._last_exit} and is being restarted; see the server log"
        return "the chat worker is starting (loading its model)"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the chat worker is already started")
        if not self.installed:
            log.warning("assistant: %s", self.not_ready_reason())
            return
        self._dir = tempfile.mkdtemp(prefix="moviola-chat-")
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="chat-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self._thread is None:
            return
        with self._lock:
            self._stopping.set()
        self._thread.join()
        self._url = None
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "chat worker pid %d did not stop in %.0f s: killing it", process.pid, timeout
                )
                process.kill()
                process.wait()
        self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- internals ---------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_S):
            try:
                self._check()
            except Exception:  # a full disk for the ready file …: try again, more slowly
                log.exception("supervising the chat worker failed")
                self._backoff = _longer(self._backoff)
                self._next_try = time.monotonic() + self._backoff

    def _check(self) -> None:
        process = self._process
        if process is not None:
            code = process.poll()
            if code is None:
                if self._url is None:
                    self._read_ready_file()
                return
            self._url = None
            self._process = None
            lived = time.monotonic() - self._started_at
            self._backoff = _longer(self._backoff) if lived < STABLE_S else 0.0
            self._next_try = time.monotonic() + self._backoff
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self._last_exit = how
            log.warning(
                "chat worker (pid %d) %s; restarting it in %.1f s",
                process.pid,
                how,
                self._backoff,
            )
        if time.monotonic() >= self._next_try:
            with self._lock:
                if not self._stopping.is_set():
                    self._spawn()
                    self.restarts += 1

    def _read_ready_file(self) -> None:
        assert self._ready_file is not None
        try:
            url = self._ready_file.read_text().strip()
        except FileNotFoundError:
            return
        if url:
            self._url = url
            self._last_exit = ""
            log.info("chat worker ready at %s (model %s)", url, self.spec.id)

    def _spawn(self) -> None:
        self._ready_file = Path(self._dir) / f"ready-{secrets.token_hex(4)}"
        command = [
            *(sys.executable, "-m", "moviola", "chat-worker"),
            *("--model", self.spec.id, "--port", "0"),
            *("--ready-file", str(self._ready_file)),
            *("--models-dir", str(self.settings.models_path)),
            *("--device", self.settings.assistant_device),
            *("--parent-pid", str(os.getpid())),
        ]
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token
        self._process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            # Ctrl-C in the terminal reaches the server alone, which then stops its worker.
            start_new_session=True,
        )
        self._started_at = time.monotonic()
        log.info("started the chat worker for %s (pid %d)", self.spec.id, self._process.pid)


def _longer(backoff: float) -> float:
    return min(backoff * 2, MAX_BACKOFF_S) if backoff else FIRST_BACKOFF_S
