"""The Projects pages: a creator's named collections of conversations, videos and characters,
with notes, listed and searched; and a video's place in them, from the video's page.

Every read and write goes through `moviola.assistant.projects.Projects`, as the API's routes
do, so ownership (another key's project is not found), limits and the audit log are theirs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.assistant.projects import ConversationView, Projects, ProjectView
from moviola.errors import MoviolaError, NotFoundError
from moviola.store.models import Video
from moviola.studio import characters as studio_characters
from moviola.studio import forms, library
from moviola.studio.routes import go, page, posted
from moviola.studio.session import Viewer, safe_next, viewer

router = APIRouter(include_in_schema=False)

LISTED = 100  # projects on the list page (and in the pickers): the most recently changed


def service(request: Request) -> Projects:
    state = request.app.state
    return Projects(state.sessions, record=state.settings.audit)


@dataclass(frozen=True)
class Listed:
    """A project as the list shows it: with how many of each kind of thing it holds."""

    project: ProjectView
    videos: int
    conversations: int
    characters: int


def _listed(view: ProjectView) -> Listed:
    kinds = [item.kind for item in view.items]
    return Listed(view, kinds.count("video"), kinds.count("conversation"), kinds.count("character"))


def conversation_title(conversation: ConversationView) -> str:
    """What a conversation is called on the page: its title, else when it began."""
    if conversation.title:
        return conversation.title
    return "Conversation of " + time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(conversation.created_at)
    )


# --- the list ----------------------------------------------------------------------------------


async def _list_page(
    request: Request,
    seen: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    query = request.query_params.get("q", "").strip()
    views = await run_in_threadpool(
        service(request).list_projects, seen.caller.owner, query or None, LISTED
    )
    return page(
        request,
        seen,
        "projects.html",
        status_code=400 if errors else 200,
        projects=[_listed(view) for view in views],
        q=query,
        values=values or {},
        errors=errors or {},
    )


@router.get("/projects", response_class=HTMLResponse)
async def projects_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _list_page(request, seen)


@router.post("/projects", response_class=HTMLResponse)
async def create_project(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    typed = {"name": forms.text(form, "name"), "notes": _notes(form)}
    try:
        if refusal is not None:
            raise refusal
        made = await run_in_threadpool(
            service(request).create_project, seen.caller.owner, typed["name"], typed["notes"]
        )
    except MoviolaError as err:
        return await _list_page(request, seen, values=typed, errors=forms.errors_for(err))
    return go(request, seen, f"/projects/{made.id}")


def _notes(form: Any) -> str:
    notes = form.get("notes")
    return notes if isinstance(notes, str) else ""


# --- one project -------------------------------------------------------------------------------


def _contents(request: Request, seen: Viewer, project: ProjectView) -> dict[str, Any]:
    """What the project holds, as the page shows it: its videos (newest first), characters and
    conversations (most recently active first). Things deleted since are left out."""
    ids = {
        kind: [i.item_id for i in project.items if i.kind == kind]
        for kind in ("video", "character")
    }
    videos: list[Video] = library.by_ids(request.app.state.sessions, seen.caller, ids["video"])
    videos.sort(key=lambda video: video.seq, reverse=True)
    everyone = studio_characters.shown(request.app.state.service, seen.caller)
    conversations = service(request).list_conversations(
        seen.caller.owner, project_id=project.id, limit=100
    )
    return {
        "project": project,
        "videos": videos,
        "characters": [c for c in everyone if c["id"] in ids["character"]],
        "other_characters": [c for c in everyone if c["id"] not in ids["character"]],
        "conversations": [(c, conversation_title(c)) for c in conversations],
    }


async def _project_page(
    request: Request,
    seen: Viewer,
    project_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    try:
        project = await run_in_threadpool(
            service(request).get_project, seen.caller.owner, project_id
        )
    except NotFoundError:
        return _missing(request, seen)
    contents = await run_in_threadpool(_contents, request, seen, project)
    return page(
        request,
        seen,
        "project.html",
        status_code=400 if errors else 200,
        values=values or {},
        errors=errors or {},
        saved=bool(request.query_params.get("saved")),
        **contents,
    )


def _missing(request: Request, seen: Viewer) -> HTMLResponse:
    return page(
        request,
        seen,
        "nowhere.html",
        status_code=404,
        title="Not found",
        message="There is no such project here: it was deleted, or it belongs to someone else.",
    )


@router.get("/projects/{project_id}", response_class=HTMLResponse)
async def project_page(
    project_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> HTMLResponse:
    return await _project_page(request, seen, project_id)


@router.post("/projects/{project_id}", response_class=HTMLResponse)
async def update_project(
    project_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    form, refusal = await posted(request, seen)
    typed = {"name": forms.text(form, "name"), "notes": _notes(form)}
    try:
        if refusal is not None:
            raise refusal
        await run_in_threadpool(
            service(request).update_project,
            seen.caller.owner,
            project_id,
            name=typed["name"],
            notes=typed["notes"],
        )
    except NotFoundError:
        return _missing(request, seen)
    except MoviolaError as err:
        return await _project_page(
            request, seen, project_id, values=typed, errors=forms.errors_for(err)
        )
    return go(request, seen, f"/projects/{project_id}?saved=1")


@router.post("/projects/{project_id}/delete")
async def delete_project(
    project_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    _, refusal = await posted(request, seen)
    if refusal is not None:
        return await _project_page(request, seen, project_id, errors=forms.errors_for(refusal))
    # Deleted already, in another tab: what was asked for.
    with contextlib.suppress(NotFoundError):
        await run_in_threadpool(service(request).delete_project, seen.caller.owner, project_id)
    return go(request, seen, "/projects")


@router.post("/projects/{project_id}/items")
async def add_item(project_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Put a video (or character, or conversation) in the project; back to where it was done."""
    return await _change_items(request, seen, project_id, add=True)


@router.post("/projects/{project_id}/items/remove")
async def remove_item(
    project_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    return await _change_items(request, seen, project_id, add=False)


async def _change_items(request: Request, seen: Viewer, project_id: str, add: bool) -> Response:
    form, refusal = await posted(request, seen)
    projects = service(request)
    change = projects.add_item if add else projects.remove_item
    try:
        if refusal is not None:
            raise refusal
        kind, item_id = forms.text(form, "kind"), forms.text(form, "id")
        await run_in_threadpool(change, seen.caller.owner, project_id, kind, item_id)
    except MoviolaError as err:
        if add or not isinstance(err, NotFoundError):
            message = next(iter(forms.errors_for(err).values()))
            return page(request, seen, "problem.html", status_code=400, message=message)
        # Taken out already: what was asked for.
    return go(request, seen, _back(form, f"/projects/{project_id}"))


def _back(form: Any, default: str) -> str:
    return safe_next(forms.text(form, "next"), default)


# --- a video's projects ------------------------------------------------------------------------


def of_video(request: Request, seen: Viewer, video_id: str) -> dict[str, Any]:
    """For the video page: the projects it is in, and those it could be added to."""
    views = service(request).list_projects(seen.caller.owner, None, LISTED)
    holding = [
        v for v in views if any(i.kind == "video" and i.item_id == video_id for i in v.items)
    ]
    return {"in_projects": holding, "other_projects": [v for v in views if v not in holding]}


@router.post("/videos/{video_id}/project")
async def add_video(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """From a video's page: put the video in the project chosen (`project_id`)."""
    form, refusal = await posted(request, seen)
    try:
        if refusal is not None:
            raise refusal
        await run_in_threadpool(
            service(request).add_item,
            seen.caller.owner,
            forms.text(form, "project_id"),
            "video",
            video_id,
        )
    except MoviolaError as err:
        message = next(iter(forms.errors_for(err).values()))
        return page(request, seen, "problem.html", status_code=400, message=message)
    return go(request, seen, f"/videos/{video_id}#projects-h")
