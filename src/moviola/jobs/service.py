"""What the API (and the Studio) can do with videos: create, remix, edit, extend, read, delete.

Every request is checked completely — model, sizes, durations, uploaded media, limits — before
anything is written, so a refused request changes nothing. Ownership is checked on every read:
another key's video is as absent as one that never existed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.engine import Plan, SoundKind, WeightsNotFoundError, get_model
from moviola.engine.distilled import check_lora
from moviola.engine.loading import find_weights
from moviola.engine.memory import MemoryPreference
from moviola.engine.request import DEFAULT_STRENGTH, MAX_SEED
from moviola.engine.soundtrack import get_soundtrack_model
from moviola.engine.storyboard import StoryboardShot
from moviola.errors import (
    ConflictError,
    InvalidRequestError,
    MoviolaError,
    NotFoundError,
    TooLargeError,
)
from moviola.jobs import queue
from moviola.jobs.characters import Characters, named_in
from moviola.jobs.devices import Devices, check_fits, devices_of
from moviola.jobs.fields import BY_NAME, fields_for, parse_extras
from moviola.jobs.moderation import PromptPolicy, quarantine
from moviola.jobs.references import References, gather, reference_suffix
from moviola.jobs.requests import Inputs, generation_request
from moviola.jobs.trash import Trash
from moviola.media.sniff import HEAD_BYTES, sniff
from moviola.render.frame_check import BLOCKED, ModerationBlocked
from moviola.store import audit
from moviola.store.blobs import Blobs
from moviola.store.models import Video, VideoKind, VideoStatus, new_id

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
EXTENSION_SECONDS = (4, 8, 12, 16, 20)
# Where a create's uploads are kept among a job's inputs: its first frame and its last.
IMAGE_SUFFIX = ".img"
LAST_FRAME_SUFFIX = ".last.img"


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
        self.characters = Characters(settings, sessions, blobs)
        self.trash = Trash(settings, sessions, blobs)

    # --- creating ------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        *,
        prompt: str | None,
        model: str | None = None,
        seconds: str | float | None = None,
        size: str | None = None,
        image: Upload | None = None,
        last_frame: Upload | None = None,
        extras: dict[str, object] | None = None,
        characters: Sequence[Any] | None = None,
        reference_images: Sequence[Upload] | None = None,
        original_prompt: str | None = None,
        prompt_variants: Sequence[str] | None = None,
    ) -> Video:
        """One video, or with `n` in `extras` that many variations of it: one group of jobs
        with consecutive seeds, checked and queued together; the first is returned.
        `characters` (ids, each named in the prompt) and `reference_images` (1–3 uploads)
        condition it through the model's reference model (see `moviola.engine.references`).
        A `prompt` the assistant wrote (`enhance_prompt`) comes with the `original_prompt` it
        was written from and its `prompt_variants`, kept on the video."""
        params = parse_extras(extras or {}, VideoKind.CREATE)
        count = int(params.pop("n", 1))  # type: ignore[arg-type]  # an int field
        if params.pop("enhance_prompt", False) and original_prompt is None:
            # The front ends run the prompt writer before they call here (this layer cannot):
            # one that did not would have the option silently ignored.
            raise InvalidRequestError(
                "enhance_prompt needs the assistant to write the prompt first; this front end "
                "did not",
                param="enhance_prompt",
            )
        written = (
            {"original_prompt": original_prompt, "prompt_variants": list(prompt_variants or [])}
            if original_prompt is not None
            else {}
        )
        return self._submit(
            caller,
            kind=VideoKind.CREATE,
            prompt=prompt,
            model=model,
            seconds=seconds,
            size=size,
            params=params,
            image=image,
            last_frame=last_frame,
            count=count,
            characters=characters,
            reference_images=reference_images,
            row_fields=written,
        )

    def vary(self, caller: Caller, video_id: str, *, n: object = 2) -> Video:
        """A new group of `n` variations of a finished video: the same request — its prompt,
        model, size, length and settings, its source or its first and last frames — with new
        seeds. A storyboard is one job of many shots and is not varied."""
        count = int(BY_NAME["n"].parse(n))  # type: ignore[arg-type]  # an int field
        video = self._finished(caller, video_id, "vary")
        return self._again(caller, video, count=count, same=False)

    def _again(self, caller: Caller, video: Video, *, count: int, same: bool) -> Video:
        """`video`'s request again: `count` variations with new seeds, or (`same`) exactly
        the request it was, seed and sound included."""
        kind = VideoKind(video.kind)
        asked = video.params or {}
        made_as = VideoKind.CREATE if kind is VideoKind.IMPORT else kind
        action = "retry" if same else "vary"
        if kind is VideoKind.STORYBOARD:
            if not same:
                raise InvalidRequestError(
                    "a storyboard cannot be varied: make it again from the Storyboard page",
                    param="video_id",
                )
            return self._storyboard_again(caller, video)
        params: dict[str, Any]
        if same:
            params = _asked(asked, made_as)
        else:
            params = {k: v for k, v in _inherited(asked, made_as).items() if k != "seed"}
        if kind in (VideoKind.CREATE, VideoKind.IMPORT):
            return self._submit(
                caller,
                kind=VideoKind.CREATE,
                prompt=video.prompt,
                model=self._model_of(video),
                seconds=video.seconds,
                size=video.size,
                params=params,
                image=self._kept_input(video, video.input_path) if video.input_path else None,
                last_frame=(
                    self._kept_input(video, self.blobs.input_path(video.id, LAST_FRAME_SUFFIX))
                    if asked.get("last_frame")
                    else None
                ),
                count=count,
                # The same characters and reference images: a variation is the same request.
                characters=asked.get("characters") or None,
                reference_images=[
                    self._kept_input(video, self.blobs.input_path(video.id, reference_suffix(i)))
                    for i in range(int(asked.get("reference_images") or 0))
                ],
            )
        if kind is VideoKind.REMIX:
            if not video.remixed_from_video_id:
                raise ConflictError("the source of this remix is not known", param="video_id")
            original = self._finished(caller, video.remixed_from_video_id, action)
            return self._submit(
                caller,
                kind=kind,
                prompt=video.prompt,
                model=self._model_of(original),
                seconds=None,
                size=original.size,
                params=params,
                source=original,
                remixed_from=original.id,
                count=count,
            )
        source: Video | Upload
        if video.source_video_id:
            source = self._finished(caller, video.source_video_id, action)
        else:
            source = self._kept_input(video, video.input_path)
        if kind is VideoKind.EXTEND:
            params["extend_seconds"] = asked["extend_seconds"]
        return self._submit(
            caller,
            kind=kind,
            prompt=video.prompt,
            model=video.model,
            seconds=None,
            size=None,
            params=params,
            source=source,
            count=count,
        )

    def _storyboard_again(self, caller: Caller, video: Video) -> Video:
        """A storyboard's request again: its shots (with their images), model, size and
        settings."""
        asked = video.params or {}
        shots = [
            Shot(
                prompt=shot.get("prompt"),
                seconds=shot.get("seconds"),
                image=self._kept_input(video, self.blobs.input_path(video.id, shot_image_suffix(i)))
                if shot.get("image")
                else None,
            )
            for i, shot in enumerate(asked.get("shots") or [])
        ]
        return self.storyboard(
            caller,
            shots=shots,
            model=self._model_of(video),
            size=video.size,
            extras=_asked(asked, VideoKind.STORYBOARD),
            characters=asked.get("characters") or None,
        )

    def remix(
        self,
        caller: Caller,
        video_id: str,
        *,
        prompt: str | None,
        extras: dict[str, object] | None = None,
        strength: float | str | None = None,
    ) -> Video:
        """The source's settings (a new seed) with `extras` on top; `strength` (0–1, how far
        from the source it may go) defaults to the API's."""
        source = self._finished(caller, video_id, "remix")
        given = dict(extras or {})
        if strength is not None:
            given["strength"] = strength
        params = {
            **_inherited(source.params, VideoKind.REMIX),
            "strength": DEFAULT_STRENGTH,
            **parse_extras(given, VideoKind.REMIX),
        }
        return self._submit(
            caller,
            kind=VideoKind.REMIX,
            prompt=prompt,
            model=self._model_of(source),
            seconds=None,
            size=source.size,
            params=params,
            source=source,
            remixed_from=source.id,
        )

    def edit(
        self,
        caller: Caller,
        *,
        prompt: str | None,
        video_id: str | None = None,
        upload: Upload | None = None,
        model: str | None = None,
        extras: dict[str, object] | None = None,
    ) -> Video:
        params = parse_extras(extras or {}, VideoKind.EDIT)
        return self._from_source(caller, VideoKind.EDIT, prompt, video_id, upload, model, params)

    def extend(
        self,
        caller: Caller,
        *,
        prompt: str | None,
        seconds: str | float | None,
        video_id: str | None = None,
        upload: Upload | None = None,
        model: str | None = None,
        extras: dict[str, object] | None = None,
    ) -> Video:
        added = _seconds(seconds if seconds is not None else "4")
        if added not in EXTENSION_SECONDS:
            raise InvalidRequestError(
                f"an extension adds 4, 8, 12, 16 or 20 seconds, not {seconds}", param="seconds"
            )
        params: dict[str, Any] = {
            **parse_extras(extras or {}, VideoKind.EXTEND),
            "extend_seconds": added,
        }
        return self._from_source(caller, VideoKind.EXTEND, prompt, video_id, upload, model, params)

    def _from_source(
        self,
        caller: Caller,
        kind: VideoKind,
        prompt: str | None,
        video_id: str | None,
        upload: Upload | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Video:
        """An edit or extension of a stored video (its model unless another is named) or an
        upload."""
        source = self._source(caller, video_id, upload, kind.value)
        if model is None and isinstance(source, Video):
            model = self._model_of(source)
        return self._submit(
            caller,
            kind=kind,
            prompt=prompt,
            model=model,
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
        extras: dict[str, object] | None = None,
        characters: Sequence[Any] | None = None,
    ) -> Video:
        """One job that renders the shots in order, each continuing from the one before (or
        from its own image), into one video; each shot is kept as a file of its own too.
        `characters` are the storyboard's (up to two, each named in some shot): a shot is
        conditioned on those its own prompt names."""
        settings = self.settings
        params: dict[str, Any] = parse_extras(extras or {}, VideoKind.STORYBOARD)
        model = model or DEFAULT_MODEL
        engine_model = self._engine_model(model)
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
            prompt = _text(shot.prompt, f"shots[{index}].prompt", f"shot {index + 1}: prompt")
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
            planned.append(StoryboardShot(prompt, seconds, image))
        cast = self.characters.for_prompt(
            caller.owner, list(characters or []), "\n".join(shot.prompt for shot in planned)
        )
        casts = [[row for row in cast if named_in(row, shot.prompt)] for shot in planned]
        planned = [
            dataclasses.replace(shot, reference_images=(object(),) * frames)
            for shot, frames in zip(planned, map(self.characters.frames_of, casts), strict=True)
        ]
        base = generation_request(
            settings,
            kind=VideoKind.STORYBOARD,
            prompt="",
            engine_model=engine_model,
            size=size or DEFAULT_SIZE,
            seconds=None,
            params=params,
            inputs=Inputs(),
        )
        cast_ids = tuple(row.id for row in cast)
        plans = References(characters=cast_ids).plan_storyboard(planned, base)
        self._check_speed(plans[0])
        for shot_plan in plans:
            self._check_memory(shot_plan)
        self._check_sound(plans[0])
        prompt = "\n".join(shot.prompt for shot in planned)
        self._moderate(caller, VideoKind.STORYBOARD, prompt)

        first = plans[0]
        frames = sum(p.total_frames - p.existing_frames for p in plans)
        params = {
            **params,
            "seed": first.seed,
            "shots": [
                {
                    "prompt": shot.prompt,
                    "seconds": shot.seconds,
                    "image": shot.image is not None,
                    **({"characters": [row.id for row in named]} if named else {}),
                }
                for shot, named in zip(planned, casts, strict=True)
            ],
            **({"characters": [row.id for row in cast]} if cast else {}),
        }
        row = self._row(
            caller,
            kind=VideoKind.STORYBOARD,
            model=model,
            engine_model=engine_model,
            prompt=prompt,
            seconds=_format_seconds(frames / first.fps),
            size=f"{first.size[0]}x{first.size[1]}",
            params=params,
        )
        inputs = {
            shot_image_suffix(index): shot.image.data
            for index, shot in enumerate(shots)
            if shot.image is not None
        }
        return self._enqueue(caller, [row], inputs, {"model": model})

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
        """A page of the caller's videos; `limit` 0 asks only whether any exist past `after`."""
        if not 0 <= limit <= 100:
            raise InvalidRequestError("limit must be 0–100", param="limit")
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
        """To the trash (`moviola.jobs.trash`): gone at once for every reader, its files kept
        to restore until it is purged; a queued or running job is cancelled first. A blocked
        video's files move to the admins' quarantine (first: a crash before the row is marked
        leaves them safe). Of simultaneous deletes, one succeeds and the others find nothing."""
        video = self.get(caller, video_id)
        detail: dict[str, Any] | None = None
        if video.status is VideoStatus.FAILED and video.error_code == BLOCKED:
            kept = quarantine(self.blobs, video.id, self.settings.data_dir)
            detail = {"error_code": BLOCKED, "quarantined": str(kept) if kept else None}

        def record(session: Session, row: Video) -> None:
            self._audit(session, caller, "delete", row.id, detail)

        queue.delete(self.sessions, video.id, caller.owner, before_commit=record)

    def cancel(self, caller: Caller, video_id: str) -> Video:
        """Stop a queued or running job, keeping it as a `cancelled` record (a failed video
        with the error code `cancelled`) to retry; returns it as it now is."""

        def record(session: Session, row: Video) -> None:
            self._audit(session, caller, "cancel", row.id)

        queue.cancel(self.sessions, video_id, caller.owner, before_commit=record)
        return self.get(caller, video_id)

    def retry(self, caller: Caller, video_id: str) -> Video:
        """The request of a video that failed or was cancelled, made again as a new video:
        the same prompt, model, size, length, settings and seed, from the same inputs."""
        video = self.get(caller, video_id)
        if video.status is not VideoStatus.FAILED:
            raise ConflictError(
                f"cannot retry video {video_id}: it is {video.status}; only a failed or "
                "cancelled one is retried",
                param="video_id",
            )
        return self._again(caller, video, count=1, same=True)

    def content(
        self, caller: Caller, video_id: str, variant: str, *, audited: bool = True
    ) -> tuple[Path, str]:
        """A completed video's file and its media type; `audited=False` for a reader who is
        not the caller (a share link's visitor, recorded by its own route)."""
        from moviola.store.blobs import VARIANTS

        # A storyboard's shots (`shot_1` …) are served too, as the video is.
        shot = variant.startswith("shot_") and variant[5:].isdigit()
        if variant not in VARIANTS and not shot:
            raise InvalidRequestError(
                "variant must be video, thumbnail or spritesheet", param="variant"
            )
        video = self.get(caller, video_id)
        completed = video.status is VideoStatus.COMPLETED
        if shot and completed and variant not in (video.files or {}):
            raise NotFoundError(f"video {video_id} has no {variant}", param="variant")
        if not completed or not video.files or variant not in video.files:
            raise ConflictError(
                f"video {video_id} is {video.status}; its content is available once completed",
                param="video_id",
            )
        path = Path(video.files[variant]["path"])
        if not path.is_file():
            raise NotFoundError(f"the {variant} of {video_id} has expired", param="variant")
        if audited and (variant == "video" or shot):  # not previews: fetched all the time
            with self.sessions.begin() as session:
                self._audit(session, caller, "download", video_id, {"variant": variant})
        # An imported video is served as the file it is (a GIF, a WebM), under its own type.
        recorded = video.files[variant].get("mime")
        return path, recorded or ("video/mp4" if shot else VARIANTS[variant][1])

    # --- internals ---------------------------------------------------------------------------

    def _finished(self, caller: Caller, video_id: str, action: str) -> Video:
        video = self.get(caller, video_id)
        if video.status is not VideoStatus.COMPLETED or not video.files:
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
        if video_id is not None and upload is None:
            return self._finished(caller, video_id, action)
        if upload is not None and video_id is None:
            return upload
        raise InvalidRequestError(
            'give the video to work on as an upload or as {"id": …}, one of the two',
            param="video",
        )

    def _model_of(self, source: Video) -> str:
        """The model a remix, edit or extension of `source` uses: its own, or the default for
        a video whose model is unknown here (an import that recorded none, or another
        server's name)."""
        try:
            get_model(self.settings.resolve_model(source.model))
        except MoviolaError:
            return DEFAULT_MODEL
        return source.model

    def _check_memory(self, resolved: Plan) -> None:
        """A request no device can hold is refused now, not after a worker loaded its model."""
        check_fits(
            resolved,
            self._devices,
            MemoryPreference(self.settings.memory),
            ranks=self.settings.gpus_per_worker if self.settings.executor == "local" else 1,
        )

    @cached_property
    def _devices(self) -> Devices | None:
        # Read on first use, not at start: with GPUs it loads torch.
        return devices_of(self.settings)

    def _check_speed(self, resolved: Plan) -> None:
        """`speed=fast` needs its step-distilled LoRA here: refused now (naming the command that
        fetches it), not by a worker later. LoRAs are never downloaded while a job runs."""
        check_lora(resolved, self.settings.models_path)

    def _check_sound(self, resolved: Plan) -> None:
        """A soundtrack needs its model's weights here: refused now, not by a worker later."""
        if resolved.sound is not SoundKind.SOUNDTRACK:
            return
        spec = get_soundtrack_model(self.settings.soundtrack_model)
        try:
            find_weights(spec, self.settings.models_path)
        except WeightsNotFoundError as err:
            raise WeightsNotFoundError(
                f"a soundtrack needs {spec.id}, which is not installed: {err.message}",
                param="audio",
            ) from None

    def _engine_model(self, model: str) -> str:
        """The catalogue id `model` names; a model this server lacks is refused now."""
        engine_model = self.settings.resolve_model(model)
        find_weights(get_model(engine_model), self.settings.models_path)
        return engine_model

    def _submit(
        self,
        caller: Caller,
        *,
        kind: VideoKind,
        prompt: str | None,
        model: str | None,
        seconds: str | float | None,
        size: str | None,
        params: dict[str, Any],
        image: Upload | None = None,
        source: Video | Upload | None = None,
        remixed_from: str | None = None,
        last_frame: Upload | None = None,
        count: int = 1,
        characters: Sequence[Any] | None = None,
        reference_images: Sequence[Upload] | None = None,
        row_fields: dict[str, Any] | None = None,
    ) -> Video:
        """Check a request whole and queue it, `count` times over with consecutive seeds;
        `row_fields` are more columns of its rows."""
        settings = self.settings
        prompt = _text(prompt, "prompt", "prompt")
        model = model or DEFAULT_MODEL
        engine_model = self._engine_model(model)

        uploads = (image, last_frame, source, *(reference_images or ()))
        upload_bytes = sum(len(u.data) for u in uploads if isinstance(u, Upload))
        if upload_bytes > settings.max_upload_bytes:
            raise TooLargeError(
                f"the upload is {upload_bytes:,} bytes; the limit is {settings.max_upload_bytes:,}",
                param="input_reference" if image else "video",
            )

        inputs = Inputs()
        stored: dict[str, bytes] = {}
        if image is not None:
            try:
                media.load_image(
                    image.data, max_pixels=settings.max_input_pixels, name="input_reference"
                )
            except InvalidRequestError as err:
                # Named here, for every caller: the Studio shows it beside the image it chose.
                err.param = err.param or "input_reference"
                raise
            inputs = Inputs(image=object())
            stored[IMAGE_SUFFIX] = image.data
        if last_frame is not None:
            try:
                media.load_image(
                    last_frame.data, max_pixels=settings.max_input_pixels, name="last_frame"
                )
            except InvalidRequestError as err:
                err.param = "last_frame"  # not the request's media_param, input_reference
                raise
            inputs = dataclasses.replace(inputs, last_image=object())
            stored[LAST_FRAME_SUFFIX] = last_frame.data
            params = {**params, "last_frame": True}
        if source is not None:
            info = self._probe_source(source)
            # The result plays at the source's frame rate: an extension continues it, an edit
            # re-renders it, and the seconds add up only if both parts share one rate.
            params.setdefault("fps", max(1, round(float(info.fps))))
            frames = np.broadcast_to(
                np.zeros((1, 1, 1, 3), np.uint8), (info.frames, info.height, info.width, 3)
            )
            inputs = Inputs(extend=frames) if kind is VideoKind.EXTEND else Inputs(video=frames)
            if isinstance(source, Upload):
                # Stored as what it is (a WebM stays .webm): readers may go by the name.
                container = sniff(source.data[:HEAD_BYTES])
                stored[container.suffix if container else ".video"] = source.data

        references, reference_files = gather(
            self.characters,
            caller.owner,
            prompt,
            characters or [],
            reference_images or [],
            settings,
        )
        if references:
            inputs = dataclasses.replace(inputs, references=(object(),) * references.frames)
            stored.update(reference_files)
            params = {**params, **references.params}
        output_size = size or (source.size if isinstance(source, Video) else None)
        if output_size is None and source is None:
            output_size = DEFAULT_SIZE
        request = generation_request(
            settings,
            kind=kind,
            prompt=prompt,
            engine_model=engine_model,
            size=output_size,
            seconds=_seconds(seconds if seconds is not None else DEFAULT_SECONDS)
            if kind is VideoKind.CREATE
            else None,
            params=params,
            inputs=inputs,
        )
        resolved = references.plan(request, get_model(engine_model))
        self._check_speed(resolved)
        self._check_memory(resolved)
        self._check_sound(resolved)
        self._moderate(caller, kind, prompt)
        if resolved.seed + count - 1 > MAX_SEED:
            raise InvalidRequestError(
                f"with n={count} the seeds run from {resolved.seed} to "
                f"{resolved.seed + count - 1}; the most a seed may be is {MAX_SEED}",
                param="seed",
            )

        rows = self._rows(
            caller,
            count,
            kind=kind,
            model=model,
            engine_model=engine_model,
            prompt=prompt,
            seconds=_format_seconds(resolved.seconds),
            size=f"{resolved.size[0]}x{resolved.size[1]}",
            params={**params, "seed": resolved.seed},
            remixed_from_video_id=remixed_from,
            source_video_id=source.id if isinstance(source, Video) else None,
            **(row_fields or {}),
        )
        detail = {"model": model, "source_video_id": rows[0].source_video_id or remixed_from}
        return self._enqueue(caller, rows, stored, detail)

    def _row(self, caller: Caller, **fields: Any) -> Video:
        return self._rows(caller, 1, **fields)[0]

    def _rows(
        self, caller: Caller, count: int, *, params: dict[str, Any], **fields: Any
    ) -> Sequence[Video]:
        """The rows of one request: one job, or `count` variations of it in one group, each
        with the next seed and every one listing them all, queued in their order."""
        ids = [new_id("video") for _ in range(count)]
        group = new_id("group") if count > 1 else None
        first_seq = time.time_ns()

        def own(index: int) -> dict[str, Any]:
            if group is None:
                return dict(params)
            return {**params, "seed": params["seed"] + index, "variations": ids}

        return [
            Video(
                id=video_id,
                seq=first_seq + index,
                owner=caller.owner,
                status=VideoStatus.QUEUED,
                max_attempts=self.settings.max_attempts,
                group_id=group,
                params=own(index),
                **fields,
            )
            for index, video_id in enumerate(ids)
        ]

    def _enqueue(
        self,
        caller: Caller,
        rows: Sequence[Video],
        inputs: dict[str, bytes],
        detail: dict[str, Any],
    ) -> Video:
        """Queue a fully checked request (one job, or a group of variations: all of them or
        none). Its uploads are written just before the rows are added (not under the
        database's lock: they may be hundreds of megabytes), and removed if they are not, so a
        refused request leaves nothing behind; the queue's limit is looked at first, so a caller
        over it writes nothing at all. Returns the first row."""
        max_waiting = self.settings.max_queued_per_key
        retry_after = max(1.0, self.settings.poll_after_ms / 1000)
        queue.check_room(
            self.sessions,
            rows[0].owner,
            max_waiting=max_waiting,
            retry_after=retry_after,
            adding=len(rows),
        )
        try:
            for row in rows:
                for suffix, data in inputs.items():
                    path = self.blobs.input_path(row.id, suffix)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    media.atomic_write_bytes(path, data)
                    if suffix == IMAGE_SUFFIX or row.kind in (VideoKind.EDIT, VideoKind.EXTEND):
                        row.input_path = str(path)

            def record(session: Session) -> None:
                for row in rows:
                    entry = {**detail, "group_id": row.group_id} if row.group_id else detail
                    self._audit(session, caller, VideoKind(row.kind).value, row.id, entry)

            queue.enqueue(
                self.sessions,
                rows,
                max_waiting=max_waiting,
                retry_after=retry_after,
                before_commit=record,
            )
        except BaseException:
            for row in rows:
                self.blobs.remove(row.id)
            raise
        return rows[0]

    def _kept_input(self, video: Video, path: str | Path | None) -> Upload:
        """An upload a finished job kept (its first or last frame, or the video it worked
        on), to make it again."""
        if path is None or not Path(path).is_file():
            raise ConflictError(
                f"cannot make video {video.id} again: the upload it was made from is gone",
                param="video_id",
            )
        return Upload(Path(path).read_bytes(), Path(path).name)

    # --- trust: the prompt policy and the audit log ------------------------------------------

    def _moderate(self, caller: Caller, kind: VideoKind, prompt: str) -> None:
        self.moderate(caller, kind.value, prompt)

    def moderate(self, caller: Caller, kind: str, prompt: str, *, param: str = "prompt") -> None:
        """Refuse a prompt the operator's policy blocks, before anything is written; the
        decision and its reason go to the audit log. `kind` says what the text was for (a
        create, or what the assistant was asked: `assistant.turn` …), `param` its field."""
        if not self.policy.enabled:
            return
        decision = self.policy.check(prompt)
        if decision is None:
            return
        if self.settings.audit:
            detail = {**decision.as_audit("prompt"), "kind": kind, "prompt": prompt[:500]}
            audit.record(self.sessions, actor=caller.owner, action="moderation", detail=detail)
        raise ModerationBlocked(decision.reason, param=param)

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
        if isinstance(source, Video):
            assert source.files is not None
            return media.probe(Path(source.files["video"]["path"]))
        import io

        info = media.probe(io.BytesIO(source.data))
        if info.width * info.height > self.settings.max_input_pixels:
            raise InvalidRequestError("the video has too many pixels", param="video")
        if info.duration > self.settings.max_input_seconds:
            raise InvalidRequestError("the video is too long", param="video")
        if info.frames * info.width * info.height * 3 > self.settings.max_decode_bytes:
            # Refused now rather than failing in the worker, which decodes it whole.
            raise InvalidRequestError(
                "the video is too large to work on (frames × pixels); send a shorter or "
                "smaller one",
                param="video",
            )
        return info


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


def _inherited(params: dict[str, Any], kind: VideoKind) -> dict[str, Any]:
    """The settings of a source that a `kind` request takes over: only the fields it takes,
    and only values that are valid (an imported video's params are whatever its manifest
    said, and are nobody's request to refuse)."""
    inherited = {}
    for field in fields_for(kind):
        if not field.inherit or params.get(field.name) is None:
            continue
        try:
            inherited[field.name] = field.parse(params[field.name], kind)
        except InvalidRequestError:
            continue
    return inherited


def _asked(params: dict[str, Any], kind: VideoKind) -> dict[str, Any]:
    """Every setting a `kind` request was made with, as it was asked (a retry is that request
    again), leaving out values no longer valid (an import's, a catalogue changed since)."""
    asked = {}
    for field in fields_for(kind):
        if field.name == "n" or params.get(field.name) is None:
            continue
        try:
            asked[field.name] = field.parse(params[field.name], kind)
        except InvalidRequestError:
            continue
    return asked


def _text(value: object, param: str, name: str) -> str:
    """A required text field that every store can hold: a JSON string may carry a lone UTF-16
    surrogate (`"\\ud800"`), which no database encoding accepts."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} is required", param=param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            f"{name} is not valid Unicode text (it holds a lone surrogate)", param=param
        ) from None
    return value
