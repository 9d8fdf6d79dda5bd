"""`POST /v1/chat/completions`: OpenAI's chat endpoint, served by the assistant's chat backend.

The request is checked here (unknown fields refused), its messages pass the same moderation
as video prompts, it is written to the audit log (action `chat`), then it goes on through the
`ChatBackend`, the one client of the chat server that the assistant uses too: this server's own
chat worker, or `MOVIOLA_ASSISTANT_BASE_URL`. A streamed reply's chunks are passed through as
Server-Sent Events, ending in `data: [DONE]`, as OpenAI sends them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from moviola.api.auth import authenticate
from moviola.api.forms import read_body
from moviola.api.schemas import REQUEST_SCHEMAS, ErrorResponse
from moviola.chat.backend import ChatBackend
from moviola.chat.disconnect import CLIENT_GONE, unless_client_gone
from moviola.chat.schemas import ChatCompletionRequest, parse_request
from moviola.errors import MoviolaError, NotFoundError
from moviola.jobs.service import Caller
from moviola.store import audit

router = APIRouter(
    prefix="/v1",
    tags=["chat"],
    responses={
        status: {"model": ErrorResponse}
        for status in (400, 401, 404, 503)  # 503: the chat backend is down or too slow
    },
)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body, its schemas among the app's components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        REQUEST_SCHEMAS.setdefault(name, definition)
    REQUEST_SCHEMAS[model.__name__] = schema
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/chat/completions",
    summary="Create a chat completion (the assistant's model)",
    openapi_extra=json_body(ChatCompletionRequest),
)
async def chat_completions(request: Request, caller: Caller = Depends(authenticate)) -> Any:
    state = request.app.state
    body = await read_body(request, state.settings.max_upload_bytes)
    chat = parse_request(body.fields)
    backend: ChatBackend = state.chat
    if chat.model != backend.model:
        raise NotFoundError(
            f"no chat model {chat.model!r} on this server; its assistant's model is "
            f"{backend.model} (GET /v1/models lists what it serves)",
            param="model",
        )
    if state.service.policy.enabled:
        # The video prompts' policy, through its one home: a refusal is audited the same way.
        await run_in_threadpool(
            state.service.moderate, caller, "chat", _text(chat), param="messages"
        )
    # The audit entry is written while the backend starts on the reply (a commit is
    # milliseconds the first token need not wait for), and is in the log before any answer.
    recorded = asyncio.ensure_future(run_in_threadpool(_record, state, caller, chat))
    forwarded = chat.forwarded()
    if not chat.stream:
        forwarded.pop("stream_options", None)
        try:
            # A client gone closes the backend's connection too: the chat worker stops writing.
            completion = await unless_client_gone(request, backend.create(forwarded))
        finally:
            await recorded
        if completion is None:
            return Response(status_code=CLIENT_GONE)
        return JSONResponse(completion.to_dict())
    chunks = backend.create_stream(forwarded)
    try:
        # The first chunk before the status is sent: a backend that is down or too slow is a
        # plain 503, which the SDK raises before any iteration.
        first = await anext(chunks, None)
        await recorded
    except BaseException:
        await chunks.aclose()
        if not recorded.done():
            await recorded
        raise
    return StreamingResponse(
        _events(first, chunks),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _events(first: Any, chunks: Any) -> AsyncIterator[str]:
    try:
        if first is not None:
            yield _event(first.to_dict())
            async for chunk in chunks:
                yield _event(chunk.to_dict())
        yield "data: [DONE]\n\n"
    except MoviolaError as err:
        # Past the first byte the status is sent: the error goes in the stream, as OpenAI
        # does, and the SDK raises it.
        error = {
            "message": err.message,
            "type": "server_error",
            "param": err.param,
            "code": err.code,
        }
        yield _event({"error": error})
    finally:
        # A client gone: closing the backend's stream closes its connection, and the chat
        # worker stops writing.
        await chunks.aclose()


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _record(state: Any, caller: Caller, chat: ChatCompletionRequest) -> None:
    """The call's audit entry: who asked which model what (the last user message, cut)."""
    if not state.settings.audit:
        return
    last_user = next((m.text() for m in reversed(chat.messages) if m.role == "user"), "")
    detail = {
        "model": chat.model,
        "stream": chat.stream,
        "messages": len(chat.messages),
        "chars": len(_text(chat)),
        "response_format": chat.response_format.type if chat.response_format else "text",
        "prompt": last_user[:500],
    }
    if chat.user:
        detail["user"] = chat.user
    audit.record(state.sessions, actor=caller.owner, action="chat", detail=detail)


def _text(chat: ChatCompletionRequest) -> str:
    return "\n".join(message.text() for message in chat.messages)


def served_chat_models(request: Request) -> list[dict[str, Any]]:
    """The chat model this server answers to, for `/v1/models`: the remote server's model by
    the name it is asked for, or the local one where it can run."""
    backend: ChatBackend | None = getattr(request.app.state, "chat", None)
    if backend is None or not backend.serving:
        return []
    owner = "moviola" if backend.is_local else "remote"
    return [{"id": backend.model, "object": "model", "created": 0, "owned_by": owner}]
