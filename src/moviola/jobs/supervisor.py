"""The supervisor: the server's worker processes, one per device, kept alive.

Generation never runs in the server process: a model that runs out of memory or a driver that
crashes takes down one worker, not the API. Each worker is `moviola worker` in a process of
its own. When one dies the supervisor hands its job back to the queue at once (a crash uses
one of the job's attempts) and starts a fresh worker in its place. Workers exit by themselves
when the server goes, even by `kill -9`, so none is ever left behind.

A worker that keeps dying as it starts (a full disk, a broken driver, a bad setting) is
restarted ever more slowly, and each death is one line in the log, the dying worker's
traceback only the first time: a tight loop of restarts, each logging a traceback, would fill
the very disk it may be failing on. Failures of the supervisor's own (handing jobs back with
the database away) are retried the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from moviola.config import Settings
from moviola.errors import InvalidRequestError
from moviola.jobs import queue
from moviola.store import db
from moviola.store.models import Video, VideoStatus

log = logging.getLogger("moviola.supervisor")

RECOVERY_S = 5.0  # how often expired leases are looked for
POLL_S = 0.1  # how soon a dead worker is noticed
STABLE_S = 30.0  # a worker that lived this long was not dying at start-up: restart at once
FIRST_BACKOFF_S = 0.5  # the wait after a first failure, doubled at each one in a row
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    pid: int | None
    device: str
    alive: bool
    restarts: int
    current_job: str | None  # the job it holds a lease on, from the database


@dataclass
class _Slot:
    """One worker's place: its name and device stay, its process is replaced when it dies."""

    name: str
    device: str
    process: subprocess.Popen | None = None
    # The name its process holds jobs under: new for each process, so that a worker orphaned
    # by a crashed server, in the moments before it notices, never passes for its successor.
    holder: str = ""
    started_at: float = 0.0
    exited_at: float = 0.0  # when its process was first seen dead; 0 while it runs
    restarts: int = 0
    # The wait after the last failure (a death soon after starting, a failed hand-back or
    # start): doubled at each one in a row, 0 again once a worker has run for STABLE_S.
    backoff: float = 0.0
    next_try: float = 0.0
    last_error: str = ""  # the last failure whose traceback was logged


class Supervisor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._engine = db.connect(settings.db_url)
        self._sessions = db.sessions(self._engine)
        self._slots = [
            _Slot(f"worker-{i}", ",".join(group)) for i, group in enumerate(worker_groups(settings))
        ]
        self._lock = threading.Lock()  # guards the slots' processes against stop()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def restarts(self) -> int:
        return sum(slot.restarts for slot in self._slots)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the supervisor is already started")
        db.migrate(self._engine)  # here, once, so that workers starting together never race
        for slot in self._slots:
            self._spawn(slot)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop every worker: SIGTERM (each hands its job back), SIGKILL after `timeout`."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping.set()
        self._thread.join()
        crashed = {s.name for s in self._slots if s.process and s.process.poll() is not None}
        running = [s.process for s in self._slots if s.process and s.name not in crashed]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker pid %d did not stop in %.0f s: killing it", process.pid, timeout
                )
                process.kill()
                process.wait()
                self._end_group(process)
        for slot in self._slots:
            # Whatever a worker could not hand back itself. Shutting down is no fault of the
            # job's, so it costs no attempt; a worker that had died before is another matter.
            try:
                if slot.name in crashed:
                    self._end_group(slot.process)
                    log.warning("%s", self._hand_back(slot))
                else:
                    queue.release_worker(
                        self._sessions, slot.holder, "the server stopped", count_attempt=False
                    )
            except Exception:
                log.exception(
                    "could not hand back the jobs of %s; their leases will run out", slot.name
                )
            slot.process = None
        self._engine.dispose()

    def status(self) -> list[WorkerStatus]:
        holders = [slot.holder for slot in self._slots]
        with self._sessions() as session:
            held = dict(
                session.execute(
                    select(Video.lease_owner, Video.id).where(
                        Video.status == VideoStatus.IN_PROGRESS, Video.lease_owner.in_(holders)
                    )
                ).all()
            )
        statuses = []
        for slot in self._slots:
            process = slot.process
            statuses.append(
                WorkerStatus(
                    name=slot.name,
                    pid=process.pid if process is not None else None,
                    device=slot.device,
                    alive=process is not None and process.poll() is None,
                    restarts=slot.restarts,
                    current_job=held.get(slot.holder),
                )
            )
        return statuses

    # --- internals ---------------------------------------------------------------------------

    def _watch(self) -> None:
        last_recovery = time.monotonic()
        recovery_error = ""
        while not self._stopping.wait(POLL_S):
            for slot in self._slots:
                if time.monotonic() < slot.next_try:
                    continue
                try:
                    self._check(slot)
                except Exception as err:  # the database unreachable, the disk full …
                    slot.backoff = _longer(slot.backoff)
                    slot.next_try = time.monotonic() + slot.backoff
                    slot.last_error = _log_failure(
                        f"supervising {slot.name}", err, slot.last_error, slot.backoff
                    )
            if time.monotonic() - last_recovery >= RECOVERY_S:
                # Workers elsewhere (`moviola worker` on another machine) that died without
                # a supervisor to notice: their leases run out and their jobs come back.
                last_recovery = time.monotonic()
                try:
                    for job_id in queue.recover(self._sessions):
                        log.warning("%s: its worker's lease ran out; back in the queue", job_id)
                    recovery_error = ""
                except Exception as err:
                    recovery_error = _log_failure(
                        "recovering expired leases", err, recovery_error, RECOVERY_S
                    )

    def _check(self, slot: _Slot) -> None:
        if slot.process is not None:
            code = slot.process.poll()
            if code is None:
                return
            slot.exited_at = slot.exited_at or time.monotonic()
            # Should handing its jobs back fail, the dead process stays recorded and is tried
            # again later: no job is left held by a worker that no longer exists.
            self._end_group(slot.process)
            handed_back = self._hand_back(slot)
            delay = self._schedule_restart(slot, code)
            log.warning("%s; restarting it in %.1f s", handed_back, delay)
            slot.process = None
            slot.last_error = ""
        if time.monotonic() >= slot.next_try:
            with self._lock:
                if not self._stopping.is_set():
                    self._spawn(slot)
                    slot.restarts += 1

    def _end_group(self, process: subprocess.Popen | None) -> None:
        """A worker of several GPUs has a process per other GPU in its process group; with it
        gone they are of no use, and their memory must be free for its successor."""
        if process is not None and self.settings.gpus_per_worker > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def _hand_back(self, slot: _Slot) -> str:
        """Give back the jobs of the slot's dead process; returns a line that says so."""
        assert slot.process is not None
        code = slot.process.returncode
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        reason = f"worker {slot.holder} (pid {slot.process.pid}) {how}"
        released = queue.release_worker(self._sessions, slot.holder, reason)
        return f"{reason}; jobs back in the queue: {', '.join(released) or 'none'}"

    def _schedule_restart(self, slot: _Slot, code: int) -> float:
        died_young = slot.exited_at - slot.started_at < STABLE_S
        slot.backoff = _longer(slot.backoff) if died_young else 0.0
        delay = slot.backoff
        if code == 0:
            # It was asked to stop, most likely by a service manager signalling every process
            # at once: give the server the moment it needs to stop us too.
            delay = max(delay, 1.0)
        slot.next_try = time.monotonic() + delay
        return delay

    def _spawn(self, slot: _Slot) -> None:
        slot.holder = f"{slot.name}-{secrets.token_hex(3)}"
        command = [
            *(sys.executable, "-m", "moviola", "worker"),
            *("--name", slot.holder, "--device", slot.device),
            *("--parent-pid", str(os.getpid())),
            *(["--crash-loop"] if slot.backoff else []),
        ]
        slot.process = subprocess.Popen(
            command,
            env=worker_environment(self.settings),
            stdin=subprocess.DEVNULL,
            # Ctrl-C in the terminal reaches the server alone, which then stops its workers.
            start_new_session=True,
        )
        slot.started_at, slot.exited_at = time.monotonic(), 0.0
        log.info("started %s on %s (pid %d)", slot.holder, slot.device, slot.process.pid)


def worker_devices(settings: Settings) -> list[str]:
    """Every device the workers render on: one for each of `settings.workers`, the GPUs in
    turn when there are any, or `gpus_per_worker` each (see `worker_groups`)."""
    return [device for group in worker_groups(settings) for device in group]


def worker_groups(settings: Settings) -> list[list[str]]:
    """The devices of each of `settings.workers`: one each, the GPUs in turn when there are
    any; with `gpus_per_worker` N > 1, N consecutive GPUs each (`cuda:0, cuda:1`, then
    `cuda:2, cuda:3` …), or N CPU ranks with `device = "cpu"`. A machine whose GPUs cannot be
    cut into such groups is refused here, before any worker starts."""
    count, per = settings.workers, settings.gpus_per_worker
    if per > 1:
        groups = itertools.cycle(_gpu_groups(settings))
        return [list(group) for group in itertools.islice(groups, count)]
    if settings.device not in ("auto", "cuda"):
        return [[settings.device]] * count
    gpus = _gpu_count()
    if gpus == 0:
        return [["cpu" if settings.device == "auto" else "cuda"]] * count
    return [[f"cuda:{i % gpus}"] for i in range(count)]


def _gpu_groups(settings: Settings) -> list[tuple[str, ...]]:
    per = settings.gpus_per_worker
    if settings.device == "cpu":
        return [("cpu",) * per]  # CPU ranks: the multi-GPU path, tried without GPUs
    if settings.device not in ("auto", "cuda"):
        raise InvalidRequestError(
            f"--gpus-per-worker {per} takes --device auto, cuda or cpu, not {settings.device!r}: "
            "each worker is given its own GPUs",
            param="gpus_per_worker",
        )
    gpus = _gpu_count()
    if per > gpus:
        where = "no GPU" if gpus == 0 else f"{gpus} GPU{'s' if gpus > 1 else ''}"
        raise InvalidRequestError(
            f"--gpus-per-worker {per} needs {per} GPUs and this machine has {where}",
            param="gpus_per_worker",
        )
    if gpus % per:
        raise InvalidRequestError(
            f"--gpus-per-worker {per} does not divide this machine's {gpus} GPUs into groups; "
            f"use a divisor of {gpus}",
            param="gpus_per_worker",
        )
    return [tuple(f"cuda:{i}" for i in range(g, g + per)) for g in range(0, gpus, per)]


def worker_environment(settings: Settings) -> dict[str, str]:
    """This environment, with `settings` spelled out in it, so that a worker sees exactly the
    settings the server has, including those given in code rather than in the environment."""
    env = dict(os.environ)
    for field, value in settings.model_dump().items():
        key = f"MOVIOLA_{field.upper()}"
        if value is None:
            env.pop(key, None)
        elif isinstance(value, dict):
            env[key] = ",".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            env[key] = ",".join(value)
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    # Each worker's CPU threads get its share of the cores: torch otherwise starts one thread
    # per core in every worker, and on a busy machine they thrash (renders 10–20x slower).
    processes = max(1, settings.workers) * settings.gpus_per_worker
    share = str(max(1, (os.cpu_count() or 1) // processes))
    env.setdefault("OMP_NUM_THREADS", share)
    return env


def _gpu_count() -> int:
    # Without a GPU driver there is nothing to count and no reason to load torch in the server.
    driver = Path("/proc/driver/nvidia").exists() or Path("/dev/kfd").exists()
    if not driver and shutil.which("nvidia-smi") is None:
        return 0
    import torch

    return torch.cuda.device_count()


def _longer(backoff: float) -> float:
    return min(backoff * 2, MAX_BACKOFF_S) if backoff else FIRST_BACKOFF_S


def _log_failure(what: str, err: Exception, last_error: str, retry_in: float) -> str:
    """Log a failure in one line, with its traceback only when it differs from `last_error`:
    the same one every few seconds (a full disk) must not bury the log. Returns the line."""
    line = f"{type(err).__name__}: {err}".splitlines()[0]
    exc_info = err if line != last_error else None
    log.warning("%s failed: %s; trying again in %.1f s", what, line, retry_in, exc_info=exc_info)
    return line


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
