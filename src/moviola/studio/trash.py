"""The Trash page: deleted videos, restorable until they are purged (see `moviola.jobs.trash`),
with "Restore" and "Delete forever"."""

from __future__ import annotations

import math
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.errors import MoviolaError, NotFoundError
from moviola.studio.routes import _problem, _service, go, page, posted, templates
from moviola.studio.session import Viewer, viewer

router = APIRouter(include_in_schema=False)


def days(seconds: float) -> str:
    """A stretch of time as words, in days begun ("7 days", "1 day"), or hours under one."""
    if seconds < 86400:
        hours = math.ceil(seconds / 3600)
        return f"{hours} hour{'' if hours == 1 else 's'}" if hours else "moments"
    count = math.ceil(seconds / 86400 - 1e-6)
    return f"{count} day{'' if count == 1 else 's'}"


def trash_days(request: Request) -> str:
    """How long the trash keeps a video, for the pages that send videos there."""
    return days(request.app.state.settings.trash_days * 86400)


templates.env.globals["trash_days"] = trash_days


def _before(request: Request) -> float | None:
    try:
        return float(request.query_params.get("before", ""))
    except ValueError:
        return None


@router.get("/trash", response_class=HTMLResponse)
async def trash_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    trash = _service(request).trash
    found = await run_in_threadpool(trash.page, seen.caller.owner, before=_before(request))
    now = time.time()
    return page(
        request,
        seen,
        "trash.html",
        videos=[(video, days(max(0.0, trash.purges_at(video) - now))) for video in found.videos],
        more_url=f"/trash?before={found.next_before!r}" if found.next_before else None,
        restored=request.query_params.get("restored"),
    )


@router.get("/trash/{video_id}/thumbnail")
async def trash_thumbnail(
    video_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    trash = _service(request).trash
    try:
        path = await run_in_threadpool(trash.thumbnail, seen.caller.owner, video_id)
    except MoviolaError as err:
        return seen.apply(Response(str(err), status_code=404, media_type="text/plain"), request)
    return FileResponse(path, media_type="image/webp", headers={"cache-control": "no-store"})


@router.post("/trash/{video_id}/restore")
async def restore(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    return await _change(request, seen, video_id, restore=True)


@router.post("/trash/{video_id}/purge")
async def purge(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Delete forever: the files go now."""
    return await _change(request, seen, video_id, restore=False)


async def _change(request: Request, seen: Viewer, video_id: str, *, restore: bool) -> Response:
    _, refusal = await posted(request, seen)
    trash = _service(request).trash
    try:
        if refusal is not None:
            raise refusal
        action = trash.restore if restore else trash.purge
        await run_in_threadpool(action, seen.caller.owner, video_id)
    except NotFoundError:
        return go(request, seen, "/trash")  # restored or purged meanwhile (another tab)
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, f"/trash?restored={video_id}" if restore else "/trash")
