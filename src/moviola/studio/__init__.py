"""The Studio: the web app where creators make, watch and keep their videos.

Server-rendered pages (Jinja) with small vanilla JS modules, served by `moviola serve` at `/`
beside the API and working through the same `VideoService`.
"""

from __future__ import annotations

import inspect
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

    from moviola.studio import (
        assistant,
        favourites,
        live_pages,
        model_manager,
        presets_page,
        projects,
        ratings,
        retry,
        shares,
        trash,
    )
    from moviola.studio.routes import CsrfRefused, page, router
    from moviola.studio.session import Refused, SignInRequired, identify, sign_in_url

    app.include_router(router)
    app.include_router(live_pages.router)
    for more in (assistant.router, projects.router, ratings.router, favourites.router):
        app.include_router(more)
    for more in (retry.router, trash.router, shares.router, model_manager.router):
        app.include_router(more)
    app.include_router(presets_page.router)
    app.mount("/studio/static", StaticFiles(directory=STATIC), name="studio-static")
    app.add_middleware(CompressedPages)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: Exception) -> RedirectResponse:
        return RedirectResponse(sign_in_url(request), status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, _: Exception) -> HTMLResponse:
        return page(request, None, "refused.html", status_code=403)

    _html_errors(app)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: Exception) -> HTMLResponse:
        seen = await run_in_threadpool(identify, request)
        return page(request, seen, "csrf.html", status_code=403)


class CompressedPages:
    """Pages, scripts and styles gzipped for the browsers that take it (a phone on a slow
    network waits a third as long for them). The API is left alone: its answers are small
    and polled often, and compressing each would cost the server more than it saves."""

    def __init__(self, app: Any):
        from starlette.middleware.gzip import GZipMiddleware

        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=6)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not _is_api(scope["path"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Paths that belong to the API and its tooling: their errors stay in the OpenAI envelope.
API_PREFIXES = ("/v1/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json")


def _html_errors(app: FastAPI) -> None:
    """A browser that lands on no route, or sends a method a page does not take, gets a page
    it can read and leave; API clients keep the JSON envelope (the handler installed before)."""
    from starlette.exceptions import HTTPException

    from moviola.studio.routes import page

    api_error = app.exception_handlers[HTTPException]

    async def http_error(request: Request, err: Exception) -> Any:
        assert isinstance(err, HTTPException)
        wants_page = "text/html" in request.headers.get("accept", "")
        if err.status_code not in (404, 405) or not wants_page or _is_api(request.url.path):
            answer = api_error(request, err)
            return await answer if inspect.isawaitable(answer) else answer
        if err.status_code == 404:
            title, message = "Not found", "There is no page at this address."
        else:
            title = "Not here"
            message = (
                "This address is not a page to open: it is where a form sends its answer. "
                "Go back and send the form again."
            )
        response = page(
            request, None, "nowhere.html", err.status_code, title=title, message=message
        )
        response.headers.update(err.headers or {})  # a 405's `allow`
        return response

    app.add_exception_handler(HTTPException, http_error)


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path == "/v1"


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
