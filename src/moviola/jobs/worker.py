"""A worker: claims jobs from the queue and renders them, one at a time, on one device.

It keeps its engine (and so its recently used pipelines) between jobs. While rendering it
heartbeats progress to the job's row; a heartbeat that comes back "stop" (the job was deleted
or its lease lost) cancels the render within a denoising step. Files are written into the
job's blob folder atomically, and the row is marked completed only once all of them exist.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.engine import (
    CancelToken,
    MemoryPreference,
    Placement,
    Progress,
    WeightsNotFoundError,
)
from moviola.engine.speed import SpeedSettings
from moviola.jobs import live, queue
from moviola.jobs.gpu_group import GroupEngine, worker_engine
from moviola.jobs.runner import JobRunner
from moviola.render.files import render
from moviola.render.outcome import classify
from moviola.store.blobs import Blobs
from moviola.store.models import Video

log = logging.getLogger("moviola.worker")

HEARTBEAT_S = 0.25  # progress is written at most this often


class Worker:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: Blobs,
        *,
        name: str | None = None,
        device: str | None = None,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.name = name or f"worker-{os.getpid()}"
        # With `gpus_per_worker` > 1, a group of processes, one per GPU (jobs/gpu_group.py).
        self.engine = worker_engine(
            models_dir=settings.models_path,
            placement=Placement(
                device or settings.device,
                MemoryPreference(settings.memory),
                settings.vae_tiling,
            ),
            max_loaded=settings.max_loaded_models,
            speed=SpeedSettings(settings.attention_backend, settings.compile),
            gpus=settings.gpus_per_worker,
            name=self.name,
            on_lost=self._group_lost,
        )
        self.runner = JobRunner(settings, sessions, blobs)
        self._stopping = threading.Event()
        self._disk_full = False

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        """Work until `stop` is set; an empty queue is polled every `poll_s`.

        A job in progress when `stop` is set stops within a step and goes back to the queue
        without using one of its attempts: shutting a worker down costs no job anything.
        """
        self._stopping = stop
        try:
            self.start()
            while not stop.is_set():
                if not self.run_one():
                    stop.wait(poll_s)
        finally:
            if isinstance(self.engine, GroupEngine):
                self.engine.close()

    def start(self) -> None:
        """Before the first claim: resolve the speed settings (an unusable attention backend
        stops the worker here, with the reason) and, where compiling is on, compile and warm
        the default model with one short generation, so the first job does not wait for it."""
        self.engine.check_speed_settings()
        if not self.engine.compiles():
            return
        model = self.settings.resolve_model(self.settings.default_model)
        try:
            seconds = self.engine.warm_up(model)
        except WeightsNotFoundError as err:
            log.info("%s: compile warm-up skipped: %s", self.name, err.message)
            return
        except Exception:  # jobs still run: they compile on first use instead
            log.warning("%s: compile warm-up of %s failed", self.name, model, exc_info=True)
            return
        log.info("%s: compiled and warmed %s in %.1f s", self.name, model, seconds)

    def run_one(self) -> bool:
        """Claim and process one job; False when the queue was empty — or when the disk is
        too full to write a video, in which case no job is taken until space is freed."""
        if not self._room_to_write():
            return False
        job = queue.claim(self.sessions, self.name)
        if job is None:
            return False
        self.process(job)
        return True

    def process(self, job: Video) -> None:
        log.info(
            "%s: rendering %s (%s, attempt %d)", self.name, job.id, job.engine_model, job.attempts
        )
        beat = _Heartbeat(self.sessions, job.id, self.name, live.preview_path(self.blobs, job.id))
        try:
            with _LeaseKeeper(self.sessions, job.id, self.name):
                self._process(job, beat)
        finally:
            beat.preview.unlink(missing_ok=True)  # the run's previews are done with

    def _process(self, job: Video, beat: _Heartbeat) -> None:
        try:
            work = self.runner.prepare(job)
            files = render(
                self.engine,
                work.request,
                self.blobs.path(job.id, "video", attempt=self.name),
                shots=work.shots,
                on_progress=beat.report,
                cancel=CancelToken(check=lambda: self._stopping.is_set() or beat.stopped()),
                crf=self.settings.crf,
                preset=self.settings.x264_preset,
                stamp=work.stamp,
                frame_check=self.runner.frame_check,
            )
            self.runner.finish(job, self.name, files, work.stamp, worker=self.name)
        except Exception as err:
            failure = classify(err)
            if failure is None:
                self._stopped(job)
                return
            if failure.retry:
                log.exception("%s: %s failed", self.name, job.id)
            self.runner.fail(job.id, self.name, failure)

    def _stopped(self, job: Video) -> None:
        """The render stopped: the worker is shutting down (the job goes back to the queue,
        no attempt used), or the job was cancelled or deleted (closed at once)."""
        if self._stopping.is_set():
            queue.release_worker(
                self.sessions, self.name, "the worker stopped", count_attempt=False
            )
            log.info("%s: %s handed back to the queue", self.name, job.id)
        else:
            queue.abandon(self.sessions, job.id, self.name)
            log.info("%s: %s stopped (cancelled or deleted)", self.name, job.id)
        self.runner.discard(job.id, self.name)

    def _group_lost(self, reason: str) -> None:
        """A rank of this worker's group died or fell out of step, and the group goes down:
        its job goes back to the queue, one attempt used, as a crashed worker's does."""
        queue.release_worker(self.sessions, self.name, f"worker {self.name}: {reason}")

    def _room_to_write(self) -> bool:
        """Whether the data dir has the operator's reserve free; said once when it runs out."""
        self.blobs.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.blobs.root).free
        full = free < self.settings.min_free_disk_bytes
        if full and not self._disk_full:
            log.warning(
                "%s: the data dir's disk has %d MB free, under the %d MB reserve: no job starts "
                "until space is freed",
                self.name,
                free // 2**20,
                self.settings.min_free_disk_bytes // 2**20,
            )
        self._disk_full = full
        return not full


class _LeaseKeeper:
    """Renews the job's lease from a thread while the job runs, so that a long step with no
    progress to report (loading a model, decoding a long video) is not taken for a dead
    worker; a worker that really dies stops renewing and its lease runs out."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, worker: str):
        self._args = (sessions, job_id, worker)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(queue.LEASE_S / 3):
            try:
                queue.heartbeat(*self._args)
            except Exception:  # the database briefly away: the next renewal tries again
                log.warning("renewing the lease of %s failed", self._args[1], exc_info=True)


class _Heartbeat:
    """Throttled progress writes that double as the cancel signal. Each carries the job's
    `live` state (`moviola.jobs.live`); a new stage, segment or preview is written at once."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, worker: str, preview: Path):
        self.sessions, self.job_id, self.worker = sessions, job_id, worker
        self.preview = preview
        self.live = live.LiveState()
        self._last = 0.0
        self._stop = False

    def report(self, progress: Progress) -> None:
        now = time.monotonic()
        urgent = self.live.update(progress)
        if progress.preview is not None:
            try:
                live.write_preview(self.preview, progress.preview)
                self.live.previewed()
                urgent = True
            except OSError:  # a preview is a nicety: a full disk says so elsewhere
                log.warning("writing the preview of %s failed", self.job_id, exc_info=True)
        if not urgent and now - self._last < HEARTBEAT_S:
            return
        self._last = now
        beat = queue.heartbeat(
            self.sessions,
            self.job_id,
            self.worker,
            progress=int(progress.fraction * 100),
            stage=progress.stage.value,
            live=self.live.snapshot(),
        )
        self._stop = self._stop or not beat.keep_going

    def stopped(self) -> bool:
        if not self._stop and time.monotonic() - self._last >= HEARTBEAT_S:
            self._last = time.monotonic()
            self._stop = not queue.heartbeat(self.sessions, self.job_id, self.worker).keep_going
        return self._stop
