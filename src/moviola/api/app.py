"""The server application: the Videos API, health and metrics, and what runs beside them.

At start-up the schema is brought up to date and every job left in progress by a previous
run (a crash, a `kill -9`) goes back to the queue before any worker starts, so nothing is
lost and nothing is held by a worker that no longer exists. The worker supervisor, webhook
dispatcher, sweeper and lease recovery then run until shutdown.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from moviola import __version__
from moviola.api import assistant, characters, chat, errors, health, models, projects, videos
from moviola.api.background import Background
from moviola.api.ratelimit import RateLimiter
from moviola.api.schemas import REQUEST_SCHEMAS
from moviola.assistant.service import Assistant
from moviola.chat.backend import ChatBackend
from moviola.config import Settings
from moviola.jobs import queue
from moviola.jobs.service import VideoService
from moviola.render.frame_check import FrameCheck
from moviola.render.stamp import Stamp
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.keycache import KeyCache

log = logging.getLogger("moviola.server")

DESCRIPTION = """\
Moviola serves the OpenAI Videos API (Sora): point the official `openai` SDK's `base_url` at
`http://HOST:PORT/v1` and `client.videos.*` works unchanged. Moviola's own extras (`seed`,
`negative_prompt`, `num_inference_steps`, `guidance_scale`, `fps`, any catalogue model id)
are optional fields; responses add a `moviola` object with render details.
"""


class RequestIds:
    """Give every response an `x-request-id`, and every request its id for the logs."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(
    settings: Settings, *, on_started: Callable[[FastAPI], None] | None = None
) -> FastAPI:
    """The API alone; `moviola.server.create_app` adds the Studio. `on_started` runs once
    everything is up, while the server's signal handlers are installed."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Before any worker starts: the first run creates (and announces) the development
        # signing identity here, once, and a bad certificate or moderation setting stops the
        # server now rather than every worker it would start.
        Stamp.from_settings(settings)
        FrameCheck.from_settings(settings)
        engine = db.connect(settings.db_url)
        db.migrate(engine)
        sessions = db.sessions(engine)
        blobs = Blobs(settings.blobs_path)
        # Only expired leases: a live worker (a standalone one, or another server's) may hold
        # the rest. A crashed server's jobs come back once their leases run out, within
        # seconds, through the supervisor's periodic recovery.
        requeued = queue.recover(sessions)
        if requeued:
            log.warning("back in the queue after a restart: %s", ", ".join(requeued))
        background = Background(settings, sessions, blobs)

        state = app.state
        state.sessions, state.blobs, state.background = sessions, blobs, background
        state.service = VideoService(settings, sessions, blobs)
        state.limiter = RateLimiter(settings.requests_per_minute)
        state.key_cache = KeyCache(sessions)
        state.metrics = health.registry(sessions, background.supervisor)
        # The assistant's chat server (its own worker, or the operator's), for api and studio.
        state.chat = ChatBackend.from_settings(settings, background.chat)
        # What the API and the Studio ask of the assistant, through that chat server.
        state.assistant = Assistant(settings, sessions, state.chat, state.service)
        background.start()
        if on_started is not None:
            on_started(app)
        log.info("server started with %d worker(s)", settings.workers)
        # Everything loaded so far lives as long as the server: keeping it out of the garbage
        # collector's full passes shortens the pauses that make up polling's slowest answers.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            background.stop()
            await state.chat.aclose()
            engine.dispose()

    app = FastAPI(
        title="Moviola",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(RequestIds)
    # Characters first: /videos/characters/{id} must not be read as /videos/{id}/….
    app.include_router(characters.router)
    app.include_router(videos.router)
    app.include_router(projects.router)
    app.include_router(assistant.router)
    app.include_router(models.router)
    app.include_router(chat.router)
    app.include_router(health.router)
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Add the request-body schemas that routes reference to the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in REQUEST_SCHEMAS.items():
                components.setdefault(name, definition)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
