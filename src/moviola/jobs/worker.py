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
from typing import Any

import numpy as np
from sqlalchemy import update
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
from moviola.jobs.service import shot_image_suffix
from moviola.render.files import RenderedFiles, preview_frames, render, render_storyboard
from moviola.render.frame_check import BLOCKED, FrameCheck, ModerationBlocked
from moviola.render.stamp import Stamp
from moviola.store import audit
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
        # Loaded once per process: the signing identity and, when enabled, the nudity check.
        self.stamp = Stamp.from_settings(settings)
        self.frame_check = FrameCheck.from_settings(settings)
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
            self._check_inputs(
                job,
                [
                    ("input_reference", request.image),
                    ("video", request.video),
                    ("video", request.extend),
                ],
            )
            options = dict(
                on_progress=beat.report,
                cancel=CancelToken(check=lambda: self._stopping.is_set() or beat.stopped()),
                crf=self.settings.crf,
                preset=self.settings.x264_preset,
                stamp=self.stamp_for(job),
            )
            video_path = self.blobs.path(job.id, "video", attempt=self.name)
            if job.kind == "storyboard":
                shots = self._shots(job)
                self._check_inputs(
                    job, [(f"shots[{i}].image", s.image) for i, s in enumerate(shots)]
                )
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
        if self._output_blocked(job, files):
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
        self._record_credentials(job.id, files.credentials, record["video"]["sha256"])
        if not queue.complete(self.sessions, job.id, self.name, files=record, result=result):
            self._discard(job.id)  # deleted or taken from us meanwhile: nobody wants the files

    def _request(self, job: Video) -> GenerationRequest:
        params = job.params
        kwargs: dict[str, Any] = {}
        limits = dict(
            max_pixels=self.settings.max_input_pixels,
            max_duration_s=self.settings.max_input_seconds,
        )
        source_path, *_ = self._source(job)
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

    def _source(self, job: Video) -> tuple[Path | None, str | None, str | None]:
        """The video a remix, edit or extension works on, its title in the credentials, and
        its media type when known (an imported video's recorded one)."""
        source_id = job.source_video_id or job.remixed_from_video_id
        if source_id:
            with self.sessions() as session:
                source = session.get(Video, source_id)
            if source is None or not source.files or source.deleted_at is not None:
                param = "video" if job.source_video_id else "video_id"
                raise InvalidRequestError(f"the source video {source_id} was deleted", param=param)
            entry = source.files["video"]
            path = Path(entry["path"])
            return path, f"{source_id}{path.suffix}", entry.get("mime")
        if job.input_path and job.kind in ("edit", "extend"):
            upload = Path(job.input_path)
            return upload, f"upload{upload.suffix}", None  # its type is read from its bytes
        return None, None, None

    # --- trust: moderation of inputs and outputs, credentials ----------------------------------

    def _check_inputs(self, job: Video, inputs: list[tuple[str, Any]]) -> None:
        """Uploaded and source media (named as the request named them) go through the same
        nudity check as outputs."""
        if self.frame_check is None:
            return
        for name, frames in inputs:
            if frames is None:
                continue
            decision = self.frame_check.check(np.asarray(frames), f"the {name}")
            if decision.blocked:
                self._audit(job, decision.as_audit("input"))
                raise ModerationBlocked(decision.reason, param=name)

    def _output_blocked(self, job: Video, files: RenderedFiles) -> bool:
        """Check the finished frames; a flagged video fails, its files kept for admins only
        (a failed video is never served) and named in the audit log."""
        if self.frame_check is None:
            return False
        decision = self.frame_check.check(preview_frames(files.result), "the generated video")
        kept = {"files": str(files.video.parent)} if decision.blocked else {}
        self._audit(job, {**decision.as_audit("output"), **kept})
        if not decision.blocked:
            return False
        status = queue.fail(
            self.sessions, job.id, self.name, code=BLOCKED, message=decision.reason, retry=False
        )
        if status is None:  # deleted or taken from us meanwhile
            self._discard(job.id)
        log.warning("%s: %s blocked by the output check: %s", self.name, job.id, decision.reason)
        return True

    def _audit(self, job: Video, detail: dict[str, Any]) -> None:
        if self.settings.audit:
            audit.record(
                self.sessions, actor=job.owner, action="moderation", video_id=job.id, detail=detail
            )

    def _record_credentials(self, job_id: str, credentials: dict | None, sha256: str) -> None:
        """Before completing: a completed video shows its credentials from the first read."""
        with self.sessions.begin() as session:
            session.execute(
                update(Video)
                .where(Video.id == job_id, Video.lease_owner == self.name)
                .values(credentials=credentials, content_sha256=sha256)
            )

    # --- for executors that render elsewhere (a Ray actor) -------------------------------------

    def prepare(self, job: Video) -> tuple[GenerationRequest, list[StoryboardShot] | None, Stamp]:
        """What rendering `job` elsewhere takes, read from the database and the blob folder as
        this worker would, its inputs checked: the request, a storyboard's shots, the stamp."""
        request = self._request(job)
        inputs = [("input_reference", request.image), ("video", request.video)]
        self._check_inputs(job, [*inputs, ("video", request.extend)])
        shots = None
        if job.kind == "storyboard":
            shots = self._shots(job)
            self._check_inputs(job, [(f"shots[{i}].image", s.image) for i, s in enumerate(shots)])
        return request, shots, self.stamp_for(job)

    def stamp_for(self, job: Video) -> Stamp:
        return self.stamp.from_source(*self._source(job)).for_video(job.id)

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
        message = self.blobs.hide_paths(message)
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
