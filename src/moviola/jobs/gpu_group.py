"""A worker that owns several GPUs: every job split across all of them, for latency.

`moviola worker --gpus-per-worker N` (and each of `moviola serve`'s workers with the same
option) is rank 0 of a group of N processes, one device each. Rank 0 is the worker as one of a
single GPU is: it claims jobs, renews their leases, reports progress, takes cancels and writes
results. Its `GroupEngine` starts the other ranks (`python -m moviola.jobs.gpu_group`, one per
other device) and hands them each request, its decoded media included, through a private
pipe; then every rank runs the same `Engine.generate`, and each denoiser forward is split
across the ranks (`moviola.engine.parallel`).

Ranks must stay in step: each waits for the others in every exchange. So
- a cancel is decided by rank 0 and shared at each check (`shared_cancel`): every rank stops at
  the same step. A failure of rank 0's own while rendering (a progress write the database
  refused) stops the job the same way, and is raised once every rank has stopped;
- a rank that dies, or one that has not finished a job `OUT_OF_STEP_S` after another did (a
  rank that failed alone leaves the others waiting on it for ever), takes the whole group
  down: rank 0 hands its job back to the queue with one attempt used, as the supervisor does
  for a worker that crashed, kills the other ranks and exits. The supervisor starts a new
  group; a worker started by hand is restarted by whatever started it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

from moviola.engine import CancelToken, Engine, GenerationRequest, GenerationResult, Placement
from moviola.engine.errors import GenerationCancelled
from moviola.engine.parallel import join_group, leave_group, shared_cancel
from moviola.engine.progress import Progress, ProgressCallback
from moviola.errors import InvalidRequestError

log = logging.getLogger("moviola.worker")

POLL_S = 0.1  # how soon a dead rank, or a rank's end of a job, is noticed
# How long after one rank finished a job the others may still be at it before the group counts
# as out of step. Ranks finish within moments of each other (they denoise in lock step, and
# decode the same frames); a rank that failed alone leaves the others waiting for ever.
OUT_OF_STEP_S = 120.0
LEADER_POLL_S = 0.5


def group_devices(device: str, ranks: int) -> list[str]:
    """The devices of a worker, rank 0's first: `device` as given (one, or a group such as the
    supervisor's `cuda:2,cuda:3`), or with `ranks` > 1 the first `ranks` GPUs (`auto`, `cuda`)
    or `ranks` processes on the CPU (`cpu`: the multi-GPU path, tried without GPUs)."""
    if "," in device:
        devices = [d.strip() for d in device.split(",") if d.strip()]
        if ranks not in (1, len(devices)):
            raise InvalidRequestError(
                f"--device names {len(devices)} devices, and --gpus-per-worker is {ranks}",
                param="gpus_per_worker",
            )
        _check_group(devices)
        return devices
    if ranks == 1:
        return [device]
    if device == "cpu":
        return ["cpu"] * ranks
    if device not in ("auto", "cuda"):
        raise InvalidRequestError(
            f"--gpus-per-worker {ranks} takes --device auto, cuda, cpu or a list of {ranks} "
            f"devices (cuda:0,cuda:1 …), not {device!r}",
            param="gpus_per_worker",
        )
    import torch

    gpus = torch.cuda.device_count()
    if gpus < ranks:
        raise InvalidRequestError(
            f"--gpus-per-worker {ranks} needs {ranks} GPUs and this machine has {gpus}",
            param="gpus_per_worker",
        )
    return [f"cuda:{i}" for i in range(ranks)]


def _check_group(devices: list[str]) -> None:
    """A group is distinct GPUs (`cuda:<index>`), or CPU ranks."""
    gpus = [d for d in devices if d != "cpu"]
    named = all(d.startswith("cuda:") and d[5:].isdigit() for d in gpus)
    if gpus and (len(gpus) != len(devices) or not named or len(set(gpus)) != len(gpus)):
        raise InvalidRequestError(
            f"a worker's devices are distinct GPUs (cuda:0,cuda:1 …) or CPU ranks (cpu,cpu), "
            f"not {','.join(devices)}",
            param="device",
        )


def worker_engine(
    *, gpus: int, name: str, on_lost: Callable[[str], None], **options: Any
) -> Engine:
    """A worker's engine: `Engine(**options)` on one device, a `GroupEngine` of `gpus` ranks
    with the same options on each."""
    placement: Placement = options.get("placement") or Placement()
    devices = group_devices(placement.device, gpus)
    if len(devices) == 1:
        return Engine(**options)
    return GroupEngine(devices, name=name, on_lost=on_lost, **options)


@dataclass(frozen=True)
class _Setup:
    """What a rank is told as it starts."""

    name: str  # the worker's, for the log
    rank: int
    ranks: int
    device: str
    store_port: int  # where the group meets (rank 0's TCPStore)
    options: dict[str, Any]  # rank 0's `Engine` options; each rank takes its own device


@dataclass
class _Rank:
    index: int
    process: subprocess.Popen
    channel: Connection


@dataclass
class _Job:
    seq: int
    finished: dict[int, float] = field(default_factory=dict)  # rank → when it finished
    outcomes: dict[int, str] = field(default_factory=dict)  # other ranks': how they finished
    done: threading.Event = field(default_factory=threading.Event)


class GroupEngine(Engine):
    """Rank 0's engine: each `generate` runs on every rank of the group at once."""

    def __init__(
        self,
        devices: Sequence[str],
        *,
        name: str = "worker",
        on_lost: Callable[[str], None] | None = None,
        **options: Any,
    ):
        """`options` are `Engine`'s, the same on every rank but for the placement's device."""
        import torch.distributed as dist

        ranks = len(devices)
        placement = dataclasses.replace(
            options.get("placement") or Placement(), device=devices[0], context_parallel=ranks
        )
        self._options = {**options, "placement": placement}
        super().__init__(**self._options)
        self.name = name
        self.devices = list(devices)
        self._on_lost = on_lost
        self._lock = threading.Lock()  # guards `_job` between this thread and the watcher
        self._one_job = threading.Lock()
        self._job: _Job | None = None
        self._seq = 0
        self._closing = False
        self._closed = threading.Event()
        self._going_down = threading.Lock()
        # Where the ranks meet: a free port on the loopback only (a TCPStore given a port
        # listens on every interface), which the ranks are told.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._store = dist.TCPStore(
            "127.0.0.1",
            self._listener.getsockname()[1],
            ranks,
            is_master=True,
            wait_for_workers=False,
            master_listen_fd=self._listener.fileno(),
        )
        self._ranks = [
            self._start_rank(_Setup(name, i, ranks, d, self._store.port, self._options))
            for i, d in enumerate(self.devices[1:], start=1)
        ]
        self._watcher = threading.Thread(target=self._watch, name=f"{name}-ranks", daemon=True)
        self._watcher.start()
        try:
            join_group(self._store, 0, ranks, devices[0])
        except BaseException:
            self._closing = True
            for rank in self._ranks:
                rank.process.kill()
            raise
        log.info("%s: a group of %d ranks on %s", name, ranks, ", ".join(self.devices))

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        cancel = cancel or CancelToken()
        resolved = self.plan(request)  # a bad request is refused here, before any rank starts
        request = dataclasses.replace(request, seed=resolved.seed)  # the same noise everywhere
        failures: list[Exception] = []

        def report(progress: Progress) -> None:
            if on_progress is None or failures:
                return
            try:
                on_progress(progress)
            except Exception as err:  # raised below, once every rank has stopped
                failures.append(err)

        def stop() -> bool:
            if failures:
                return True
            try:
                return cancel.cancelled
            except Exception as err:
                failures.append(err)
                return True

        with self._one_job:  # the ranks take jobs in the order rank 0 runs them
            job = self._send(request)
            try:
                token = shared_cancel(stop)
                result = super().generate(request, on_progress=report, cancel=token)
            except GenerationCancelled:
                if failures:
                    raise failures[0] from None
                raise
            finally:
                self._finish(job)
        if failures:
            raise failures[0]
        return result

    def close(self, timeout: float = 10.0) -> None:
        """Stop the other ranks (between jobs) and leave the group."""
        self._closing = True
        for rank in self._ranks:
            with contextlib.suppress(OSError):  # already gone
                rank.channel.send(("stop",))
        deadline = time.monotonic() + timeout
        for rank in self._ranks:
            try:
                rank.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s: rank %d did not stop: killing it", self.name, rank.index)
                rank.process.kill()
                rank.process.wait()
        self._closed.set()
        self._watcher.join()
        leave_group()

    # --- internals ---------------------------------------------------------------------------

    def _start_rank(self, setup: _Setup) -> _Rank:
        ours, theirs = Pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "moviola.jobs.gpu_group", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        ours.send(setup)
        log.info(
            "%s: started rank %d on %s (pid %d)", self.name, setup.rank, setup.device, process.pid
        )
        return _Rank(setup.rank, process, ours)

    def _send(self, request: GenerationRequest) -> _Job:
        with self._lock:
            job = self._job = _Job(self._seq)
            self._seq += 1
        for rank in self._ranks:
            try:
                rank.channel.send(("job", job.seq, request))
            except OSError as err:
                self._take_down(f"rank {rank.index} cannot be reached ({err})")
        return job

    def _finish(self, job: _Job) -> None:
        """Wait until every rank has finished `job`: only then may the next one start."""
        with self._lock:
            job.finished[0] = time.monotonic()
        job.done.wait()
        with self._lock:
            self._job = None
        for index, outcome in sorted(job.outcomes.items()):
            if outcome.startswith("failed"):
                log.warning("%s: rank %d %s", self.name, index, outcome)

    def _watch(self) -> None:
        while not self._closed.wait(POLL_S):
            for rank in self._ranks:
                self._read(rank)
                code = rank.process.poll()
                if code is not None and not self._closing:
                    self._take_down(f"rank {rank.index} (pid {rank.process.pid}) {_how(code)}")
            self._check_step()

    def _read(self, rank: _Rank) -> None:
        try:
            while rank.channel.poll():
                kind, seq, outcome = rank.channel.recv()
                with self._lock:
                    job = self._job
                    if kind == "done" and job is not None and job.seq == seq:
                        job.finished[rank.index] = time.monotonic()
                        job.outcomes[rank.index] = outcome
        except (EOFError, OSError):
            pass  # it died: its exit status says how, at the next look

    def _check_step(self) -> None:
        with self._lock:
            job = self._job
            if job is None or not job.finished:
                return
            waiting = [i for i in range(len(self.devices)) if i not in job.finished]
            if not waiting:
                job.done.set()
                return
            first = min(job.finished, key=job.finished.__getitem__)
            late = time.monotonic() - job.finished[first] > OUT_OF_STEP_S
        if late:
            ranks = ", ".join(str(i) for i in waiting)
            self._take_down(
                f"rank {ranks} had not finished a job {OUT_OF_STEP_S:.0f} s after rank {first} "
                "did: the ranks are out of step"
            )

    def _take_down(self, reason: str) -> None:
        """End the whole group at once: a rank waiting on a dead one never returns by itself."""
        with self._going_down:
            log.error(
                "%s: %s; the group of %d ranks goes down", self.name, reason, len(self.devices)
            )
            if self._on_lost is not None:
                try:
                    self._on_lost(reason)
                except Exception:
                    log.exception(
                        "%s: could not hand its job back; its lease will run out", self.name
                    )
            for rank in self._ranks:
                if rank.process.poll() is None:
                    rank.process.kill()
            os._exit(1)


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


# --- the other ranks -------------------------------------------------------------------------


def follow(channel: Connection) -> None:
    """A rank other than 0: render what rank 0 sends, in step with it, until told to stop."""
    import torch.distributed as dist

    from moviola import logs

    setup: _Setup = channel.recv()
    logs.configure()
    name = f"{setup.name}/rank{setup.rank}"
    # Stopping is rank 0's to decide, between steps: a signal sent to every process (Ctrl-C, a
    # service manager) must not take one rank out of the exchange the others wait in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with(os.getppid(), name)
    store = dist.TCPStore("127.0.0.1", setup.store_port, setup.ranks, is_master=False)
    placement = dataclasses.replace(setup.options["placement"], device=setup.device)
    engine = Engine(**{**setup.options, "placement": placement})
    join_group(store, setup.rank, setup.ranks, setup.device)
    log.info("%s: ready on %s", name, setup.device)
    while True:
        try:
            message = channel.recv()
        except EOFError:
            break  # rank 0 is gone
        if message[0] == "stop":
            break
        _, seq, request = message
        outcome = _render(engine, request, name)
        try:
            channel.send(("done", seq, outcome))
        except OSError:
            break  # rank 0 is gone
    leave_group()


def _render(engine: Engine, request: GenerationRequest, name: str) -> str:
    try:
        engine.generate(request, cancel=shared_cancel())
    except GenerationCancelled:
        return "cancelled"
    except Exception as err:
        log.exception("%s: rendering failed", name)
        return f"failed: {type(err).__name__}: {err}"
    return "completed"


def _exit_with(leader: int, name: str) -> None:
    """Exit when rank 0 is gone, even from the middle of an exchange that will never end."""

    def watch() -> None:
        while os.getppid() == leader:
            time.sleep(LEADER_POLL_S)
        log.warning("%s: rank 0 (pid %d) is gone: exiting", name, leader)
        os._exit(1)

    threading.Thread(target=watch, name="leader-watch", daemon=True).start()


def main(argv: Sequence[str]) -> None:
    """`python -m moviola.jobs.gpu_group FD`: FD is this rank's end of rank 0's pipe."""
    follow(Connection(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
