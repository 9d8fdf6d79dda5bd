"""A worker: claims jobs from the queue and renders them, one at a time, on one device.

It keeps its engine (and so its recently used pipelines) between jobs. While rendering it
heartbeats progress to the job's row; a heartbeat that comes back "stop" (the job was deleted
or its lease lost) cancels the render within a denoising step. Files are written into the
job's blob folder atomically, and the row is marked completed only once all of them exist.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.engine import (
    CancelToken,
    Engine,
    GenerationCancelled,
    GenerationRequest,
    Placement,
    Progress,
    parse_size,
)
from moviola.engine.request import DEFAULT_STRENGTH
from moviola.engine.storyboard import StoryboardShot
from moviola.errors import InvalidRequestError, MoviolaError
from moviola.jobs import queue
from moviola.jobs.render import render, render_storyboard
from moviola.jobs.service import shot_image_suffix
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
        self.engine = Engine(
            models_dir=settings.models_path,
            placement=Placement(device or settings.device, settings.offload, settings.vae_tiling),
            max_loaded=settings.max_loaded_models,
        )
        self._stopping = threading.Event()

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        """Work until `stop` is set; an empty queue is polled every `poll_s`.

        A job in progress when `stop` is set stops within a step and goes back to the queue
        without using one of its attempts: shutting a worker down costs no job anything.
        """
        self._stopping = stop
        while not stop.is_set():
            if not self.run_one():
                stop.wait(poll_s)

    def run_one(self) -> bool:
        """Claim and process one job; False when the queue was empty."""
        job = queue.claim(self.sessions, self.name)
        if job is None:
            return False
        self.process(job)
        return True

    def process(self, job: Video) -> None:
        log.info(
            "%s: rendering %s (%s, attempt %d)", self.name, job.id, job.engine_model, job.attempts
        )
        beat = _Heartbeat(self.sessions, job.id, self.name)
        with _LeaseKeeper(self.sessions, job.id, self.name):
            self._process(job, beat)

    def _process(self, job: Video, beat: _Heartbeat) -> None:
        try:
            request = self._request(job)
            options = dict(
                on_progress=beat.report,
                cancel=CancelToken(check=lambda: self._stopping.is_set() or beat.stopped()),
                crf=self.settings.crf,
                preset=self.settings.x264_preset,
            )
            video_path = self.blobs.path(job.id, "video", attempt=self.name)
            if job.kind == "storyboard":
                shots = self._shots(job)
                files = render_storyboard(self.engine, shots, request, video_path, **options)
            else:
                files = render(self.engine, request, video_path, **options)
        except GenerationCancelled:
            if self._stopping.is_set():
                queue.release_worker(
                    self.sessions, self.name, "the worker stopped", count_attempt=False
                )
                log.info("%s: %s handed back to the queue", self.name, job.id)
            else:
                queue.abandon(self.sessions, job.id, self.name)
                log.info("%s: %s stopped (cancelled or deleted)", self.name, job.id)
            self._discard(job.id)
            return
        except InvalidRequestError as err:  # this request can never succeed: do not retry
            self._fail(job, err.code, err.message, retry=False)
            return
        except MoviolaError as err:
            self._fail(job, err.code, err.message, retry=False)
            return
        except Exception as err:  # e.g. out of memory: another attempt may succeed
            log.exception("%s: %s failed", self.name, job.id)
            self._fail(job, "generation_failed", f"{type(err).__name__}: {err}", retry=True)
            return

        variants = {
            "video": files.video,
            "thumbnail": files.thumbnail,
            "spritesheet": files.spritesheet,
            **{f"shot_{shot.index}": shot.path for shot in files.shots},
        }
        record = {
            name: {
                "path": str(path),
                "bytes": path.stat().st_size,
                "sha256": media.sha256_file(path),
            }
            for name, path in variants.items()
        }
        result = {
            "seed": files.result.seed,
            "render_size": list(files.result.render_size),
            "frames": files.info.frames,
            "fps": float(files.info.fps),
            "duration": files.info.duration,
            "segments": files.result.segments,
            "steps": files.result.steps,
            "guidance": files.result.guidance,
            "timings": files.timings,
            "worker": self.name,
        }
        if files.shots:
            result["shots"] = [
                {**asked, "index": s.index, "start_frame": s.start_frame, "frames": s.frames}
                for asked, s in zip(job.params["shots"], files.shots, strict=True)
            ]
        if not queue.complete(self.sessions, job.id, self.name, files=record, result=result):
            self._discard(job.id)  # deleted or taken from us meanwhile: nobody wants the files

    def _request(self, job: Video) -> GenerationRequest:
        params = job.params
        kwargs: dict[str, Any] = {}
        limits = dict(
            max_pixels=self.settings.max_input_pixels,
            max_duration_s=self.settings.max_input_seconds,
        )
        source_path = None
        source_id = job.source_video_id or job.remixed_from_video_id
        if source_id:
            with self.sessions() as session:
                source = session.get(Video, source_id)
            if source is None or not source.files or source.deleted_at is not None:
                param = "video" if job.source_video_id else "video_id"
                raise InvalidRequestError(f"the source video {source_id} was deleted", param=param)
            source_path = Path(source.files["video"]["path"])
        elif job.input_path and job.kind in ("edit", "extend"):
            source_path = Path(job.input_path)

        if job.kind == "create" and job.input_path:
            kwargs["image"] = media.load_image(Path(job.input_path))
        elif job.kind in ("remix", "edit"):
            kwargs["video"], _ = media.decode_frames(source_path, **limits)
            kwargs["strength"] = params.get("strength", DEFAULT_STRENGTH)
        elif job.kind == "extend":
            kwargs["extend"], _ = media.decode_frames(source_path, **limits)

        seconds = None
        if job.kind == "create":
            seconds = float(job.seconds)
        elif job.kind == "extend":
            seconds = float(params["extend_seconds"])
        return GenerationRequest(
            prompt=job.prompt or "",
            model=job.engine_model,
            negative_prompt=params.get("negative_prompt"),
            size=parse_size(job.size),
            seconds=seconds,
            fps=params.get("fps"),
            steps=params.get("num_inference_steps"),
            guidance=params.get("guidance_scale"),
            seed=params.get("seed"),
            max_prompt_chars=self.settings.max_prompt_chars,
            max_seconds=self.settings.max_seconds,
            **kwargs,
        )

    def _shots(self, job: Video) -> list[StoryboardShot]:
        shots = []
        for index, shot in enumerate(job.params["shots"]):
            image = None
            if shot.get("image"):
                path = self.blobs.input_path(job.id, shot_image_suffix(index))
                image = media.load_image(path)
            shots.append(StoryboardShot(shot["prompt"], float(shot["seconds"]), image))
        return shots

    def _fail(self, job: Video, code: str, message: str, *, retry: bool) -> None:
        # The message is shown to API clients: no paths of this server's disk in it.
        message = re.sub(re.escape(str(self.blobs.root)) + r"[^\s:]*", "the stored file", message)
        status = queue.fail(
            self.sessions, job.id, self.name, code=code, message=message, retry=retry
        )
        if status != "queued":
            self._discard_outputs(job.id)

    def _discard(self, job_id: str) -> None:
        with self.sessions() as session:
            row = session.get(Video, job_id)
            deleted = row is None or row.deleted_at is not None
        if deleted:
            self.blobs.remove(job_id)
        else:
            self._discard_outputs(job_id)

    def _discard_outputs(self, job_id: str) -> None:
        """Remove this worker's own attempt, never another's (which may be the finished one)."""
        shutil.rmtree(self.blobs.attempt_folder(job_id, self.name), ignore_errors=True)


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
    """Throttled progress writes that double as the cancel signal."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, worker: str):
        self.sessions, self.job_id, self.worker = sessions, job_id, worker
        self._last = 0.0
        self._stage: str | None = None
        self._stop = False

    def report(self, progress: Progress) -> None:
        now = time.monotonic()
        stage = progress.stage.value
        if stage == self._stage and now - self._last < HEARTBEAT_S:
            return
        self._last, self._stage = now, stage
        beat = queue.heartbeat(
            self.sessions,
            self.job_id,
            self.worker,
            progress=int(progress.fraction * 100),
            stage=stage,
        )
        self._stop = self._stop or not beat.keep_going

    def stopped(self) -> bool:
        if not self._stop and time.monotonic() - self._last >= HEARTBEAT_S:
            self._last = time.monotonic()
            self._stop = not queue.heartbeat(self.sessions, self.job_id, self.worker).keep_going
        return self._stop
