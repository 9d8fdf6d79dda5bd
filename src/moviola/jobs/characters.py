"""Characters: a name, a short clip, and the reference frames that carry it into a video.

Creating one checks the clip whole first: one that cannot be read or decodes to no frame is a
400, and nothing is stored. Then `REFERENCE_FRAMES` sharp, well-exposed frames spread over the
clip are picked (`moviola.media.reference_frames`), each cropped to the head and shoulders
around the face NudeNet's detector finds in it (`moviola.render.faces`; the whole frame where it
finds none, or where `nudenet` is not installed), and kept as PNGs in the character's blob
folder (`blobs/char_…/`) beside the clip. The row that names them is inserted last: a crash in
between leaves a folder no row names, which the sweeper removes once it has sat unchanged for a
while (`jobs.sweeper`).

A video may include up to `MAX_PER_VIDEO` of the caller's characters, each named verbatim in
its prompt (case aside), as on the hosted API. The job stores their ids; the worker reads
their frames (`reference_images`) and the engine conditions on them like reference images.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.errors import InvalidRequestError, MediaError, NotFoundError
from moviola.media.reference_frames import head_and_shoulders, pick
from moviola.render.faces import FaceFinder
from moviola.store.blobs import Blobs
from moviola.store.models import Character, StoredReference, new_id

MAX_NAME = 80
MAX_PER_VIDEO = 2
REFERENCE_FRAMES = 3
PARAM = "characters"
# Frames are decoded no larger than this on their longer side: the models fit references into
# a frame of at most 1280×720, so more pixels would only cost memory.
_DECODE_SIDE = 1280
_VARIANT = re.compile(r"reference_(\d+)")
_ID = re.compile(r"char_[0-9a-f]{32}")


def reference_variant(index: int) -> str:
    """The content variant of a character's reference frame `index` (from 0)."""
    return f"reference_{index}"


class Characters:
    """The caller's characters: made from a clip, found by id, named in prompts."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: Blobs,
        faces: FaceFinder | None = None,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        # Where no finder is given: NudeNet's, when it is installed; else frames stay whole.
        self.faces = (
            faces if faces is not None else (FaceFinder() if FaceFinder.available() else None)
        )

    def create(self, owner: str | None, name: Any, clip: bytes, filename: str | None) -> Character:
        """A character named `name` from the clip's bytes; raises 400s naming `name` or
        `video` and stores nothing when refused."""
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= MAX_NAME:
            raise InvalidRequestError(f"name must be 1–{MAX_NAME} characters", param="name")
        frames = self._decode(clip)
        picks = pick(frames, REFERENCE_FRAMES)
        if not picks:
            raise MediaError("the video has no frames to take the character from", param="video")

        character_id = new_id("char")
        folder = self.blobs.folder(character_id)
        try:
            folder.mkdir(parents=True)
            clip_path = folder / f"character{_suffix(filename)}"
            media.atomic_write_bytes(clip_path, clip)
            kept = [
                self._keep(folder, index, frames[chosen.index], chosen.index)
                for index, chosen in enumerate(picks)
            ]
            row = Character(
                id=character_id,
                owner=owner,
                name=name,
                video_path=str(clip_path),
                reference_frames=kept,
            )
            with self.sessions.begin() as session:
                session.add(row)
        except BaseException:
            self.blobs.remove(character_id)  # no row will ever point at it
            raise
        return row

    def get(self, owner: str | None, character_id: str, param: str = "character_id") -> Character:
        """The caller's character `character_id`; another key's is as absent as none."""
        row = None
        if isinstance(character_id, str) and _ID.fullmatch(character_id):
            with self.sessions() as session:
                row = session.get(Character, character_id)
        if row is None or row.owner != owner:
            raise NotFoundError(f"no character with id {character_id!r}", param=param)
        return row

    def owned_by(self, owner: str | None) -> list[Character]:
        """The caller's characters, newest first."""
        query = select(Character).where(
            Character.owner.is_(None) if owner is None else Character.owner == owner
        )
        with self.sessions() as session:
            return list(session.execute(query.order_by(Character.created_at.desc())).scalars())

    def for_prompt(self, owner: str | None, ids: Sequence[Any], prompt: str) -> list[Character]:
        """The characters a request names, checked: at most `MAX_PER_VIDEO`, each the
        caller's, with reference frames, and named in `prompt`. Errors name `characters`."""
        if len(ids) > MAX_PER_VIDEO:
            raise InvalidRequestError(
                f"a video can include at most {MAX_PER_VIDEO} characters", param=PARAM
            )
        if len(set(ids)) != len(ids):
            raise InvalidRequestError("a character is named twice", param=PARAM)
        rows = [self.get(owner, character_id, param=PARAM) for character_id in ids]
        for row in rows:
            if not named_in(row, prompt):
                raise InvalidRequestError(
                    f"name the character {row.name!r} in the prompt to include it", param=PARAM
                )
            if not row.reference_frames:
                raise InvalidRequestError(
                    f"the character {row.name!r} was made before Moviola kept reference frames; "
                    "create it again from its clip",
                    param=PARAM,
                )
        return rows

    def reference_path(self, owner: str | None, character_id: str, variant: str) -> Path:
        """The file of a character's reference frame `variant` (`reference_0` …)."""
        row = self.get(owner, character_id)
        match = _VARIANT.fullmatch(variant)
        frames = row.reference_frames or []
        if match is None or int(match[1]) >= len(frames):
            choices = ", ".join(reference_variant(i) for i in range(len(frames))) or "none"
            raise InvalidRequestError(
                f"variant must be one of this character's reference frames ({choices})",
                param="variant",
            )
        path = Path(frames[int(match[1])]["path"])
        if not path.is_file():
            raise NotFoundError(f"the {variant} of {character_id} is gone", param="variant")
        return path

    def reference_images(self, ids: Sequence[str]) -> list[Any]:
        """The reference frames of the characters `ids` (a stored job's), as PIL images, in
        order; a worker's read, so ownership was checked when the job was accepted."""
        images = []
        with self.sessions() as session:
            rows = [session.get(Character, character_id) for character_id in ids]
        for character_id, row in zip(ids, rows, strict=True):
            if row is None or not row.reference_frames:
                raise InvalidRequestError(
                    f"the character {character_id} is gone", param=PARAM, code="character_gone"
                )
            images += [media.load_image(Path(frame["path"])) for frame in row.reference_frames]
        return images

    def frames_of(self, rows: Sequence[Character]) -> int:
        return sum(len(row.reference_frames or []) for row in rows)

    # --- internals ---------------------------------------------------------------------------

    def _decode(self, clip: bytes) -> np.ndarray:
        settings = self.settings
        try:
            info = media.probe(io.BytesIO(clip))
            if info.width * info.height > settings.max_input_pixels:
                raise InvalidRequestError("the video has too many pixels", param="video")
            if info.duration > settings.max_input_seconds:
                raise InvalidRequestError("the video is too long", param="video")
            frames, _ = media.decode_frames(
                io.BytesIO(clip),
                max_pixels=settings.max_input_pixels,
                max_duration_s=settings.max_input_seconds,
                max_bytes=settings.max_decode_bytes,
                size=media.fit_size(info.size, _DECODE_SIDE, enlarge=False),
            )
        except MediaError as err:
            err.param = err.param or "video"
            raise
        return frames

    def _keep(self, folder: Path, index: int, frame: np.ndarray, at: int) -> StoredReference:
        """Frame `at` of the clip as reference `index`: cropped around a face where one is
        found, written as a PNG."""
        from PIL import Image

        face = self.faces.find(frame) if self.faces is not None else None
        if face is not None:
            left, top, right, bottom = head_and_shoulders(face.box, frame.shape[1], frame.shape[0])
            frame = frame[top:bottom, left:right]
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(out, format="PNG")
        path = folder / f"{reference_variant(index)}.png"
        media.atomic_write_bytes(path, out.getvalue())
        return {
            "path": str(path),
            "bytes": len(out.getvalue()),
            "sha256": media.sha256_file(path),
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "frame": int(at),
            "face": face is not None,
        }


def named_in(character: Character, prompt: str) -> bool:
    """Whether `prompt` names `character` (its name verbatim, case aside)."""
    return character.name.casefold() in prompt.casefold()


def _suffix(filename: str | None) -> str:
    suffix = "." + (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".video"
