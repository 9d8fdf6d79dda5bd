"""Rating a video from its page: thumbs up or down (pressing the chosen one again clears it)
and a note, through `moviola.assistant.ratings` as the API's route does.

The page's form works without scripts (it posts, then shows the video again); `video.js`
sends it with `fetch` instead and asks for JSON, so a playing video is not interrupted.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.assistant import ratings
from moviola.errors import InvalidRequestError
from moviola.studio import forms
from moviola.studio.projects import service
from moviola.studio.routes import go, posted
from moviola.studio.session import Viewer, viewer

router = APIRouter(include_in_schema=False)


@router.post("/videos/{video_id}/rating")
async def rate(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """`rating`: up, down, or empty (none); `note`: free text (empty: none). Errors are the
    API's envelope and status, which the page shows beside the control."""
    form, refusal = await posted(request, seen)
    if refusal is not None:
        raise refusal
    chosen = forms.text(form, "rating")
    if chosen not in ("", *ratings.RATINGS):
        raise InvalidRequestError("rating must be up, down or empty", param="rating")
    value = ratings.value(chosen or None)
    note = forms.text(form, "note")
    await run_in_threadpool(service(request).rate_video, seen.caller.owner, video_id, value, note)
    if "application/json" in request.headers.get("accept", ""):
        response = JSONResponse({"rating": ratings.word(value), "note": note})
        return seen.apply(response, request)
    return go(request, seen, f"/videos/{video_id}#rating-h")
