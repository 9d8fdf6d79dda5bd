"""The chat worker's HTTP face: an OpenAI-compatible server around one `ChatEngine`.

    POST /v1/chat/completions   streamed (SSE `data: {chunk}` … `data: [DONE]`) or not
    GET  /v1/models             the one model it serves

It listens on loopback only, for its own server (a bearer token set at start keeps other local
users out). One reply is written at a time, the others wait their turn; a client that goes
away stops its reply between two tokens, so the model is free for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from moviola.chat.disconnect import CLIENT_GONE, unless_client_gone
from moviola.chat.schemas import ChatCompletionRequest, parse_request
from moviola.engine.chat import ChatEngine, ChatParams, Reply
from moviola.errors import InvalidRequestError, MoviolaError, NotFoundError, ServiceUnavailableError

log = logging.getLogger("moviola.chat")

_DONE = object()


def create_worker_app(engine: ChatEngine, token: str | None = None) -> FastAPI:
    app = FastAPI(title="Moviola chat worker", docs_url=None, redoc_url=None, openapi_url=None)
    created = int(time.time())

    def authorize(request: Request) -> None:
        if token and not secrets.compare_digest(
            request.headers.get("authorization", ""), f"Bearer {token}"
        ):
            raise _Unauthorized("this chat worker answers its own server only")

    @app.exception_handler(MoviolaError)
    async def moviola_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, MoviolaError)
        status = 500
        for cls, code in _STATUS:
            if isinstance(err, cls):
                status = code
                break
        return _error(status, err.message, err.code, err.param)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"object": "list", "data": [_model(engine, created)]})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        authorize(request)
        try:
            body = await request.json()
        except ValueError:
            raise InvalidRequestError("the request body is not JSON") from None
        chat = parse_request(body)
        if chat.model != engine.spec.id:
            raise NotFoundError(
                f"no chat model {chat.model!r} here; this worker serves {engine.spec.id}",
                param="model",
            )
        messages = [{"role": _role(m.role), "content": m.text()} for m in chat.messages]
        params = ChatParams(
            max_tokens=chat.token_limit(),
            temperature=1.0 if chat.temperature is None else chat.temperature,
            top_p=1.0 if chat.top_p is None else chat.top_p,
            seed=chat.seed,
            stop=chat.stop_strings(),
            response_format=chat.response_format.as_dict() if chat.response_format else None,
        )
        writing = _Writing(engine, messages, params)
        try:
            # The request's own errors (too long, a schema llguidance cannot use) come before
            # any token, as a plain error answer.
            reply = await writing.started()
        except BaseException:
            writing.cancel.set()
            raise
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        if chat.stream:
            return StreamingResponse(
                _sse(engine.spec.id, chat, reply, writing, completion_id),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        text = await unless_client_gone(request, _collect(writing))
        if text is None:
            return Response(status_code=CLIENT_GONE)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": engine.spec.id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": reply.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": _usage(reply),
            }
        )

    return app


class _Unauthorized(MoviolaError):
    code = "invalid_api_key"


_STATUS = (
    (_Unauthorized, 401),
    (InvalidRequestError, 400),
    (NotFoundError, 404),
    (ServiceUnavailableError, 503),
)


class _Writing:
    """One reply written in a thread of its own, its deltas handed to the event loop.

    The thread, not the request, owns the model while it writes: a request cancelled (its
    client gone) only sets `cancel`, and the thread stops at the next token and lets the model
    go, whatever happens to the request's task. Replies wait their turn on the engine's lock.
    """

    def __init__(self, engine: ChatEngine, messages: list[dict[str, str]], params: ChatParams):
        self.cancel = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        thread = threading.Thread(
            target=self._run, args=(engine, messages, params), name="chat-reply", daemon=True
        )
        thread.start()

    async def started(self) -> Reply:
        first = await self._queue.get()
        if isinstance(first, BaseException):
            raise first
        assert isinstance(first, Reply)
        return first

    async def next(self) -> str | None:
        """The next text delta; None once the reply is done."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return None if item is _DONE else item

    def _run(self, engine: ChatEngine, messages: list[dict[str, str]], params: ChatParams) -> None:
        try:
            reply = engine.generate(messages, params, self.cancel)
            self._put(reply)
            for delta in reply:
                self._put(delta)
            self._put(_DONE)
        except BaseException as err:  # handed to the request, which answers it
            if not isinstance(err, MoviolaError):
                log.exception("the chat model failed")
            self._put(err)

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


async def _collect(writing: _Writing) -> str:
    """The whole reply; cancelled (its client gone), it lets the model go at the next token."""
    parts = []
    try:
        while (delta := await writing.next()) is not None:
            parts.append(delta)
    finally:
        writing.cancel.set()
    return "".join(parts)


async def _sse(
    model: str,
    chat: ChatCompletionRequest,
    reply: Reply,
    writing: _Writing,
    completion_id: str,
) -> AsyncIterator[str]:
    """The reply as OpenAI streams it: a first chunk with the role, one per text delta, one
    with the finish reason, the usage chunk if asked for, then [DONE]."""
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]

    try:
        yield chunk(choice({"role": "assistant", "content": ""}))
        while (delta := await writing.next()) is not None:
            yield chunk(choice({"content": delta}))
        yield chunk(choice({}, reply.finish_reason or "stop"))
        if chat.stream_options is not None and chat.stream_options.include_usage:
            yield chunk([], usage=_usage(reply))
        yield "data: [DONE]\n\n"
    except MoviolaError as err:
        # Past the first byte the status is sent: the error goes in the stream, as OpenAI
        # does, and the SDK raises it.
        yield f"data: {json.dumps({'error': _envelope(err.message, err.code, err.param)})}\n\n"
    finally:
        writing.cancel.set()  # the client gone, or the stream done: free the model


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _role(role: str) -> str:
    return "system" if role == "developer" else role


def _model(engine: ChatEngine, created: int) -> dict[str, Any]:
    owner = engine.spec.repo_id.split("/")[0] if engine.spec.repo_id else "moviola"
    return {"id": engine.spec.id, "object": "model", "created": created, "owned_by": owner}


def _envelope(
    message: str, code: str | None, param: str | None, kind: str = "server_error"
) -> dict[str, Any]:
    return {"message": message, "type": kind, "param": param, "code": code}


def _error(status: int, message: str, code: str | None, param: str | None = None) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse({"error": _envelope(message, code, param, kind)}, status_code=status)
