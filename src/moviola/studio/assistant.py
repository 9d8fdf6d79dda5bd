"""The assistant in the Studio: the panel's conversation (its reply streamed as Server-Sent
Events), the actions it proposes, "Improve" on Create and "From a script" on Storyboard.

Each route is the API's own call to `moviola.assistant.service.Assistant` (the same
moderation, audit log, ownership and limits); only the transport differs. The page's scripts
post forms with `fetch`, the session's CSRF token in the `x-csrf-token` header, and read JSON
back; a refusal is the API's error envelope with its status (a backend that is down: 503
`assistant_unavailable`), which the page shows beside the control that asked.

A turn streams as the API's does (`moviola.assistant.events`): `delta` events as the model
writes, then `done` (the stored reply, with any proposed action) or, when the backend fails
part way, `error`. A backend that fails before its first word is a plain error answer, never
an empty stream.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from moviola.assistant import events
from moviola.assistant.context import PageContext
from moviola.assistant.projects import ConversationView, MessageView
from moviola.assistant.service import Assistant
from moviola.errors import InvalidRequestError
from moviola.studio import forms
from moviola.studio.projects import LISTED, conversation_title
from moviola.studio.projects import service as projects_service
from moviola.studio.routes import posted
from moviola.studio.session import Viewer, viewer

router = APIRouter(prefix="/studio/assistant", include_in_schema=False)

TITLE_CHARS = 80  # a new conversation is called by the start of its first message
CONVERSATIONS_LISTED = 30  # in the panel's picker: the most recently active


def assistant(request: Request) -> Assistant:
    return request.app.state.assistant


async def _form(request: Request, seen: Viewer) -> Any:
    """The posted form, once its CSRF token and the caller's rate are checked."""
    form, refusal = await posted(request, seen)
    if refusal is not None:
        raise refusal
    return form


def _json(request: Request, seen: Viewer, body: Any) -> JSONResponse:
    return seen.apply(JSONResponse(body), request)


def message_json(message: MessageView) -> dict[str, Any]:
    return {
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "action": message.action,
    }


def conversation_json(conversation: ConversationView) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation_title(conversation),
        "project_id": conversation.project_id,
        "messages": [message_json(m) for m in conversation.messages if m.role != "system"],
    }


# --- conversations -----------------------------------------------------------------------------


@router.get("/conversations")
async def choices(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The panel's pickers: the caller's recent conversations and their projects."""
    projects = projects_service(request)
    owner = seen.caller.owner
    conversations = await run_in_threadpool(
        projects.list_conversations, owner, limit=CONVERSATIONS_LISTED
    )
    listed = await run_in_threadpool(projects.list_projects, owner, None, LISTED)
    return _json(
        request,
        seen,
        {
            "conversations": [conversation_json(c) for c in conversations],
            "projects": [{"id": p.id, "name": p.name} for p in listed],
        },
    )


@router.post("/conversations")
async def start(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """A new conversation, in the project chosen (if any), called by its first words."""
    form = await _form(request, seen)
    title = " ".join(forms.text(form, "title").split())
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    made = await run_in_threadpool(
        lambda: projects_service(request).create_conversation(
            seen.caller.owner, project_id=forms.text(form, "project_id") or None, title=title
        )
    )
    return _json(request, seen, conversation_json(made))


@router.get("/conversations/{conversation_id}")
async def history(
    conversation_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    """A conversation with every message, to resume it."""
    found = await run_in_threadpool(
        lambda: projects_service(request).get_conversation(
            seen.caller.owner, conversation_id, all_messages=True
        )
    )
    return _json(request, seen, conversation_json(found))


@router.post("/conversations/{conversation_id}/project")
async def move(conversation_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Put the conversation in another project (`project_id`), or in none (empty)."""
    form = await _form(request, seen)
    projects = projects_service(request)
    owner = seen.caller.owner
    target = forms.text(form, "project_id")

    def move() -> ConversationView:
        current = projects.get_conversation(owner, conversation_id)
        if target:
            projects.add_item(owner, target, "conversation", conversation_id)
        elif current.project_id is not None:
            projects.remove_item(owner, current.project_id, "conversation", conversation_id)
        return projects.get_conversation(owner, conversation_id, all_messages=True)

    return _json(request, seen, conversation_json(await run_in_threadpool(move)))


@router.post("/conversations/{conversation_id}/messages")
async def turn(conversation_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The creator's message (`content`) with the page's context (`context`, JSON), and the
    reply streamed."""
    form = await _form(request, seen)
    page = _page_context(forms.text(form, "context"))
    made = await assistant(request).turn(seen.caller, conversation_id, form.get("content"), page)
    # The API's own stream (its first event waited for, so a backend that is down answers a
    # plain 503 that the panel shows, rather than a stream that never starts).
    body = await events.start(made, message_json)
    return seen.apply(
        StreamingResponse(body, media_type=events.MEDIA_TYPE, headers=events.HEADERS), request
    )


def _page_context(raw: str) -> PageContext:
    if not raw:
        return PageContext()
    try:
        return PageContext.model_validate_json(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem.get("loc", ()))
        raise InvalidRequestError(
            f"context{'.' + where if where else ''}: {problem.get('msg')}", param="context"
        ) from None


@router.post("/conversations/{conversation_id}/messages/{message_id}/action")
async def decide(
    conversation_id: str, message_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    """Record the creator's answer to a proposed action (`state`: confirmed or dismissed),
    before the page performs a confirmed one."""
    form = await _form(request, seen)
    decided = await assistant(request).decide(
        seen.caller, conversation_id, message_id, forms.text(form, "state")
    )
    return _json(request, seen, message_json(decided))


# --- Improve, From a script --------------------------------------------------------------------


@router.post("/prompts")
async def improve(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The idea (`prompt`) written as a prompt for the chosen `model`, with three variants."""
    form = await _form(request, seen)
    written = await assistant(request).write_prompt(
        seen.caller, form.get("prompt"), forms.text(form, "model") or None, via="studio"
    )
    return _json(request, seen, {"prompt": written.prompt, "variants": list(written.variants)})


@router.post("/storyboards")
async def from_script(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """A script (`script`) as the shots of a storyboard on the chosen `model`, `seconds` long
    in all if given."""
    form = await _form(request, seen)
    seconds = _seconds(forms.text(form, "seconds"))
    board = await assistant(request).storyboard(
        seen.caller, form.get("script"), forms.text(form, "model") or None, seconds
    )
    names = await run_in_threadpool(_character_names, request, seen, board.characters)
    return _json(
        request,
        seen,
        {
            "shots": [
                {
                    "prompt": shot.prompt,
                    "seconds": shot.seconds,
                    "character": shot.character,
                    "character_name": names.get(shot.character or ""),
                    "image_hint": shot.image_hint,
                }
                for shot in board.shots
            ],
            "characters": list(board.characters),
            "summarised": board.chunks,
        },
    )


def _seconds(typed: str) -> float | None:
    if not typed:
        return None
    try:
        return float(typed)
    except ValueError:
        raise InvalidRequestError("seconds must be a number", param="seconds") from None


def _character_names(request: Request, seen: Viewer, ids: tuple[str, ...]) -> dict[str, str]:
    if not ids:
        return {}
    rows = request.app.state.service.characters.owned_by(seen.caller.owner)
    return {row.id: row.name for row in rows if row.id in ids}
