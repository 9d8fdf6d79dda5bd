"""What a page fetches as a job moves on: its latest preview while it denoises, and, once it
is done, its card as the library draws finished videos (so a card becomes the video without
a reload; see live.js)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.errors import NotFoundError
from moviola.jobs import live
from moviola.store.models import Video
from moviola.studio.routes import page
from moviola.studio.session import Viewer, viewer

router = APIRouter(include_in_schema=False)


async def _mine(request: Request, seen: Viewer, video_id: str) -> Video | None:
    try:
        return await run_in_threadpool(request.app.state.service.get, seen.caller, video_id)
    except NotFoundError:
        return None


def _missing(request: Request, seen: Viewer) -> Response:
    return seen.apply(Response("not found", status_code=404, media_type="text/plain"), request)


@router.get("/videos/{video_id}/preview")
async def preview(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The latest preview of a running job's latents (see `moviola.jobs.live`)."""
    video = await _mine(request, seen, video_id)
    path = live.preview_path(request.app.state.blobs, video_id) if video else None
    if path is None or not path.is_file():
        return _missing(request, seen)
    response = FileResponse(path, media_type="image/jpeg", headers={"cache-control": "no-cache"})
    return seen.apply(response, request)


@router.get("/videos/{video_id}/card", response_class=HTMLResponse)
async def card(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """One video's library card, as the library draws it now."""
    video = await _mine(request, seen, video_id)
    if video is None:
        return _missing(request, seen)
    return page(request, seen, "_cards.html", videos=[video], more_url=None)
