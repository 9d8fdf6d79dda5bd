"""The render actor: one per GPU of a Ray cluster, rendering the jobs the dispatcher gives it.

It keeps an `Engine` for its whole life, so its recently used pipelines stay loaded between
jobs (the dispatcher sends a job preferably to an actor that already holds its model). Each
job renders into a temporary folder of the actor's own, and the files come back as bytes
through Ray's object store: GPU nodes need neither the database nor a shared file system.

The render runs on a thread of the actor, so that `poll` answers while it works: that is how
progress reaches the database. The actor remembers the job it runs and the outcome of the ones
it finished until the dispatcher has stored them (`forget`), so a dispatcher that takes over
from a dead one collects those outcomes instead of rendering the jobs again. An actor whose
process dies comes back empty (Ray restarts it): its job is then unknown to it, which is how
the dispatcher learns that the attempt was lost.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("moviola.ray")

ACTOR_PREFIX = "moviola-render-"
KEEP_FINISHED = 32  # finished outcomes kept for a dispatcher that has not collected them


def actor_name(index: int) -> str:
    return f"{ACTOR_PREFIX}{index}"


def actor_of(lease_owner: str | None) -> str | None:
    """The actor an attempt's lease owner (`moviola-render-0.1a2b3c`) names, if any."""
    if not lease_owner or not lease_owner.startswith(ACTOR_PREFIX):
        return None
    return lease_owner.rsplit(".", 1)[0]


@dataclass
class _Task:
    job_id: str
    attempt: str  # the lease owner the dispatcher claimed the job under
    model: str
    state: str = "running"  # running | done | failed | cancelled
    progress: int = 0
    stage: str | None = "queued"
    outcome: dict[str, Any] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None


class RenderActor:
    """Made a Ray actor by `remote_class()`; plain here so that it imports without Ray."""

    def __init__(self, name: str, options: dict[str, Any]):
        from moviola.config import Settings
        from moviola.engine import Engine, MemoryPreference, Placement
        from moviola.engine.speed import SpeedSettings

        # This node's own settings say where its weights are; the server decides the rest.
        local = Settings()
        device = "cuda" if options.get("gpus", 0) > 0 else "cpu"
        self.name = name
        self.options = options
        self.engine = Engine(
            models_dir=local.models_path,
            placement=Placement(
                device,
                MemoryPreference(options.get("memory", "auto")),
                options.get("vae_tiling"),
            ),
            max_loaded=int(options.get("max_loaded_models", 1)),
            speed=SpeedSettings(
                options.get("attention_backend", "auto"), options.get("compile", "auto")
            ),
        )
        # An unusable attention backend or compile setting fails the actor's start, not a job.
        self.engine.check_speed_settings()
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._renders: dict[str, int] = {}  # job id → renders started here, for operators
        self._frame_checks: dict[tuple[float, int], Any] = {}
        self._ended: dict[str, str] = {}  # job id → how its last render here ended

    # --- what the dispatcher calls ------------------------------------------------------------

    def start(self, job_id: str, attempt: str, work: dict[str, Any]) -> str:
        """Begin rendering: "started", "known" (this attempt is already here: nothing to do),
        or "busy" (another job runs; one job at a time per device)."""
        with self._lock:
            task = self._tasks.get(job_id)
            if task is not None and task.attempt == attempt:
                return "known"
            if any(t.state == "running" for t in self._tasks.values()):
                return "busy"
            task = _Task(job_id, attempt, work["request"].model)
            self._tasks[job_id] = task
            self._renders[job_id] = self._renders.get(job_id, 0) + 1
        threading.Thread(
            target=self._render, args=(task, work), name=f"render-{job_id}", daemon=True
        ).start()
        return "started"

    def poll(self, job_id: str, attempt: str) -> dict[str, Any]:
        task = self._tasks.get(job_id)
        if task is None or task.attempt != attempt:
            return {"state": "unknown"}
        answer = {"state": task.state, "progress": task.progress, "stage": task.stage}
        if task.state != "done" and task.outcome is not None:
            answer.update(task.outcome)  # an error's code, message and whether to retry
        return answer

    def wait(self, job_id: str, attempt: str, timeout_s: float) -> dict[str, Any]:
        """`poll`, once the job has finished or `timeout_s` has passed, whichever is first."""
        task = self._tasks.get(job_id)
        if task is not None and task.attempt == attempt:
            task.finished.wait(timeout_s)
        return self.poll(job_id, attempt)

    def collect(self, job_id: str, attempt: str) -> dict[str, Any] | None:
        """A finished job's files and summary (None when not finished here)."""
        task = self._tasks.get(job_id)
        if task is None or task.attempt != attempt or task.state != "done":
            return None
        return task.outcome

    def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel.set()

    def forget(self, job_id: str) -> None:
        """The dispatcher has stored (or given up on) this job: drop what is kept of it."""
        with self._lock:
            task = self._tasks.get(job_id)
            if task is not None and task.state != "running":
                del self._tasks[job_id]

    def info(self) -> dict[str, Any]:
        import ray

        context = ray.get_runtime_context()
        with self._lock:
            tasks = [
                {"job_id": t.job_id, "attempt": t.attempt, "state": t.state}
                for t in self._tasks.values()
            ]
        return {
            "name": self.name,
            "pid": os.getpid(),
            "node_id": context.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "gpus": context.get_accelerator_ids().get("GPU", []),
            "loaded_models": self.engine.pipelines.loaded(),
            "tasks": tasks,
            "renders": dict(self._renders),
            "ended": dict(self._ended),
        }

    # --- the render thread --------------------------------------------------------------------

    def _render(self, task: _Task, work: dict[str, Any]) -> None:
        from moviola.engine import CancelToken
        from moviola.render.files import render
        from moviola.render.outcome import classify
        from moviola.render.stamp import Stamp

        folder = Path(tempfile.mkdtemp(prefix="moviola-render-"))
        try:
            files = render(
                self.engine,
                work["request"],
                folder / "video.mp4",
                shots=work.get("shots"),
                on_progress=lambda p: self._progress(task, p),
                cancel=CancelToken(check=task.cancel.is_set),
                crf=work["crf"],
                preset=work["preset"],
                # Marked here, on the frames; signed by the dispatcher, which holds the key.
                stamp=Stamp(watermark=work["watermark"]) if work.get("watermark") else None,
                frame_check=self._frame_check(work.get("nsfw")),
            )
            self._finish(task, "done", _outcome(files))
        except Exception as err:
            failure = classify(err)
            if failure is None:
                self._finish(task, "cancelled", None)
                return
            if failure.retry:
                log.exception("%s: %s failed", self.name, task.job_id)
            self._finish(task, "failed", dataclasses.asdict(failure))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _frame_check(self, nsfw: dict[str, Any] | None) -> Any:
        """The output nudity check a local worker runs, here on the frames still in memory
        (not on the stored video after decoding it again); the dispatcher applies its
        verdict. Its detector stays loaded between jobs."""
        if not nsfw:
            return None
        from moviola.render.frame_check import FrameCheck

        key = (float(nsfw["threshold"]), int(nsfw["samples"]))
        if self._frame_checks.get(key) is None:
            self._frame_checks[key] = FrameCheck(*key)
        return self._frame_checks[key]

    def _progress(self, task: _Task, progress: Any) -> None:
        task.progress = max(0, min(99, int(progress.fraction * 100)))
        task.stage = progress.stage.value

    def _finish(self, task: _Task, state: str, outcome: dict[str, Any] | None) -> None:
        with self._lock:
            task.outcome, task.state, task.finished_at = outcome, state, time.time()
            task.finished.set()
            self._ended[task.job_id] = state
            finished = sorted(
                (t for t in self._tasks.values() if t.finished_at is not None),
                key=lambda t: t.finished_at or 0.0,
            )
            for old in finished[:-KEEP_FINISHED]:  # a dispatcher that never came back for them
                self._tasks.pop(old.job_id, None)


def _outcome(files: Any) -> dict[str, Any]:
    """A finished render as it travels back: each file's bytes by variant, how it was made,
    and the frame check's verdict."""
    moderation = files.moderation
    return {
        "files": {name: path.read_bytes() for name, path in files.paths().items()},
        "shots": [
            {"index": s.index, "start_frame": s.start_frame, "frames": s.frames}
            for s in files.shots
        ],
        "summary": dataclasses.asdict(files.summary),
        "moderation": dataclasses.asdict(moderation) if moderation is not None else None,
    }


def spawn(name: str, namespace: str, options: dict[str, Any]) -> Any:
    """The actor `name`, started on the cluster unless it runs there already; placed by
    `options` (GPUs and CPUs per actor).

    Restarted by Ray when its process dies (it comes back empty); its calls are never retried
    (a lost call is a lost attempt, and the dispatcher decides what to do about it). Detached:
    actors outlive the replica that made them, so that the next dispatcher finds them busy
    with, or holding the results of, the jobs that were in flight.
    """
    import ray

    return (
        ray.remote(RenderActor)
        .options(
            name=name,
            namespace=namespace,
            get_if_exists=True,
            num_gpus=options.get("gpus", 0),
            num_cpus=options.get("cpus", 1),
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=8,  # polls and waits answer while a render runs
            lifetime="detached",
        )
        .remote(name, options)
    )
