"""`/v1/videos/characters`: named characters made from a short uploaded clip.

A character is its name, its clip and the reference frames picked from the clip, kept in a
folder of its own (`blobs/char_…/`; see `moviola.jobs.characters`). Creating a video may name
up to two of them (`characters: [{"id"}]`), each named in the prompt, as on the hosted API;
the video is conditioned on their frames. Retrieving one shows its frames under `moviola`,
each downloadable from the content endpoint (`?variant=reference_0` …), for its owner only.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from moviola.api.auth import authenticate
from moviola.api.forms import read_body
from moviola.api.schemas import (
    CharacterObject,
    CreateCharacterRequest,
    ErrorResponse,
    character_object,
    request_body,
)
from moviola.errors import InvalidRequestError
from moviola.jobs.service import Caller

router = APIRouter(
    prefix="/v1",
    tags=["characters"],
    responses={status: {"model": ErrorResponse} for status in (400, 401, 404, 413)},
)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


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
    CreateCharacterRequest.refuse_unknown(body.fields, body.files)
    params = CreateCharacterRequest.model_validate(body.fields)
    upload = body.files.get("video")
    if upload is None:
        raise InvalidRequestError("video is required: upload a short clip", param="video")
    row = await run_in_threadpool(
        state.service.characters.create, caller.owner, params.name, upload.data, upload.filename
    )
    return JSONResponse(character_object(row, _base_url(request)))


@router.get(
    "/videos/characters/{character_id}",
    response_model=CharacterObject,
    summary="Retrieve a character, with its reference frames under `moviola`",
)
def get_character(
    character_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    row = request.app.state.service.characters.get(caller.owner, character_id)
    return JSONResponse(character_object(row, _base_url(request)))


@router.get(
    "/videos/characters/{character_id}/content",
    response_class=FileResponse,
    summary="Download one of a character's reference frames (PNG)",
    responses={200: {"content": {"image/png": {}}, "description": "The frame."}},
)
def character_content(
    character_id: str,
    request: Request,
    variant: str = Query("reference_0", description="reference_0, reference_1 …"),
    caller: Caller = Depends(authenticate),
) -> FileResponse:
    characters = request.app.state.service.characters
    path = characters.reference_path(caller.owner, character_id, variant)
    return FileResponse(
        path,
        media_type="image/png",
        filename=f"{character_id}-{variant}.png",
        content_disposition_type="inline",
        headers={"cache-control": "private, max-age=86400, immutable"},
    )
