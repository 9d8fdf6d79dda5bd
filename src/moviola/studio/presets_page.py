"""Settings → Presets: the creator's style and camera presets, to add, edit and remove.

A refused form comes back with what was typed and the message beside the field at fault, and
nothing is stored; a built-in preset edited becomes the creator's own, one removed is hidden.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.errors import MoviolaError
from moviola.studio import forms, presets
from moviola.studio.routes import go, page, posted
from moviola.studio.session import Viewer, viewer

router = APIRouter(include_in_schema=False)

# The form's own fields; any other is a setting the preset would set, checked as such.
_FORM = ("csrf", "kind", "name", "addition", "replaces")


async def _page(
    request: Request,
    seen: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    shown = await run_in_threadpool(presets.shown, request.app.state.sessions, seen.caller.owner)
    return page(
        request,
        seen,
        "presets.html",
        status_code=400 if errors else 200,
        presets=shown,
        kinds=presets.KINDS,
        params=presets.PARAMS,
        speeds=presets.SPEEDS,
        values=values or {},
        errors=errors or {},
        saved=request.query_params.get("saved", ""),
    )


@router.get("/settings/presets", response_class=HTMLResponse)
async def presets_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _page(request, seen)


@router.post("/settings/presets", response_class=HTMLResponse)
async def save_preset(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    typed = {key: _text(form, key) for key in form}
    try:
        if refusal is not None:
            raise refusal
        params = {key: value for key, value in typed.items() if key not in _FORM}
        await run_in_threadpool(
            lambda: presets.save(
                request.app.state.sessions,
                seen.caller.owner,
                kind=typed.get("kind", ""),
                name=typed.get("name", ""),
                addition=typed.get("addition", ""),
                params=params,
                replaces=typed.get("replaces", ""),
            )
        )
    except MoviolaError as err:
        return await _page(request, seen, values=typed, errors=forms.errors_for(err))
    return go(request, seen, "/settings/presets?saved=saved")


@router.post("/settings/presets/delete", response_class=HTMLResponse)
async def remove_preset(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    try:
        if refusal is not None:
            raise refusal
        await run_in_threadpool(
            lambda: presets.remove(
                request.app.state.sessions,
                seen.caller.owner,
                kind=_text(form, "kind"),
                name=_text(form, "name"),
            )
        )
    except MoviolaError as err:
        return await _page(request, seen, errors=forms.errors_for(err))
    return go(request, seen, "/settings/presets?saved=removed")


def _text(form: Any, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""
