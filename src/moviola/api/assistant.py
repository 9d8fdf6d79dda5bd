"""The assistant's routes: prompt writing, script → storyboard, and a conversation's turn.

    POST /v1/assistant/prompts       {"prompt": idea, "model"}        → {"prompt", "variants"}
    POST /v1/assistant/storyboards   {"script", "model", "seconds"}   → {"shots", "characters"}
    POST /v1/conversations/{id}/messages   {"content", "context", "stream"}
         → the stored reply, or (stream) Server-Sent Events: delta …, done (see
           `moviola.assistant.events`)
    POST /v1/conversations/{id}/messages/{message_id}/action   {"state": confirmed|dismissed}

Authenticated and owned like videos; each call is moderated and audited by
`moviola.assistant.service.Assistant`, which the Studio calls too. The chat backend down or
past its deadline is a 503 `assistant_unavailable`; a model that keeps answering in the wrong
shape, a 502 `assistant_invalid_output`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from moviola.api.auth import authenticate
from moviola.api.forms import read_body
from moviola.api.projects import MessageObject, message_object
from moviola.api.schemas import ErrorResponse, RequestModel, request_body
from moviola.assistant import events
from moviola.assistant.context import PageContext
from moviola.assistant.service import Assistant
from moviola.jobs.service import DEFAULT_MODEL, Caller

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "The request is invalid, or the text too long or blocked; `param` names it."),
        (401, "Missing or wrong API key."),
        (404, "No such conversation, message or video (or not this key's)."),
        (409, "The action was already decided."),
        (502, "The assistant's model kept answering in a shape Moviola cannot use."),
        (503, "The assistant's chat backend is down or did not answer in time."),
    )
}

router = APIRouter(prefix="/v1", tags=["assistant"], responses=ERRORS)


class _Body(RequestModel):
    """A body of these routes: the fields declared, any other refused (400 naming it)."""


class PromptRequest(_Body):
    what: ClassVar[str] = "a prompt request"
    prompt: str = Field(description="The idea, in a few words or many.")
    model: str | None = Field(
        None, description="The video model the prompt is for (sora-2 by default): its style."
    )


class StoryboardRequest(_Body):
    what: ClassVar[str] = "a storyboard request"
    script: str = Field(description="A script, story or article (up to 100,000 characters).")
    model: str | None = Field(None, description="The video model the shots are for.")
    seconds: float | None = Field(
        None, gt=0, description="The whole storyboard's length; the shots add up to it."
    )


class MessageRequest(_Body):
    what: ClassVar[str] = "a message"
    content: str = Field(description="What the creator writes.")
    context: PageContext | None = Field(
        None, description="The page it was written on; Moviola adds what it knows of it."
    )
    stream: bool = Field(False, description="Stream the reply as Server-Sent Events.")


class ActionRequest(_Body):
    what: ClassVar[str] = "an action decision"
    state: Literal["confirmed", "dismissed"] = Field(
        description="confirmed: the client performs the action now; dismissed: it does not."
    )


class WrittenPromptObject(BaseModel):
    object: Literal["assistant.prompt"] = "assistant.prompt"
    model: str
    prompt: str
    variants: list[str]


class ShotObject(BaseModel):
    prompt: str
    seconds: int
    character: str | None = Field(description="The id of the character the shot shows.")
    image_hint: str | None = Field(description="What a start image for the shot would show.")


class StoryboardObject(BaseModel):
    object: Literal["assistant.storyboard"] = "assistant.storyboard"
    model: str
    shots: list[ShotObject] = Field(description="In order: a storyboard request's shots.")
    characters: list[str] = Field(description="The storyboard's characters: the ids used.")


def assistant(request: Request) -> Assistant:
    return request.app.state.assistant


async def parse(request: Request, model: type[_Body]) -> Any:
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    model.refuse_unknown(body.fields, body.files)
    return model.model_validate(body.fields)


@router.post(
    "/assistant/prompts",
    response_model=WrittenPromptObject,
    summary="Write a detailed prompt from an idea, in the model's style, with 3 variants",
    openapi_extra=request_body(PromptRequest),
)
async def write_prompt(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    params: PromptRequest = await parse(request, PromptRequest)
    model = params.model or DEFAULT_MODEL
    written = await assistant(request).write_prompt(caller, params.prompt, model)
    return JSONResponse(
        {
            "object": "assistant.prompt",
            "model": model,
            "prompt": written.prompt,
            "variants": list(written.variants),
        }
    )


@router.post(
    "/assistant/storyboards",
    response_model=StoryboardObject,
    summary="Turn a script, story or article into storyboard shots",
    openapi_extra=request_body(StoryboardRequest),
)
async def storyboard(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    params: StoryboardRequest = await parse(request, StoryboardRequest)
    model = params.model or DEFAULT_MODEL
    board = await assistant(request).storyboard(caller, params.script, model, params.seconds)
    return JSONResponse(
        {
            "object": "assistant.storyboard",
            "model": model,
            "shots": [
                {
                    "prompt": shot.prompt,
                    "seconds": shot.seconds,
                    "character": shot.character,
                    "image_hint": shot.image_hint,
                }
                for shot in board.shots
            ],
            "characters": list(board.characters),
        }
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageObject,
    summary="Say something to the assistant: the reply, whole or streamed (SSE)",
    openapi_extra=request_body(MessageRequest),
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def post_message(
    conversation_id: str, request: Request, caller: Caller = Depends(authenticate)
) -> Any:
    params: MessageRequest = await parse(request, MessageRequest)
    turn = await assistant(request).turn(caller, conversation_id, params.content, params.context)
    if not params.stream:
        return JSONResponse(message_object(await turn.reply()))
    body = await events.start(turn, message_object)
    return StreamingResponse(body, media_type=events.MEDIA_TYPE, headers=events.HEADERS)


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/action",
    response_model=MessageObject,
    summary="Confirm or dismiss the action a reply proposed",
    openapi_extra=request_body(ActionRequest),
)
async def decide(
    conversation_id: str,
    message_id: str,
    request: Request,
    caller: Caller = Depends(authenticate),
) -> JSONResponse:
    params: ActionRequest = await parse(request, ActionRequest)
    view = await assistant(request).decide(caller, conversation_id, message_id, params.state)
    return JSONResponse(message_object(view))
