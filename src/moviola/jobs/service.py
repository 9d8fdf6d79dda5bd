"""What the API (and the Studio) can do with videos: create, remix, edit, extend, read, delete.

Every request is checked completely — model, sizes, durations, uploaded media, limits — before
anything is written, so a refused request changes nothing. Ownership is checked on every read:
another key's video is as absent as one that never existed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.engine import GenerationRequest, get_model, parse_size, plan
from moviola.engine.loading import find_weights
from moviola.engine.request import DEFAULT_STRENGTH
from moviola.engine.storyboard import StoryboardShot, plan_storyboard
from moviola.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    TooLargeError,
    TooManyRequestsError,
)
from moviola.jobs.moderation import PromptPolicy, quarantine
from moviola.media.sniff import HEAD_BYTES, sniff
from moviola.render.frame_check import BLOCKED, ModerationBlocked
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import Video, new_id

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
EXTENSION_SECONDS = (4, 8, 12, 16, 20)

# Moviola's extra fields on create, with their type: a Sora client never sends them.
EXTRAS = {
    "seed": int,
    "negative_prompt": str,
    "num_inference_steps": int,
    "guidance_scale": float,
    "fps": int,
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key's id, or None for the keyless loopback user."""

    owner: str | None = None


@dataclass(frozen=True)
class Upload:
    """A file part of a request."""

    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class Shot:
    """One shot of a storyboard: what happens, for how long, and optionally its first frame."""

    prompt: Any
    seconds: Any = DEFAULT_SECONDS
    image: Upload | None = None


class VideoService:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: Blobs):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.policy = PromptPolicy(settings)

    # --- creating ------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        *,
        prompt: Any,
        model: str | None = None,
        seconds: Any = None,
        size: str | None = None,
        image: Upload | None = None,
        extras: dict[str, Any] | None = None,
    ) -> Video:
        params = self._extras(extras or {})
        return self._submit(
            caller,
            kind="create",
            prompt=prompt,
            model=model,
            seconds=seconds,
            size=size,
            params=params,
            image=image,
        )

    def remix(
        self,
        caller: Caller,
        video_id: str,
        *,
        prompt: Any,
        extras: dict | None = None,
        strength: Any = None,
    ):
        """`strength` (0–1, how far from the source it may go) defaults to the API's."""
        source = self._finished(caller, video_id, "remix")
        try:
            strength = DEFAULT_STRENGTH if strength in (None, "") else float(strength)
        except (TypeError, ValueError):
            raise InvalidRequestError("strength must be a number", param="strength") from None
        params = {**source.params, **self._extras(extras or {}), "strength": strength}
        params.pop("seed", None)
        return self._submit(
            caller,
            kind="remix",
            prompt=prompt,
            model=source.model,
            seconds=source.seconds,
            size=source.size,
            params=params,
            source=source,
            remixed_from=source.id,
        )

    def edit(
        self,
        caller: Caller,
        *,
        prompt: Any,
        video_id: str | None = None,
        upload: Upload | None = None,
        model: str | None = None,
        extras: dict | None = None,
    ) -> Video:
        params = {**self._extras(extras or {}), "strength": DEFAULT_STRENGTH}
        return self._from_source(caller, "edit", prompt, video_id, upload, model, params)

    def extend(
        self,
        caller: Caller,
        *,
        prompt: Any,
        seconds: Any,
        video_id: str | None = None,
        upload: Upload | None = None,
        model: str | None = None,
        extras: dict | None = None,
    ) -> Video:
        added = _seconds(seconds if seconds is not None else "4")
        if added not in EXTENSION_SECONDS:
            raise InvalidRequestError(
                f"an extension adds 4, 8, 12, 16 or 20 seconds, not {seconds}", param="seconds"
            )
        params = {**self._extras(extras or {}), "extend_seconds": added}
        return self._from_source(caller, "extend", prompt, video_id, upload, model, params)

    def _from_source(
        self,
        caller: Caller,
        kind: str,
        prompt: Any,
        video_id: str | None,
        upload: Upload | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Video:
        """An edit or extension of a stored video (its model by default) or an upload."""
        source = self._source(caller, video_id, upload, kind)
        return self._submit(
            caller,
            kind=kind,
            prompt=prompt,
            model=source.model if isinstance(source, Video) else model,
            seconds=None,
            size=None,
            params=params,
            source=source,
        )

    def storyboard(
        self,
        caller: Caller,
        *,
        shots: list[Shot],
        model: str | None = None,
        size: str | None = None,
        extras: dict[str, Any] | None = None,
    ) -> Video:
        """One job that renders the shots in order, each continuing from the one before (or
        from its own image), into one video; each shot is kept as a file of its own too."""
        settings = self.settings
        params = self._extras(extras or {})
        model = model or DEFAULT_MODEL
        engine_model = settings.resolve_model(model)
        spec = get_model(engine_model)
        find_weights(spec, settings.models_path)
        uploads = [shot.image for shot in shots if shot.image is not None]
        upload_bytes = sum(len(upload.data) for upload in uploads)
        if upload_bytes > settings.max_upload_bytes:
            raise TooLargeError(
                f"the images are {upload_bytes:,} bytes; the limit is "
                f"{settings.max_upload_bytes:,}",
                param="shots",
            )
        planned: list[StoryboardShot] = []
        for index, shot in enumerate(shots):
            if not isinstance(shot.prompt, str):
                raise InvalidRequestError(
                    f"shot {index + 1}: prompt is required", param=f"shots[{index}].prompt"
                )
            image = None
            if shot.image is not None:
                name = f"shots[{index}].image"
                try:
                    image = media.load_image(
                        shot.image.data, max_pixels=settings.max_input_pixels, name=name
                    )
                except InvalidRequestError as err:
                    err.param = name  # so a form can show it beside the shot's image
                    raise
            seconds = _seconds(shot.seconds if shot.seconds is not None else DEFAULT_SECONDS)
            planned.append(StoryboardShot(shot.prompt, seconds, image))
        base = GenerationRequest(
            prompt="",
            model=engine_model,
            negative_prompt=params.get("negative_prompt"),
            size=parse_size(size or DEFAULT_SIZE),
            fps=params.get("fps"),
            steps=params.get("num_inference_steps"),
            guidance=params.get("guidance_scale"),
            seed=params.get("seed"),
            max_prompt_chars=settings.max_prompt_chars,
            max_seconds=settings.max_seconds,
        )
        plans = plan_storyboard(planned, base)
        self._check_queue(caller)
        self._moderate(caller, "storyboard", "\n".join(shot.prompt for shot in planned))

        video_id = new_id("video")
        first = plans[0]
        frames = sum(p.total_frames - p.existing_frames for p in plans)
        params = {
            **params,
            "seed": first.seed,
            "shots": [
                {"prompt": shot.prompt, "seconds": shot.seconds, "image": shot.image is not None}
                for shot in planned
            ],
        }
        row = Video(
            id=video_id,
            seq=time.time_ns(),
            owner=caller.owner,
            kind="storyboard",
            status="queued",
            model=model,
            engine_model=engine_model,
            prompt="\n".join(shot.prompt for shot in planned),
            seconds=_format_seconds(frames / first.fps),
            size=f"{first.size[0]}x{first.size[1]}",
            params=params,
            max_attempts=settings.max_attempts,
        )
        for index, shot in enumerate(shots):
            if shot.image is not None:
                path = self.blobs.input_path(video_id, shot_image_suffix(index))
                path.parent.mkdir(parents=True, exist_ok=True)
                media.atomic_write_bytes(path, shot.image.data)
        with self.sessions.begin() as session:
            session.add(row)
            self._audit(session, caller, "storyboard", video_id, {"model": model})
        return row

    # --- reading and deleting --------------------------------------------------------------

    def get(self, caller: Caller, video_id: str) -> Video:
        with self.sessions() as session:
            video = session.get(Video, video_id)
        if video is None or video.deleted_at is not None or video.owner != caller.owner:
            raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
        return video

    def list(
        self, caller: Caller, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> tuple[list[Video], bool]:
        if not 1 <= limit <= 100:
            raise InvalidRequestError("limit must be 1–100", param="limit")
        if order not in ("asc", "desc"):
            raise InvalidRequestError("order must be asc or desc", param="order")
        query = select(Video).where(
            Video.owner.is_(None) if caller.owner is None else Video.owner == caller.owner,
            Video.deleted_at.is_(None),
        )
        if after is not None:
            # A cursor deleted since the last page still marks a place in the list.
            with self.sessions() as session:
                cursor = session.get(Video, after)
            if cursor is None or cursor.owner != caller.owner:
                raise NotFoundError(f"no video with id {after!r}", param="after")
            query = query.where(
                Video.seq < cursor.seq if order == "desc" else Video.seq > cursor.seq
            )
        query = query.order_by(Video.seq.desc() if order == "desc" else Video.seq.asc())
        with self.sessions() as session:
            rows = list(session.execute(query.limit(limit + 1)).scalars())
        return rows[:limit], len(rows) > limit

    def delete(self, caller: Caller, video_id: str) -> None:
        """Gone at once for every reader; a running job stops within a step; files removed —
        except a blocked video's, which move to the admins' quarantine (first: a crash
        before the row is marked leaves them safe, never a deleted row's folder the sweeper
        would remove)."""
        video = self.get(caller, video_id)
        detail = None
        if video.status == "failed" and video.error_code == BLOCKED:
            kept = quarantine(self.blobs, video.id, self.settings.data_dir)
            detail = {"error_code": BLOCKED, "quarantined": str(kept) if kept else None}
        with self.sessions.begin() as session:
            row = session.get(Video, video.id)
            row.deleted_at = time.time()
            row.cancel_requested = True
            self._audit(session, caller, "delete", video.id, detail)
        if video.status != "in_progress" and detail is None:
            self.blobs.remove(video.id)
        # A running job's worker removes the files when it stops (it sees the cancel).

    def content(self, caller: Caller, video_id: str, variant: str) -> tuple[Path, str]:
        from moviola.store.blobs import VARIANTS

        # A storyboard's shots (`shot_1` …) are served too, as the video is.
        shot = variant.startswith("shot_") and variant[5:].isdigit()
        if variant not in VARIANTS and not shot:
            raise InvalidRequestError(
                "variant must be video, thumbnail or spritesheet", param="variant"
            )
        video = self.get(caller, video_id)
        if shot and video.status == "completed" and variant not in (video.files or {}):
            raise NotFoundError(f"video {video_id} has no {variant}", param="variant")
        if video.status != "completed" or not video.files or variant not in video.files:
            raise ConflictError(
                f"video {video_id} is {video.status}; its content is available once completed",
                param="video_id",
            )
        path = Path(video.files[variant]["path"])
        if not path.is_file():
            raise NotFoundError(f"the {variant} of {video_id} has expired", param="variant")
        if variant == "video" or shot:  # not previews: pages fetch those all the time
            with self.sessions.begin() as session:
                self._audit(session, caller, "download", video_id, {"variant": variant})
        # An imported video is served as the file it is (a GIF, a WebM), under its own type.
        recorded = video.files[variant].get("mime")
        return path, recorded or ("video/mp4" if shot else VARIANTS[variant][1])

    # --- internals ---------------------------------------------------------------------------

    def _finished(self, caller: Caller, video_id: str, action: str) -> Video:
        video = self.get(caller, video_id)
        if video.status != "completed":
            raise ConflictError(
                f"cannot {action} video {video_id}: it is {video.status}, not completed",
                param="video_id",
            )
        if not Path(video.files["video"]["path"]).is_file():
            raise ConflictError(
                f"cannot {action} video {video_id}: its files have expired", param="video_id"
            )
        return video

    def _source(
        self, caller: Caller, video_id: str | None, upload: Upload | None, action: str
    ) -> Video | Upload:
        if (video_id is None) == (upload is None):
            raise InvalidRequestError(
                'give the video to work on as an upload or as {"id": …}, one of the two',
                param="video",
            )
        return self._finished(caller, video_id, action) if video_id else upload

    def _extras(self, extras: dict[str, Any]) -> dict[str, Any]:
        params = {}
        for name, kind in EXTRAS.items():
            value = extras.get(name)
            if value is None or value == "":
                continue
            try:
                params[name] = kind(value) if kind is not int else int(str(value))
            except (TypeError, ValueError):
                what = {int: "an integer", float: "a number"}.get(kind, "text")
                raise InvalidRequestError(f"{name} must be {what}", param=name) from None
        return params

    def _submit(
        self,
        caller: Caller,
        *,
        kind: str,
        prompt: Any,
        model: str | None,
        seconds: Any,
        size: str | None,
        params: dict[str, Any],
        image: Upload | None = None,
        source: Video | Upload | None = None,
        remixed_from: str | None = None,
    ) -> Video:
        settings = self.settings
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompt is required", param="prompt")
        model = model or DEFAULT_MODEL
        engine_model = settings.resolve_model(model)
        spec = get_model(engine_model)
        find_weights(spec, settings.models_path)  # a model this server lacks: refused now

        upload_bytes = sum(len(u.data) for u in (image, source) if isinstance(u, Upload))
        if upload_bytes > settings.max_upload_bytes:
            raise TooLargeError(
                f"the upload is {upload_bytes:,} bytes; the limit is {settings.max_upload_bytes:,}",
                param="input_reference" if image else "video",
            )

        stand_in: dict[str, Any] = {}
        input_suffix = None
        if image is not None:
            media.load_image(
                image.data, max_pixels=settings.max_input_pixels, name="input_reference"
            )
            stand_in["image"], input_suffix = object(), ".img"
        if source is not None:
            info = self._probe_source(source)
            # The result plays at the source's frame rate: an extension continues it, an edit
            # re-renders it, and the seconds add up only if both parts share one rate.
            params.setdefault("fps", max(1, round(float(info.fps))))
            frames = np.broadcast_to(
                np.zeros((1, 1, 1, 3), np.uint8), (info.frames, info.height, info.width, 3)
            )
            if kind == "extend":
                stand_in["extend"] = frames
            else:
                stand_in["video"] = frames
            if isinstance(source, Upload):
                # Stored as what it is (a WebM stays .webm): readers may go by the name.
                container = sniff(source.data[:HEAD_BYTES])
                input_suffix = container.suffix if container else ".video"

        output_size = size or (source.size if isinstance(source, Video) else None)
        if output_size is None and source is None:
            output_size = DEFAULT_SIZE
        request = GenerationRequest(
            prompt=prompt,
            model=engine_model,
            negative_prompt=params.get("negative_prompt"),
            size=parse_size(output_size) if output_size else None,
            seconds=(
                params["extend_seconds"]
                if kind == "extend"
                else _seconds(seconds if seconds is not None else DEFAULT_SECONDS)
                if kind == "create"
                else None
            ),
            fps=params.get("fps"),
            steps=params.get("num_inference_steps"),
            guidance=params.get("guidance_scale"),
            seed=params.get("seed"),
            strength=params.get("strength", DEFAULT_STRENGTH),
            max_prompt_chars=settings.max_prompt_chars,
            max_seconds=settings.max_seconds,
            **stand_in,
        )
        resolved = plan(request, spec)
        self._check_queue(caller)
        self._moderate(caller, kind, prompt)

        video_id = new_id("video")
        params = {**params, "seed": resolved.seed}
        row = Video(
            id=video_id,
            seq=time.time_ns(),
            owner=caller.owner,
            kind=kind,
            status="queued",
            model=model,
            engine_model=engine_model,
            prompt=prompt,
            seconds=_format_seconds(resolved.seconds),
            size=f"{resolved.size[0]}x{resolved.size[1]}",
            params=params,
            remixed_from_video_id=remixed_from,
            source_video_id=source.id if isinstance(source, Video) else None,
            max_attempts=settings.max_attempts,
            expires_at=None,
        )
        if input_suffix is not None:
            data = image.data if image is not None else source.data
            path = self.blobs.input_path(video_id, input_suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            media.atomic_write_bytes(path, data)
            row.input_path = str(path)
        with self.sessions.begin() as session:
            session.add(row)
            detail = {"model": model, "source_video_id": row.source_video_id or remixed_from}
            self._audit(session, caller, kind, video_id, detail)
        return row

    # --- trust: the prompt policy and the audit log ------------------------------------------

    def _moderate(self, caller: Caller, kind: str, prompt: str) -> None:
        """Refuse a prompt the operator's policy blocks, before anything is written; the
        decision and its reason go to the audit log."""
        if not self.policy.enabled:
            return
        decision = self.policy.check(prompt)
        if decision is None:
            return
        if self.settings.audit:
            detail = {**decision.as_audit("prompt"), "kind": kind, "prompt": prompt[:500]}
            audit.record(self.sessions, actor=caller.owner, action="moderation", detail=detail)
        raise ModerationBlocked(decision.reason, param="prompt")

    def _audit(
        self,
        session: Session,
        caller: Caller,
        action: str,
        video_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """An audit entry in the same transaction as the change it records."""
        if self.settings.audit:
            audit.add(session, actor=caller.owner, action=action, video_id=video_id, detail=detail)

    def _probe_source(self, source: Video | Upload) -> media.VideoInfo:
        limits = dict(
            max_pixels=self.settings.max_input_pixels,
            max_duration_s=self.settings.max_input_seconds,
        )
        if isinstance(source, Video):
            return media.probe(Path(source.files["video"]["path"]))
        import io

        info = media.probe(io.BytesIO(source.data))
        if info.width * info.height > limits["max_pixels"]:
            raise InvalidRequestError("the video has too many pixels", param="video")
        if info.duration > limits["max_duration_s"]:
            raise InvalidRequestError("the video is too long", param="video")
        if info.frames * info.width * info.height * 3 > media.MAX_DECODE_BYTES:
            # Refused now rather than failing in the worker, which decodes it whole.
            raise InvalidRequestError(
                "the video is too large to work on (frames × pixels); send a shorter or "
                "smaller one",
                param="video",
            )
        return info

    def _check_queue(self, caller: Caller) -> None:
        with self.sessions() as session:
            waiting = session.execute(
                select(func.count())
                .select_from(Video)
                .where(
                    Video.owner.is_(None) if caller.owner is None else Video.owner == caller.owner,
                    Video.status.in_(("queued", "in_progress")),
                    Video.deleted_at.is_(None),
                )
            ).scalar()
        if waiting >= self.settings.max_queued_per_key:
            raise TooManyRequestsError(
                f"{waiting} videos are already waiting; the limit is "
                f"{self.settings.max_queued_per_key}",
                retry_after=max(1.0, self.settings.poll_after_ms / 1000),
            )


def shot_image_suffix(index: int) -> str:
    """The suffix of a storyboard shot's uploaded image among a job's inputs (0-based index)."""
    return f".shot{index + 1}.img"


def _seconds(value: Any) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        raise InvalidRequestError(
            f"seconds must be a number, got {value!r}", param="seconds"
        ) from None
    if not seconds > 0:
        raise InvalidRequestError("seconds must be greater than 0", param="seconds")
    if not math.isfinite(seconds):
        raise InvalidRequestError("seconds must be a finite number", param="seconds")
    return seconds


def _format_seconds(seconds: float) -> str:
    return str(round(seconds)) if abs(seconds - round(seconds)) < 1e-6 else f"{seconds:.2f}"
