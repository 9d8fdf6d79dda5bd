"""The Studio: the web app where creators make, watch and keep their videos.

Server-rendered pages (Jinja) with small vanilla JS modules, served by `moviola serve` at `/`
beside the API and working through the same `VideoService`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the Studio from `app`: its pages at `/`, its scripts and styles under
    `/studio/static`."""
    from moviola.studio.routes import CsrfRefused, router, templates
    from moviola.studio.session import Refused, SignInRequired, identify, sign_in_url

    app.include_router(router)
    app.mount("/studio/static", StaticFiles(directory=STATIC), name="studio-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: Exception) -> RedirectResponse:
        return RedirectResponse(sign_in_url(request), status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, _: Exception) -> HTMLResponse:
        return templates.TemplateResponse(request, "refused.html", {"viewer": None}, 403)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: Exception) -> HTMLResponse:
        seen = identify(request)
        response = templates.TemplateResponse(request, "csrf.html", {"viewer": seen}, 403)
        return seen.apply(response, request)
