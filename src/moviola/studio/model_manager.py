"""Settings → Models, and the first-run card: install, follow, cancel and remove models.

Every catalogue model is listed with its size (on disk once installed, else its download), the
GPU memory it needs here (`moviola.jobs.model_fit`) and its licence. Installs run in the server
(`moviola.jobs.installs`); their progress is pushed to the page as Server-Sent Events from
`/settings/models/events`, as a video's is. Installing and removing are for whoever runs the
server, on its machine (a request from this machine, not through a proxy): a model takes tens
of gigabytes of the server's disk, and every creator of the server uses it.

On a first run (no video model installed) Create shows a card recommending one model for this
machine and installing it in one click; once it is in, Create opens with it selected.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from moviola.config import Settings
from moviola.engine.catalogue import ModelSpec, catalogue, get_model
from moviola.errors import (
    ConflictError,
    InsufficientStorageError,
    MoviolaError,
    NotFoundError,
)
from moviola.jobs import hub_sizes, installs, model_fit
from moviola.jobs.install_files import InstallState
from moviola.studio import forms
from moviola.studio.models import CAPABILITY_WORDS, installed_models
from moviola.studio.routes import go, page, posted, templates
from moviola.studio.session import Viewer, safe_next, viewer

router = APIRouter(include_in_schema=False)

INTERVAL_S = 0.5
MODELS_PAGE = "/settings/models"


@dataclass(frozen=True)
class Row:
    """One model as the page shows it."""

    spec: ModelSpec
    installed: bool
    where: str  # "" where it is not here
    size: str
    need: model_fit.Need
    state: InstallState | None
    removable: bool

    @property
    def can(self) -> str:
        return ", ".join(CAPABILITY_WORDS.get(c.value, c.value) for c in self.spec.capabilities)

    @property
    def status(self) -> str:
        if self.state is not None and self.state.status != "installed":
            return self.state.status
        return "installed" if self.installed else "not_installed"

    @property
    def live(self) -> dict[str, Any]:
        return shown(self.spec.id, self.state)


def shown(model_id: str, state: InstallState | None) -> dict[str, Any]:
    """An install's state as the page's script reads it (and as it is first drawn)."""
    if state is None:
        return {"model": model_id, "status": "none", "percent": 0, "line": ""}
    return {
        "model": model_id,
        "status": state.status,
        "percent": state.percent,
        "done": state.done_bytes,
        "total": state.total_bytes,
        "line": installs.describe(state),
    }


def _rows(settings: Settings, machine: model_fit.Machine) -> list[Row]:
    states = installs.all_states(settings.models_path)
    installed = installed_models(settings)
    specs = list(catalogue().values())
    hub_sizes.look_up(s.repo_id for s in specs if s.repo_id and not installed[s.id])
    rows = []
    for spec in specs:
        local = installs.local_folder(spec, settings)
        folder = installs.weights_folder(spec, settings)
        state = states.get(spec.id)
        if state is not None and state.status == "installed" and local is None:
            state = None  # removed by hand since: nothing to say about it
        rows.append(
            Row(
                spec,
                installed[spec.id],
                _where(spec, settings, local, folder),
                _size(spec, folder, installed[spec.id]),
                model_fit.need(spec, machine),
                state,
                removable=local is not None,
            )
        )
    return rows


def _where(spec: ModelSpec, settings: Settings, local: Path | None, folder: Path | None) -> str:
    if local is not None:
        return f"in {local}"
    if folder is not None:
        return f"in the Hugging Face cache ({folder})"
    if spec.repo_id is None and installs.test_models_offered(settings):
        return "built in (an alias names a test model, so the test models are offered)"
    return ""


def _size(spec: ModelSpec, folder: Path | None, installed: bool) -> str:
    if folder is not None:
        return f"{installs.size_text(installs.files_size(folder))} on disk"
    if spec.repo_id is None:
        return "under 1 MB, saved from code" if not installed else "built in"
    size = hub_sizes.known(spec.repo_id)
    if size is not None:
        return f"{installs.size_text(size)} to download"
    if hub_sizes.offline():
        return "download size not known offline (HF_HUB_OFFLINE)"
    return "download size: asking the Hugging Face Hub…"


def _sections(rows: list[Row]) -> list[tuple[str, str, list[Row]]]:
    # Installs under way, cut short or failed first: what needs an eye, or a click.
    busy = [r for r in rows if r.status in ("preparing", "downloading", "interrupted", "failed")]
    rest = [r for r in rows if r not in busy]
    here = [r for r in rest if r.installed]
    others = [r for r in rest if not r.installed and not r.spec.is_test_model]
    tests = [r for r in rest if not r.installed and r.spec.is_test_model]
    return [
        ("installing", "Installing", busy),
        ("installed", "Installed", here),
        ("available", "Available to install", others),
        ("test", "Test models: they make noise, for trying the flow", tests),
    ]


def _free_space(settings: Settings) -> str:
    where = settings.models_path
    while not where.exists() and where != where.parent:
        where = where.parent  # not made yet: the disk it will be on
    try:
        return installs.size_text(shutil.disk_usage(where).free)
    except OSError:
        return "?"


async def _models_page(
    request: Request, seen: Viewer, errors: dict[str, str] | None = None, status: int = 200
) -> HTMLResponse:
    settings = request.app.state.settings
    machine = await run_in_threadpool(model_fit.machine_of, settings)
    rows = await run_in_threadpool(_rows, settings, machine)
    return page(
        request,
        seen,
        "models.html",
        status_code=status,
        sections=_sections(rows),
        machine=machine.describe(),
        models_dir=settings.models_path,
        free=await run_in_threadpool(_free_space, settings),
        may_manage=seen.local,
        errors=errors or {},
    )


@router.get(MODELS_PAGE, response_class=HTMLResponse)
async def models_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _models_page(request, seen)


_STATUS = {ConflictError: 409, NotFoundError: 404, InsufficientStorageError: 507}


async def _act(request: Request, seen: Viewer, model_id: str, action: str) -> Response:
    form, refusal = await posted(request, seen)
    settings = request.app.state.settings
    try:
        if refusal is not None:
            raise refusal
        if not seen.local:
            raise ConflictError(
                "models are installed and removed by whoever runs this server, on its machine "
                "(or with `moviola models pull`)",
                param="model",
            )
        spec = get_model(model_id)
        if action == "install":
            await run_in_threadpool(installs.start, spec, settings)
        elif action == "cancel":
            await run_in_threadpool(installs.cancel, spec.id, settings)
        else:
            await run_in_threadpool(installs.remove, spec, settings, request.app.state.sessions)
    except MoviolaError as err:
        code = next((c for t, c in _STATUS.items() if isinstance(err, t)), 400)
        shown_as = model_id if model_id in catalogue() else "form"
        return await _models_page(request, seen, {shown_as: err.message}, code)
    anchor = f"{MODELS_PAGE}#model-{model_id}"
    return go(request, seen, safe_next(forms.text(form, "next"), anchor))


@router.post(MODELS_PAGE + "/{model_id}/install")
async def install(model_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Install a model, or resume an interrupted or failed install."""
    return await _act(request, seen, model_id, "install")


@router.post(MODELS_PAGE + "/{model_id}/cancel")
async def cancel(model_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Stop an install and discard what it fetched."""
    return await _act(request, seen, model_id, "cancel")


@router.post(MODELS_PAGE + "/{model_id}/remove")
async def remove(model_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Delete an installed model's folder (refused while a job may load it)."""
    return await _act(request, seen, model_id, "remove")


# --- live progress ---------------------------------------------------------------------------


@router.get(MODELS_PAGE + "/events")
async def events(request: Request, seen: Viewer = Depends(viewer)) -> StreamingResponse:
    response = StreamingResponse(
        _stream(request),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
    return seen.apply(response, request)


async def _stream(request: Request) -> AsyncIterator[str]:
    """Every install's state, then each change, until none is running (or the server stops):
    the state files are read twice a second, a handful of small files."""
    models = request.app.state.settings.models_path
    stopping = getattr(request.app.state, "stopping", None)
    last: dict[str, dict[str, Any]] = {}
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        if stopping is not None and stopping.is_set():
            return
        states = await run_in_threadpool(installs.all_states, models)
        for model_id in sorted(set(states) | set(last)):
            data = shown(model_id, states.get(model_id))
            if last.get(model_id) != data:
                last[model_id] = data
                yield f"event: install\ndata: {json.dumps(data)}\n\n"
        if not any(state.running for state in states.values()):
            yield "event: done\ndata: {}\n\n"
            return
        await asyncio.sleep(INTERVAL_S)


# --- the first run -----------------------------------------------------------------------------


def first_run(request: Request) -> dict[str, Any] | None:
    """What Create's first-run card shows: None once any video model is installed (or once
    the one it installed is in, the line that says so)."""
    settings = request.app.state.settings
    just = request.query_params.get("installed", "")
    installed = installed_models(settings)
    if installed.get(just):
        return {"done": get_model(just)}
    if any(installed.values()):
        return None
    machine = model_fit.machine_of(settings)
    spec = model_fit.recommend(machine)
    state = installs.read_state(settings.models_path, spec.id) if spec is not None else None
    return {
        "spec": spec,
        "machine": machine,
        "need": model_fit.need(spec, machine) if spec is not None else None,
        "state": state,
        "live": shown(spec.id, state) if spec is not None else None,
    }


templates.env.globals["first_run"] = first_run
