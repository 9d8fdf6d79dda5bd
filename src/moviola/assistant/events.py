"""A conversation turn as Server-Sent Events: the one wire format of the API and the Studio.

    event: delta
    data: {"content": "Try a"}

    event: delta
    data: {"content": " slow push-in"}

    event: done
    data: {"id": "msg_…", "role": "assistant", "content": "Try a slow push-in …", "action": …}

A backend that fails part way ends the stream with `event: error` and the OpenAI error object
(`{"error": {"message", "type", "param", "code"}}`) instead of `done`; nothing of the reply is
stored then. A failure before the first delta is the response's own status (503 …), so a
client sees it as it sees any other error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from moviola.assistant.projects import MessageView
from moviola.assistant.service import Delta, Done, Turn
from moviola.errors import AssistantInvalidOutputError, MoviolaError, ServiceUnavailableError

log = logging.getLogger("moviola.assistant")

HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # no proxy buffering
MEDIA_TYPE = "text/event-stream"


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def error_object(err: BaseException) -> dict[str, Any]:
    """The OpenAI error object for a failure part way through a stream."""
    if not isinstance(err, MoviolaError):
        message, kind, code, param = (
            "the reply failed; the error is logged",
            "server_error",
            "internal_error",
            None,
        )
    else:
        server = isinstance(err, (ServiceUnavailableError, AssistantInvalidOutputError))
        message, code, param = err.message, err.code, err.param
        kind = "server_error" if server else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def start(
    turn: Turn, message_json: Callable[[MessageView], dict[str, Any]]
) -> AsyncIterator[bytes]:
    """The turn's events as SSE bytes (`message_json` writes the stored reply), with the first
    event already waited for: a failure before it (the backend down) raises here, before any
    response is sent, so it is answered with its own status."""
    events = turn.events()
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _encode(first, message_json)
            async for event in events:
                yield _encode(event, message_json)
        except Exception as err:
            if not isinstance(err, MoviolaError):
                log.error("a conversation turn failed part way", exc_info=err)
            yield sse("error", error_object(err))
        finally:
            await events.aclose()

    return body()


def _encode(event: Delta | Done, message_json: Callable[[MessageView], dict[str, Any]]) -> bytes:
    if isinstance(event, Delta):
        return sse("delta", {"content": event.text})
    return sse("done", message_json(event.message))
