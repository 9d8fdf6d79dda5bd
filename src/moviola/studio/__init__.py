"""The Studio: the web app where creators make, watch and keep their videos.

Server-rendered pages (Jinja) with small vanilla JS modules, served by `moviola serve` at `/`
beside the API and working through the same `VideoService`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the Studio from `app`: its pages at `/`, its scripts and styles under
    `/studio/static`."""
    from starlette.concurrency import run_in_threadpool

    from moviola.studio.routes import CsrfRefused, page, router
    from moviola.studio.session import Refused, SignInRequired, identify, sign_in_url

    app.include_router(router)
    app.mount("/studio/static", StaticFiles(directory=STATIC), name="studio-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: Exception) -> RedirectResponse:
        return RedirectResponse(sign_in_url(request), status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, _: Exception) -> HTMLResponse:
        return page(request, None, "refused.html", status_code=403)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: Exception) -> HTMLResponse:
        seen = await run_in_threadpool(identify, request)
        return page(request, seen, "csrf.html", status_code=403)


def watch_shutdown(app: FastAPI) -> None:
    """Let the Studio's live streams see the server's shutdown as soon as it is asked for.

    The server waits for open responses to end before it shuts the application down, and a
    live-progress stream would only end when its jobs do: so the stop signals (as the server
    handles them) also set `app.state.stopping`, which every stream checks. Call it while the
    application starts, once the server has installed its signal handlers."""
    stopping = app.state.stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread; streams then end by themselves
    for number in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue  # no server handler to chain to: the default ends the process anyway

        def chained(sig: int, frame: Any, previous: Any = previous) -> None:
            stopping.set()
            previous(sig, frame)

        signal.signal(number, chained)
