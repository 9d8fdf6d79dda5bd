"""Cancel and retry: a job stopped on request stays as a record of its request, which the
Studio makes again ("Retry") or reopens in its form ("Edit & retry", `states.edit_again_url`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from moviola.errors import MoviolaError, NotFoundError
from moviola.studio import forms
from moviola.studio.routes import _not_found, _problem, _service, go, posted
from moviola.studio.session import Viewer, safe_next, viewer

router = APIRouter(include_in_schema=False)


@router.post("/videos/{video_id}/cancel")
async def cancel(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Stop a queued or running job; it stays, marked cancelled. A job that finished
    meanwhile is said so, not cancelled."""
    form, refusal = await posted(request, seen)
    try:
        if refusal is not None:
            raise refusal
        await run_in_threadpool(_service(request).cancel, seen.caller, video_id)
    except NotFoundError:
        return _not_found(request, seen)
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, safe_next(forms.text(form, "next"), f"/videos/{video_id}"))


@router.post("/videos/{video_id}/retry")
async def retry(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The same request again, as a new video."""
    _, refusal = await posted(request, seen)
    try:
        if refusal is not None:
            raise refusal
        video = await run_in_threadpool(_service(request).retry, seen.caller, video_id)
    except NotFoundError:
        return _not_found(request, seen)
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, f"/videos/{video.id}?created=1")
