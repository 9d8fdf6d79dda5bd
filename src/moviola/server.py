"""The application `moviola serve` runs: the Videos API with the Studio beside it.

The two front ends know nothing of each other (both work through `moviola.jobs`); this is
where they are put together.
"""

from __future__ import annotations

from fastapi import FastAPI

from moviola import studio
from moviola.api.app import create_app as create_api
from moviola.config import Settings


def create_app(settings: Settings) -> FastAPI:
    # Live streams end at once when the server is stopped.
    app = create_api(settings, on_started=studio.watch_shutdown)
    studio.mount(app)  # the web app at /, beside the API
    return app
