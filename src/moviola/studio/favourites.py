"""Favourites from the Studio: the Favourite toggle on a card or a video's page, and the
feed's bulk actions on a selection (favourite them, or put them in a collection).

Each toggle is a form that works without scripts (it posts, then comes back to the page it was
on); `library.js` sends it with `fetch` and asks for JSON, so the feed is not reloaded.
Collections are the creator's projects: videos go in through `Projects`, as everywhere else.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from moviola.errors import InvalidRequestError, MoviolaError
from moviola.store import favourites
from moviola.studio import forms
from moviola.studio.projects import service
from moviola.studio.routes import _problem, go, posted
from moviola.studio.session import Viewer, safe_next, viewer

router = APIRouter(include_in_schema=False)


def _on(form: FormData) -> bool:
    chosen = forms.text(form, "on")
    if chosen not in ("0", "1"):
        raise InvalidRequestError("on must be 1 (favourite) or 0 (not)", param="on")
    return chosen == "1"


def _record(request: Request) -> bool:
    return bool(request.app.state.settings.audit)


@router.post("/videos/{video_id}/favourite")
async def favourite(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """`on`: 1 to make the video a favourite, 0 to stop. Errors are the API's envelope and
    status."""
    form, refusal = await posted(request, seen)
    if refusal is not None:
        raise refusal
    on = _on(form)
    sessions = request.app.state.sessions
    await run_in_threadpool(
        favourites.set_favourite,
        sessions,
        seen.caller.owner,
        [video_id],
        on,
        record=_record(request),
    )
    if "application/json" in request.headers.get("accept", ""):
        return seen.apply(JSONResponse({"id": video_id, "favourite": on}), request)
    return go(request, seen, safe_next(forms.text(form, "next"), f"/videos/{video_id}"))


@router.post("/library/favourite")
async def favourite_many(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    if refusal is not None:
        return _problem(request, seen, refusal)
    ids = [str(video_id) for video_id in form.getlist("id")]
    try:
        on = _on(form)
        if ids:
            sessions = request.app.state.sessions
            owner = seen.caller.owner
            await run_in_threadpool(
                favourites.set_favourite, sessions, owner, ids, on, record=_record(request)
            )
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, safe_next(forms.text(form, "next"), "/"))


@router.post("/library/collect")
async def collect(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Put the selected videos in a collection: one of the creator's projects (`collection`),
    or a new one named `name`."""
    form, refusal = await posted(request, seen)
    if refusal is not None:
        return _problem(request, seen, refusal)
    projects = service(request)
    owner = seen.caller.owner
    ids = list(dict.fromkeys(str(video_id) for video_id in form.getlist("id")))[:500]
    try:
        if not ids:
            raise InvalidRequestError("select the videos to add first", param="id")
        project_id = forms.text(form, "collection")
        if not project_id:
            name = forms.text(form, "name")
            if not name:
                raise InvalidRequestError("name the new collection", param="name")
            project_id = (await run_in_threadpool(projects.create_project, owner, name)).id
        for video_id in ids:
            await run_in_threadpool(projects.add_item, owner, project_id, "video", video_id)
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, safe_next(forms.text(form, "next"), "/"))
