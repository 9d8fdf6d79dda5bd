"""`/v1/videos/characters`: named characters made from a short uploaded clip.

A character is its name and its clip, kept under the blob folder in a folder of its own
(`blobs/char_…/`). Creating a video may name up to two of them (`characters: [{"id"}]`); as
on the hosted API, each one's name must appear in the prompt. Today's open models take no
character conditioning, so the references are checked and the prompt carries the character.
"""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from moviola import media
from moviola.api.auth import authenticate
from moviola.api.forms import read_body
from moviola.api.schemas import (
    CharacterObject,
    CharacterReference,
    CreateCharacterRequest,
    ErrorResponse,
    character_object,
    request_body,
)
from moviola.errors import InvalidRequestError, MediaError, NotFoundError
from moviola.jobs.service import Caller, Upload
from moviola.store.models import Character, new_id

MAX_NAME = 80
MAX_PER_VIDEO = 2

router = APIRouter(
    prefix="/v1",
    tags=["characters"],
    responses={status: {"model": ErrorResponse} for status in (400, 401, 404, 413)},
)


@router.post(
    "/videos/characters",
    response_model=CharacterObject,
    summary="Create a character from a short video",
    openapi_extra=request_body(CreateCharacterRequest, {"video": "A short clip of the character."}),
)
async def create_character(
    request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    state = request.app.state
    body = await read_body(request, state.settings.max_upload_bytes)
    params = CreateCharacterRequest.model_validate(body.fields)
    name = params.name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidRequestError(f"name must be 1–{MAX_NAME} characters", param="name")
    upload = body.files.get("video")
    if upload is None:
        raise InvalidRequestError("video is required: upload a short clip", param="video")
    row = await run_in_threadpool(store, state, caller, name, upload)
    return JSONResponse(character_object(row))


@router.get(
    "/videos/characters/{character_id}",
    response_model=CharacterObject,
    summary="Retrieve a character",
)
def get_character(
    character_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    return JSONResponse(character_object(find(request.app.state, caller, character_id)))


def store(state: Any, caller: Caller, name: str, upload: Upload) -> Character:
    settings = state.settings
    try:
        info = media.probe(io.BytesIO(upload.data))
    except MediaError as err:
        err.param = err.param or "video"
        raise
    if info.width * info.height > settings.max_input_pixels:
        raise InvalidRequestError("the video has too many pixels", param="video")
    if info.duration > settings.max_input_seconds:
        raise InvalidRequestError("the video is too long", param="video")

    character_id = new_id("char")
    suffix = _suffix(upload.filename)
    path = state.blobs.folder(character_id) / f"character{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    media.atomic_write_bytes(path, upload.data)
    row = Character(id=character_id, owner=caller.owner, name=name, video_path=str(path))
    try:
        with state.sessions.begin() as session:
            session.add(row)
    except Exception:
        state.blobs.remove(character_id)  # no row will ever point at it
        raise
    return row


def find(state: Any, caller: Caller, character_id: str, param: str = "character_id") -> Character:
    with state.sessions() as session:
        row = session.get(Character, character_id)
    if row is None or row.owner != caller.owner:
        raise NotFoundError(f"no character with id {character_id!r}", param=param)
    return row


def check_references(
    state: Any, caller: Caller, references: list[CharacterReference], prompt: str
) -> None:
    """Characters named by a create request exist, are the caller's, and are in the prompt."""
    if len(references) > MAX_PER_VIDEO:
        raise InvalidRequestError(
            f"a video can include at most {MAX_PER_VIDEO} characters", param="characters"
        )
    for reference in references:
        character = find(state, caller, reference.id, param="characters")
        if character.name.casefold() not in prompt.casefold():
            raise InvalidRequestError(
                f"name the character {character.name!r} in the prompt to include it",
                param="characters",
            )


def _suffix(filename: str | None) -> str:
    suffix = "." + (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".video"
