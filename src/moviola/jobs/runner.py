"""What every executor does with a job around its render: prepare the work, then finish it.

The local worker renders on its own device; the Ray dispatcher hands the work to an actor and
gets files back. Both read a job's inputs the same way (`prepare`), and both end it through
the same steps (`finish`): a video the frame check blocked fails, kept for admins; otherwise it
is signed, each file hashed, and the row completed through the queue — or, if the job was
taken from this executor meanwhile, its files are removed. A render that raised ends through
`fail`, after `render.outcome.classify` decided whether another attempt may pass.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.audio import Audio
from moviola.config import Settings
from moviola.engine import GenerationRequest
from moviola.engine.storyboard import StoryboardShot
from moviola.errors import InvalidRequestError, MediaError
from moviola.jobs import queue
from moviola.jobs.characters import Characters
from moviola.jobs.references import load_for
from moviola.jobs.requests import Inputs, request_for
from moviola.render.files import RenderedFiles, audio_summary, seal
from moviola.render.frame_check import BLOCKED, FrameCheck, ModerationBlocked
from moviola.render.outcome import Failure
from moviola.render.stamp import Stamp
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import RenderResult, StoredFile, Video, VideoKind, VideoStatus

log = logging.getLogger("moviola.jobs")

SOURCE_DELETED = "source_deleted"


@dataclass(frozen=True)
class Work:
    """Everything rendering a job takes, read from its row and its blob folder."""

    request: GenerationRequest
    shots: list[StoryboardShot] | None  # a storyboard's
    stamp: Stamp  # how its files are marked and signed


class JobRunner:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        # Loaded once per process: the signing identity and, when enabled, the nudity check.
        self.stamp = Stamp.from_settings(settings)
        self.frame_check = FrameCheck.from_settings(settings)
        self.characters = Characters(settings, sessions, blobs)

    # --- before the render -------------------------------------------------------------------

    def prepare(self, job: Video) -> Work:
        """The job's request with its media decoded, its inputs checked (a flagged input
        raises `ModerationBlocked`), and its stamp."""
        source = self._source(job)
        kind = VideoKind(job.kind)
        inputs = Inputs()
        if kind is VideoKind.CREATE and job.input_path:
            inputs = Inputs(image=media.load_image(Path(job.input_path)))
        if kind is VideoKind.CREATE and job.params.get("last_frame"):
            from moviola.jobs.service import LAST_FRAME_SUFFIX

            last = media.load_image(self.blobs.input_path(job.id, LAST_FRAME_SUFFIX))
            inputs = Inputs(image=inputs.image, last_image=last)
        elif kind in (VideoKind.REMIX, VideoKind.EDIT):
            frames, audio = self._decode_source(job, source)
            inputs = Inputs(video=frames, audio=audio)
        elif kind is VideoKind.EXTEND:
            frames, audio = self._decode_source(job, source)
            inputs = Inputs(extend=frames, audio=audio)
        if kind is VideoKind.CREATE:
            references = load_for(self.characters, self.blobs, job.id, job.params)
            inputs = dataclasses.replace(inputs, references=references)
        request = request_for(job, inputs, self.settings)
        named = [
            ("input_reference", inputs.image),
            ("last_frame", inputs.last_image),
            ("video", inputs.video),
        ]
        self._check_inputs(job, [*named, ("video", inputs.extend)])
        self._check_inputs(job, [("reference_images", image) for image in inputs.references])
        shots = None
        if kind is VideoKind.STORYBOARD:
            shots = self._shots(job)
            self._check_inputs(job, [(f"shots[{i}].image", s.image) for i, s in enumerate(shots)])
        return Work(request, shots, self.stamp_for(job, source))

    def stamp_for(self, job: Video, source: _Source | None = None) -> Stamp:
        source = source or self._source(job)
        return self.stamp.from_source(source.path, source.title, source.media_type).for_video(
            job.id
        )

    # --- after the render --------------------------------------------------------------------

    def finish(
        self,
        job: Video,
        attempt: str,
        files: RenderedFiles,
        stamp: Stamp,
        *,
        worker: str,
        fence: queue.Fence | None = None,
    ) -> bool:
        """Store a finished render as the job's result; False when it did not complete (the
        frame check blocked it, or the job was cancelled, deleted or taken meanwhile)."""
        if self._blocked(job, attempt, files):
            return False
        self._source(job)  # deleted while it was rendered: said plainly, not stored
        files = seal(files, stamp)
        stored: dict[str, StoredFile] = {
            name: {"path": str(p), "bytes": p.stat().st_size, "sha256": media.sha256_file(p)}
            for name, p in files.paths().items()
        }
        done = queue.complete(
            self.sessions,
            job.id,
            attempt,
            files=stored,
            result=self._result(job, files, worker),
            credentials=files.credentials,
            fence=fence,
        )
        if not done:
            queue.abandon(self.sessions, job.id, attempt)  # if it was cancelled
            self.discard(job.id, attempt)
        return done

    def fail(self, job_id: str, attempt: str, failure: Failure) -> VideoStatus | None:
        """End the attempt as `failure` says; its files go either way (a retry renders afresh,
        into a folder of its own)."""
        message = self.blobs.hide_paths(failure.message)
        status = queue.fail(
            self.sessions,
            job_id,
            attempt,
            code=failure.code,
            message=message,
            retry=failure.retry,
        )
        self.discard(job_id, attempt)
        return status

    def discard(self, job_id: str, attempt: str) -> None:
        """Remove this attempt's files, unless the row points at them (an executor deposed
        without knowing it may have lost the race to complete the job to the one that took
        over) or they are a blocked video's, kept for admins. A purged video goes whole (one in
        the trash keeps its inputs, to be restored)."""
        with self.sessions() as session:
            row = session.get(Video, job_id)
        if row is None or row.purged_at is not None:
            self.blobs.remove(job_id)
            return
        folder = self.blobs.attempt_folder(job_id, attempt)
        referenced = [Path(f["path"]) for f in (row.files or {}).values() if f.get("path")]
        if any(p.is_relative_to(folder) for p in referenced):
            log.info("%s: keeping %s, which the stored video uses", job_id, folder.name)
            return
        if row.error_code == BLOCKED:
            return
        shutil.rmtree(folder, ignore_errors=True)

    # --- internals ---------------------------------------------------------------------------

    def _blocked(self, job: Video, attempt: str, files: RenderedFiles) -> bool:
        """A video the frame check flagged fails, its files kept for admins only (a failed
        video is never served) and named in the audit log."""
        decision = files.moderation
        if decision is None:
            if self.frame_check is None:
                return False
            # Rendered where no check ran (an actor sent by a replica with other settings):
            # checked here, on the stored video.
            frames, _ = self._decode(files.video)
            decision = self.frame_check.check(frames, "the generated video")
        kept = {"files": str(files.video.parent)} if decision.blocked else {}
        self._audit(job, {**decision.as_audit("output"), **kept})
        if not decision.blocked:
            return False
        status = queue.fail(
            self.sessions, job.id, attempt, code=BLOCKED, message=decision.reason, retry=False
        )
        if status is None:  # deleted or taken from us meanwhile
            self.discard(job.id, attempt)
        log.warning("%s blocked by the output check: %s", job.id, decision.reason)
        return True

    def _result(self, job: Video, files: RenderedFiles, worker: str) -> RenderResult:
        summary = files.summary
        result: RenderResult = {
            "seed": summary.seed,
            "render_size": list(summary.render_size),
            "frames": files.info.frames,
            "fps": float(files.info.fps),
            "duration": files.info.duration,
            "segments": summary.segments,
            "steps": summary.steps,
            "guidance": summary.guidance,
            "timings": summary.timings,
            "peak_memory": summary.peak_memory,
            "memory": summary.memory,
            "worker": worker,
            "audio": audio_summary(files.info, summary.audio_kind),
        }
        if files.shots:
            result["shots"] = [
                {**asked, "index": s.index, "start_frame": s.start_frame, "frames": s.frames}
                for asked, s in zip(job.params["shots"], files.shots, strict=True)
            ]
        return result

    def _source(self, job: Video) -> _Source:
        """The video a remix, edit or extension works on; a source deleted since the request
        was accepted fails the job plainly (no retry: it will not come back)."""
        source_id = job.source_video_id or job.remixed_from_video_id
        if source_id:
            with self.sessions() as session:
                source = session.get(Video, source_id)
            if source is None or not source.files or source.deleted_at is not None:
                raise InvalidRequestError(
                    f"the source video {source_id} was deleted before this "
                    f"{VideoKind(job.kind).value} finished",
                    param="video" if job.source_video_id else "video_id",
                    code=SOURCE_DELETED,
                )
            entry = source.files["video"]
            path = Path(entry["path"])
            return _Source(path, f"{source_id}{path.suffix}", entry.get("mime"))
        if job.input_path and job.kind in (VideoKind.EDIT, VideoKind.EXTEND):
            upload = Path(job.input_path)
            return _Source(upload, f"upload{upload.suffix}", None)  # typed from its bytes
        return _Source(None, None, None)

    def _decode_source(self, job: Video, source: _Source) -> tuple[np.ndarray, Audio | None]:
        """The source's frames and its sound (None: it has none)."""
        assert source.path is not None
        try:
            frames, _ = self._decode(source.path)
            audio = media.decode_audio(source.path, max_duration_s=self.settings.max_input_seconds)
        except (OSError, MediaError):
            self._source(job)  # gone meanwhile: that is the reason, not the decoder's error
            raise
        return frames, audio

    def _decode(self, path: Path) -> tuple[np.ndarray, media.VideoInfo]:
        return media.decode_frames(
            path,
            max_pixels=self.settings.max_input_pixels,
            max_duration_s=self.settings.max_input_seconds,
            max_bytes=self.settings.max_decode_bytes,
        )

    def _shots(self, job: Video) -> list[StoryboardShot]:
        from moviola.jobs.service import shot_image_suffix

        shots = []
        for index, shot in enumerate(job.params["shots"]):
            image = None
            if shot.get("image"):
                image = media.load_image(self.blobs.input_path(job.id, shot_image_suffix(index)))
            # The frames of the storyboard's characters this shot names.
            cast = tuple(self.characters.reference_images(shot.get("characters") or []))
            shots.append(StoryboardShot(shot["prompt"], float(shot["seconds"]), image, cast))
        return shots

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

    def _audit(self, job: Video, detail: dict[str, Any]) -> None:
        if self.settings.audit:
            audit.record(
                self.sessions, actor=job.owner, action="moderation", video_id=job.id, detail=detail
            )


@dataclass(frozen=True)
class _Source:
    path: Path | None
    title: str | None  # its name in the credentials
    media_type: str | None  # an imported video's recorded type; None: sniffed from its bytes
