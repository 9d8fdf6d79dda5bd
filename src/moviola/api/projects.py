"""`/v1/projects`, `/v1/conversations` and `/v1/videos/{id}/rating`: Moviola's own routes for
the assistant's memory (projects and conversations) and for ratings.

Authenticated and owned like videos: another key's project or conversation is a 404. Bodies
are JSON (forms work too) and take only the fields their model declares; each write is in the
audit log (`moviola.assistant.projects`). Lists are OpenAI-style `{"object": "list", "data",
"has_more"}`, most recently changed first; `q` searches, `limit` bounds a page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from moviola.api.auth import authenticate
from moviola.api.forms import read_body
from moviola.api.schemas import ErrorResponse, RequestModel, VideoObject, request_body, video_object
from moviola.assistant import ratings
from moviola.assistant.projects import (
    ConversationView,
    ItemKind,
    MessageView,
    Projects,
    ProjectView,
)
from moviola.jobs.service import Caller

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "The request is invalid; `param` names the field."),
        (401, "Missing or wrong API key."),
        (404, "No such project, conversation or video (or not this key's)."),
        (409, "The action was already decided."),
    )
}
MAX_PAGE = 100

router = APIRouter(prefix="/v1", responses=ERRORS)

Body = TypeVar("Body", bound="_Body")


class _Body(RequestModel):
    """A JSON body of these routes: unknown fields refused (400 naming them), and unlike a
    video request's form fields, an empty string is a value ("notes": "" clears the notes)."""

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            cls.refuse_unknown(data)
        return data


class CreateProjectRequest(_Body):
    what: ClassVar[str] = "a project"
    name: str = Field(description="What the project is called.")
    notes: str = Field("", description="Free text: the idea, the look, what to remember.")


class UpdateProjectRequest(_Body):
    what: ClassVar[str] = "a project update"
    name: str | None = Field(None, description="A new name; absent or null: unchanged.")
    notes: str | None = Field(None, description="New notes; absent or null: unchanged.")


class AddItemRequest(_Body):
    what: ClassVar[str] = "a project item"
    kind: Literal["video", "character", "conversation"]
    id: str = Field(description="The video's, character's or conversation's id.")


class CreateConversationRequest(_Body):
    what: ClassVar[str] = "a conversation"
    project_id: str | None = Field(None, description="The project it belongs to, if any.")
    title: str = ""


class RatingRequest(_Body):
    what: ClassVar[str] = "a rating"
    rating: Literal["up", "down"] | None = Field(
        description="Thumbs up or down; null clears the rating."
    )
    note: str | None = Field(None, description="Why: what worked, what did not.")


class ProjectItemObject(BaseModel):
    kind: ItemKind
    id: str
    added_at: int


class ProjectObject(BaseModel):
    id: str
    object: Literal["project"] = "project"
    name: str
    notes: str
    created_at: int
    updated_at: int
    items: list[ProjectItemObject]


class MessageObject(BaseModel):
    id: str
    object: Literal["conversation.message"] = "conversation.message"
    seq: int
    role: Literal["user", "assistant", "system"]
    content: str
    context: dict[str, Any] | None
    action: dict[str, Any] | None = Field(
        description='An action the assistant proposed ({"type", …}) and its "state": '
        "proposed, confirmed or dismissed."
    )
    created_at: int


class ConversationObject(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    project_id: str | None
    title: str
    summary: str = Field(description="The earlier messages, rolled up, through summary_through.")
    summary_through: int
    created_at: int
    updated_at: int
    messages: list[MessageObject] = Field(description="Every message; empty in lists.")


class ProjectList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProjectObject]
    has_more: bool


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationObject]
    has_more: bool


class Deleted(BaseModel):
    id: str
    object: Literal["project.deleted", "conversation.deleted"]
    deleted: bool = True


def project_object(view: ProjectView) -> dict[str, Any]:
    return {
        "id": view.id,
        "object": "project",
        "name": view.name,
        "notes": view.notes,
        "created_at": int(view.created_at),
        "updated_at": int(view.updated_at),
        "items": [
            {"kind": item.kind, "id": item.item_id, "added_at": int(item.added_at)}
            for item in view.items
        ],
    }


def message_object(view: MessageView) -> dict[str, Any]:
    return {
        "id": view.id,
        "object": "conversation.message",
        "seq": view.seq,
        "role": view.role,
        "content": view.content,
        "context": view.context,
        "action": view.action,
        "created_at": int(view.created_at),
    }


def conversation_object(view: ConversationView) -> dict[str, Any]:
    return {
        "id": view.id,
        "object": "conversation",
        "project_id": view.project_id,
        "title": view.title,
        "summary": view.summary,
        "summary_through": view.summary_through,
        "created_at": int(view.created_at),
        "updated_at": int(view.updated_at),
        "messages": [message_object(message) for message in view.messages],
    }


def page(objects: list[dict[str, Any]], limit: int) -> JSONResponse:
    """A list answer from up to `limit` + 1 objects (the extra one says there are more)."""
    return JSONResponse(
        {"object": "list", "data": objects[:limit], "has_more": len(objects) > limit}
    )


def projects(request: Request) -> Projects:
    state = request.app.state
    return Projects(state.sessions, record=state.settings.audit)


async def parse(request: Request, model: type[Body]) -> Body:
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    model.refuse_unknown(body.fields, body.files)
    return model.model_validate(body.fields)


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A (blocking) database call, off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)


LIMIT = Query(20, ge=1, le=MAX_PAGE, description=f"1–{MAX_PAGE}.")
SEARCH = Query(None, description="Search words, matched anywhere, case-blind.")


# --- projects -------------------------------------------------------------------------------


@router.post(
    "/projects",
    tags=["projects"],
    response_model=ProjectObject,
    summary="Create a project",
    openapi_extra=request_body(CreateProjectRequest),
)
async def create_project(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    params = await parse(request, CreateProjectRequest)
    view = await call(projects(request).create_project, caller.owner, params.name, params.notes)
    return JSONResponse(project_object(view))


@router.get(
    "/projects",
    tags=["projects"],
    response_model=ProjectList,
    summary="List or search projects (name, notes, and what their conversations say)",
)
def list_projects(
    request: Request,
    q: str | None = SEARCH,
    limit: int = LIMIT,
    caller: Caller = Depends(authenticate),
) -> JSONResponse:
    views = projects(request).list_projects(caller.owner, q, limit + 1)
    return page([project_object(view) for view in views], limit)


@router.get(
    "/projects/{project_id}",
    tags=["projects"],
    response_model=ProjectObject,
    summary="Retrieve a project with its items",
)
def get_project(
    project_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    return JSONResponse(project_object(projects(request).get_project(caller.owner, project_id)))


@router.post(
    "/projects/{project_id}",
    tags=["projects"],
    response_model=ProjectObject,
    summary="Rename a project or change its notes",
    openapi_extra=request_body(UpdateProjectRequest),
)
async def update_project(
    project_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    params = await parse(request, UpdateProjectRequest)
    view = await call(
        projects(request).update_project,
        caller.owner,
        project_id,
        name=params.name,
        notes=params.notes,
    )
    return JSONResponse(project_object(view))


@router.delete(
    "/projects/{project_id}",
    tags=["projects"],
    response_model=Deleted,
    summary="Delete a project (its videos, characters and conversations stay)",
)
def delete_project(
    project_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    projects(request).delete_project(caller.owner, project_id)
    return JSONResponse({"id": project_id, "object": "project.deleted", "deleted": True})


@router.post(
    "/projects/{project_id}/items",
    tags=["projects"],
    response_model=ProjectObject,
    summary="Add a video, character or conversation to a project",
    openapi_extra=request_body(AddItemRequest),
)
async def add_item(
    project_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    params = await parse(request, AddItemRequest)
    service = projects(request)
    await call(service.add_item, caller.owner, project_id, params.kind, params.id)
    return JSONResponse(project_object(await call(service.get_project, caller.owner, project_id)))


@router.delete(
    "/projects/{project_id}/items/{kind}/{item_id}",
    tags=["projects"],
    response_model=ProjectObject,
    summary="Take a video, character or conversation out of a project",
)
def remove_item(
    project_id: str,
    kind: str,
    item_id: str,
    request: Request,
    caller: Caller = Depends(authenticate),
) -> JSONResponse:
    service = projects(request)
    service.remove_item(caller.owner, project_id, kind, item_id)
    return JSONResponse(project_object(service.get_project(caller.owner, project_id)))


# --- conversations --------------------------------------------------------------------------


@router.post(
    "/conversations",
    tags=["conversations"],
    response_model=ConversationObject,
    summary="Start a conversation with the assistant, in a project or not",
    openapi_extra=request_body(CreateConversationRequest),
)
async def create_conversation(
    request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    params = await parse(request, CreateConversationRequest)
    view = await call(
        projects(request).create_conversation,
        caller.owner,
        project_id=params.project_id,
        title=params.title,
    )
    return JSONResponse(conversation_object(view))


@router.get(
    "/conversations",
    tags=["conversations"],
    response_model=ConversationList,
    summary="List or search conversations (title, summary and messages)",
)
def list_conversations(
    request: Request,
    project_id: str | None = Query(None, description="Only this project's."),
    q: str | None = SEARCH,
    limit: int = LIMIT,
    caller: Caller = Depends(authenticate),
) -> JSONResponse:
    views = projects(request).list_conversations(
        caller.owner, project_id=project_id, query=q, limit=limit + 1
    )
    return page([conversation_object(view) for view in views], limit)


@router.get(
    "/conversations/{conversation_id}",
    tags=["conversations"],
    response_model=ConversationObject,
    summary="Retrieve a conversation with all its messages",
)
def get_conversation(
    conversation_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    view = projects(request).get_conversation(caller.owner, conversation_id, all_messages=True)
    return JSONResponse(conversation_object(view))


@router.delete(
    "/conversations/{conversation_id}",
    tags=["conversations"],
    response_model=Deleted,
    summary="Delete a conversation and its messages",
)
def delete_conversation(
    conversation_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    projects(request).delete_conversation(caller.owner, conversation_id)
    return JSONResponse({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


# --- ratings --------------------------------------------------------------------------------


@router.post(
    "/videos/{video_id}/rating",
    tags=["videos"],
    response_model=VideoObject,
    summary="Rate a video: thumbs up or down and a note (null clears)",
    openapi_extra=request_body(RatingRequest),
)
async def rate_video(
    video_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    params = await parse(request, RatingRequest)
    state = request.app.state
    value = ratings.value(params.rating)
    await call(projects(request).rate_video, caller.owner, video_id, value, params.note)
    row = await call(state.service.get, caller, video_id)
    return JSONResponse(video_object(row, state.settings.retention_hours * 3600))
