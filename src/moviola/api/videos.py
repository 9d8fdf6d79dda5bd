"""`/v1/videos…`: the Videos API routes. Each parses the request and calls the service.

Bodies are read by hand rather than declared as FastAPI parameters because one route must
take JSON, url-encoded forms and multipart alike (the `openai` SDK sends multipart; raw HTTP
clients send JSON); they are then validated by the request models in `schemas`, which also
document them in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from moviola.api import reference_images
from moviola.api.auth import authenticate
from moviola.api.forms import Body, read_body
from moviola.api.references import reference_image
from moviola.api.schemas import (
    CreateVideoRequest,
    EditVideoRequest,
    ErrorResponse,
    ExtendVideoRequest,
    RemixVideoRequest,
    RequestModel,
    VideoDeleted,
    VideoList,
    VideoObject,
    VideoReference,
    request_body,
    video_object,
)
from moviola.errors import InvalidRequestError, MediaError, MoviolaError, NotFoundError
from moviola.jobs.fields import WIRE_NAMES
from moviola.jobs.service import Caller, Upload
from moviola.media import formats
from moviola.web.files import RangedFileResponse

Model = TypeVar("Model", bound=RequestModel)

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "The request is invalid; `param` names the field."),
        (401, "Missing or wrong API key."),
        (404, "No such video (or not this key's)."),
        (409, "The video is not in a state that allows this (not completed yet)."),
        (413, "The upload is larger than the server accepts."),
        (429, "Too many videos waiting, or too many requests; see `retry-after`."),
    )
}
FILE_DESCRIPTION = "A file part; its type is read from its bytes."
# Download names by media type: an imported video keeps its own container (GIF, WebM, MOV).
FILE_SUFFIXES = formats.SUFFIXES

router = APIRouter(prefix="/v1", tags=["videos"], responses=ERRORS)


def parse(model: type[Model], body: Body) -> Model:
    """The body as `model`: a field or file part it does not take, or a value it cannot
    hold, answers 400 naming that field."""
    model.refuse_unknown(body.fields, body.files)
    return model.model_validate(body.fields)


# The engine's names for request fields, where the wire's differ.
WIRE_PARAMS = {
    **WIRE_NAMES,
    "image": "input_reference",
    "last_image": "last_frame",
    "extend": "video",
    "frames": "seconds",
}


async def call(function: Callable[..., Any], *args: Any, media_param: str, **kwargs: Any) -> Any:
    """Run a (blocking) service call off the event loop; errors name fields as sent."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except MoviolaError as err:
        if isinstance(err, MediaError) and err.param is None:
            err.param = media_param
        if err.param is not None:
            err.param = WIRE_PARAMS.get(err.param, err.param)
        raise


def source_video(
    given: VideoReference | str | None, upload: Upload | None
) -> tuple[str | None, Upload | None]:
    """The video to work on: an upload, or the id of a completed video."""
    if isinstance(given, VideoReference):
        given = given.id
    if given is not None and upload is not None:
        raise InvalidRequestError(
            "video is given both as a file and as an id; send one", param="video"
        )
    if given is None and upload is None:
        raise InvalidRequestError(
            'video is required: upload a file, or send {"id": "video_…"} (video[id] in a form)',
            param="video",
        )
    return given, upload


def retention_s(request: Request) -> float:
    return request.app.state.settings.retention_hours * 3600


def video_response(
    request: Request, row: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(video_object(row, retention_s(request)), headers=headers)


@router.post(
    "/videos",
    response_model=VideoObject,
    summary="Create a video",
    openapi_extra=request_body(
        CreateVideoRequest,
        {name: FILE_DESCRIPTION for name in CreateVideoRequest.file_parts},
    ),
)
async def create_video(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    state = request.app.state
    body = await read_body(request, state.settings.max_upload_bytes)
    reference_files = reference_images.take_files(body)
    params = parse(CreateVideoRequest, body)
    image, last_frame = [
        await reference_image(
            getattr(params, field),
            body.files.get(field),
            state.settings.max_upload_bytes,
            allow_private=state.settings.fetch_private_urls,
            timeout_s=state.settings.image_url_timeout_s,
            field=field,
        )
        for field in ("input_reference", "last_frame")
    ]
    references = await reference_images.gather(
        reference_files, params.reference_images, state.settings
    )
    extras = params.extras()
    prompt, written = params.prompt, None
    if extras.pop("enhance_prompt", False):
        # Written here, before the service checks and queues the request: the jobs layer
        # knows nothing of the assistant. The backend down is a 503, and nothing is queued.
        written = await state.assistant.write_prompt(
            caller, params.prompt, params.model, via="enhance_prompt"
        )
        prompt = written.prompt
    row = await call(
        state.service.create,
        caller,
        prompt=prompt,
        model=params.model,
        seconds=params.seconds,
        size=params.size,
        image=image,
        last_frame=last_frame,
        extras=extras,
        characters=[c.id for c in params.characters or []],
        reference_images=references,
        original_prompt=params.prompt if written else None,
        prompt_variants=written.variants if written else None,
        media_param="input_reference",
    )
    return video_response(request, row)


@router.get(
    "/videos",
    response_model=VideoList,
    summary="List videos, newest first by default",
)
def list_videos(
    request: Request,
    after: str | None = Query(None, description="The last id of the previous page."),
    limit: int = Query(20, description="0–100."),
    order: Literal["asc", "desc"] = Query("desc", description="By creation time."),
    caller: Caller = Depends(authenticate),
) -> JSONResponse:
    try:
        rows, has_more = request.app.state.service.list(
            caller, after=after, limit=limit, order=order
        )
    except NotFoundError as err:
        err.param = "after"
        raise
    data = [video_object(row, retention_s(request)) for row in rows]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


@router.post(
    "/videos/edits",
    response_model=VideoObject,
    summary="Edit a video (an upload, or a completed video by id)",
    openapi_extra=request_body(EditVideoRequest, {"video": FILE_DESCRIPTION}),
)
async def edit_video(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    return await from_source(request, caller, EditVideoRequest, "edit")


@router.post(
    "/videos/extensions",
    response_model=VideoObject,
    summary="Extend a video by 4–20 seconds; the result's seconds is the stitched total",
    openapi_extra=request_body(ExtendVideoRequest, {"video": FILE_DESCRIPTION}),
)
async def extend_video(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    return await from_source(request, caller, ExtendVideoRequest, "extend", with_seconds=True)


async def from_source(
    request: Request,
    caller: Caller,
    model: type[EditVideoRequest] | type[ExtendVideoRequest],
    action: str,
    *,
    with_seconds: bool = False,
) -> JSONResponse:
    """An edit or an extension: a prompt and a source video (an upload or `{"id"}`)."""
    state = request.app.state
    body = await read_body(request, state.settings.max_upload_bytes)
    params = parse(model, body)
    video_id, upload = source_video(params.video, body.files.get("video"))
    extra = {"seconds": params.seconds} if with_seconds else {}
    row = await call(
        getattr(state.service, action),
        caller,
        prompt=params.prompt,
        video_id=video_id,
        upload=upload,
        model=params.model,
        extras=params.extras(),
        media_param="video",
        **extra,
    )
    return video_response(request, row)


@router.get(
    "/videos/{video_id}",
    response_model=VideoObject,
    summary="Retrieve a video (poll this; the openai-poll-after-ms header says how often)",
)
def retrieve_video(
    video_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    # In the thread pool, not on the event loop: while a worker writes, a read can wait on
    # SQLite's busy handler (sleeps of up to 100 ms), and on the loop that wait would hold up
    # every other request in flight.
    state = request.app.state
    row = state.service.get(caller, video_id)
    return video_response(request, row, {"openai-poll-after-ms": str(state.settings.poll_after_ms)})


@router.delete("/videos/{video_id}", response_model=VideoDeleted, summary="Delete a video")
def delete_video(
    video_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    request.app.state.service.delete(caller, video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})


@router.get(
    "/videos/{video_id}/content",
    response_class=FileResponse,
    summary="Download the MP4, its thumbnail (WebP) or its spritesheet (JPEG)",
    responses={
        200: {
            "content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}},
            "description": "The file; the MP4 answers HTTP Range requests (206).",
        },
        416: {
            "model": ErrorResponse,
            "description": "The Range cannot be served; `Content-Range` gives the file's size.",
        },
    },
)
def download_content(
    video_id: str,
    request: Request,
    variant: Literal["video", "thumbnail", "spritesheet"] = Query("video"),
    caller: Caller = Depends(authenticate),
) -> FileResponse:
    path, media_type = request.app.state.service.content(caller, video_id, variant)
    suffix = FILE_SUFFIXES.get(media_type, path.suffix)
    return RangedFileResponse(
        path,
        media_type=media_type,
        filename=f"{video_id}{suffix}",
        content_disposition_type="inline",
        # Completed files never change: a browser may keep them.
        headers={"cache-control": "private, max-age=86400, immutable"},
    )


@router.post(
    "/videos/{video_id}/remix",
    response_model=VideoObject,
    summary="Remix a completed video with a new prompt",
    openapi_extra=request_body(RemixVideoRequest),
)
async def remix_video(
    video_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    state = request.app.state
    body = await read_body(request, state.settings.max_upload_bytes)
    params = parse(RemixVideoRequest, body)
    row = await call(
        state.service.remix,
        caller,
        video_id,
        prompt=params.prompt,
        extras=params.extras(),
        media_param="video_id",
    )
    return video_response(request, row)
