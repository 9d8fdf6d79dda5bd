"""Live progress as Server-Sent Events: the server watches the jobs, the page only listens.

One stream per page, for the jobs it shows (or all of the viewer's active jobs). The server
reads their rows every half second and sends an event only when something changed; the browser's
`EventSource` reconnects by itself if the stream drops. A stream ends once every job it watches
has finished, so an idle page holds no connection, and after `MAX_STREAM_S` in any case: the
server cannot tell an open stream that it is shutting down (it waits for open responses to
end), and the browser reconnects within a second, to a fresh stream that starts with the full
state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from moviola.studio import library
from moviola.studio.session import Viewer

INTERVAL_S = 0.5
MAX_STREAM_S = 10.0


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(request: Request, seen: Viewer, ids: list[str]) -> AsyncIterator[str]:
    sessions = request.app.state.sessions
    if not ids:
        ids = await run_in_threadpool(library.active_ids, sessions, seen.caller)
    last: dict[str, dict] = {}
    yield "retry: 1000\n\n"
    ends = time.monotonic() + MAX_STREAM_S
    while time.monotonic() < ends and not await request.is_disconnected():
        states = await run_in_threadpool(library.job_states, sessions, seen.caller, ids)
        found = {state.id for state in states}
        for state in states:
            data = state.as_dict()
            if last.get(state.id) != data:
                last[state.id] = data
                yield _event("job", data)
        for gone in [i for i in ids if i not in found and i not in last]:
            last[gone] = {"id": gone, "status": "deleted"}
            yield _event("job", last[gone])
        if all(s.status not in library.ACTIVE for s in states):
            yield _event("done", {"ids": ids})
            return
        await asyncio.sleep(INTERVAL_S)
