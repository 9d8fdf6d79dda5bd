"""Live progress as Server-Sent Events: the server watches the jobs, the page only listens.

One stream per page, for the jobs it shows (or all of the viewer's active jobs). The server
reads their rows every half second (a fixed handful of queries, however many jobs) and sends
an event only when something changed; the browser's `EventSource` reconnects by itself if the
stream drops. A stream ends once every job it watches has finished, so an idle page holds no
connection, and at once when the server is asked to stop (`app.state.stopping`, set by
`moviola.studio.watch_shutdown`), so a shutdown never waits on an open page. Where nothing can
tell a stream of a shutdown (the application run without it), a stream ends after
`MAX_STREAM_S` instead and the browser reconnects to a fresh one.
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
    stopping = getattr(request.app.state, "stopping", None)
    ends = None if stopping is not None else time.monotonic() + MAX_STREAM_S
    if not ids:
        ids = await run_in_threadpool(library.active_ids, sessions, seen.caller)
    last: dict[str, dict] = {}
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        if (stopping is not None and stopping.is_set()) or (ends and time.monotonic() > ends):
            return
        states = await run_in_threadpool(library.job_states, sessions, seen.caller, ids)
        found = {state.id for state in states}
        for state in states:
            data = state.as_dict()
            if last.get(state.id) != data:
                last[state.id] = data
                yield _event("job", data)
        # Gone (trashed, or never the viewer's): said once, even after earlier states were sent.
        said = {i for i, data in last.items() if data["status"] == "deleted"}
        for gone in [i for i in ids if i not in found and i not in said]:
            last[gone] = {"id": gone, "status": "deleted"}
            yield _event("job", last[gone])
        if all(s.status not in library.ACTIVE for s in states):
            yield _event("done", {"ids": ids})
            return
        await asyncio.sleep(INTERVAL_S)
