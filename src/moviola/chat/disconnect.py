"""A reply that is not streamed still stops when its client goes away.

Starlette cancels a streamed response whose client disconnects, but a plain handler runs to
the end: a chat reply nobody will read would keep the model busy, and the next caller waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")

POLL_S = 0.25  # how soon a client that has gone is noticed

# The status nginx logs for a client that closed the request: nobody reads this answer.
CLIENT_GONE = 499


async def unless_client_gone(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result (never None), or None once the client has gone, `work` cancelled."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                return None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
