"""The Studio's pages and the forms they post. Every change goes through `VideoService`, so
validation, quotas and ownership are exactly the API's."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from moviola.errors import InvalidRequestError, MoviolaError, NotFoundError
from moviola.jobs.service import EXTENSION_SECONDS
from moviola.store import keys
from moviola.store.models import Video
from moviola.studio import forms, library, live, snippets
from moviola.studio.models import choices
from moviola.studio.session import Viewer, check_csrf, identify, new_session, set_cookie, viewer

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)

SUFFIX = {"video": ".mp4", "thumbnail": ".webp", "spritesheet": ".jpg"}


def _age(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _bytes(n: int | None) -> str:
    size = float(n or 0)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _sprite(video: Video) -> dict[str, int] | None:
    """The spritesheet's grid, as `media.write_spritesheet` lays it out by default."""
    if video.status != "completed" or not video.files or "spritesheet" not in video.files:
        return None
    frames = int((video.result or {}).get("frames") or 0)
    count = min(frames, 25)
    if count < 2:
        return None
    columns = int(count**0.5) + (0 if int(count**0.5) ** 2 == count else 1)
    return {"columns": columns, "rows": -(-count // columns), "count": count}


templates.env.filters["when"] = _age
templates.env.filters["size"] = _bytes
templates.env.globals["sprite"] = _sprite


def page(
    request: Request, seen: Viewer, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        name,
        {"viewer": seen, "keys_exist": request.app.state.key_cache.any_keys(), **context},
        status_code=status_code,
    )
    return seen.apply(response, request)


def go(request: Request, seen: Viewer, url: str) -> RedirectResponse:
    return seen.apply(RedirectResponse(url, status_code=303), request)


async def posted(request: Request, seen: Viewer) -> Any:
    """The form of a state-changing request, or a refusal when its CSRF token is not this
    session's (a page elsewhere posting here)."""
    state = request.app.state
    form = await request.form(max_part_size=state.settings.max_upload_bytes)
    if not check_csrf(request, seen, form):
        raise CsrfRefused()
    # The API's per-key rate applies to what changes things; reading pages (and the dozens of
    # thumbnails a library page shows) does not use it up.
    state.limiter.check(seen.caller.owner)
    return form


class CsrfRefused(Exception):
    pass


def _service(request: Request) -> Any:
    return request.app.state.service


async def _video(request: Request, seen: Viewer, video_id: str) -> Video | None:
    try:
        return await run_in_threadpool(_service(request).get, seen.caller, video_id)
    except NotFoundError:
        return None


def _not_found(request: Request, seen: Viewer) -> HTMLResponse:
    return page(request, seen, "missing.html", status_code=404)


# --- create ------------------------------------------------------------------------------------


def _create_context(request: Request, seen: Viewer) -> dict[str, Any]:
    models = choices(request.app.state.settings)
    return {"models": models, "model_data": [m.as_dict() for m in models]}


@router.get("/", response_class=HTMLResponse)
async def create_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    values: dict[str, str] = {}
    again = request.query_params.get("from")
    if again:  # "try again" and "reuse seed" start from an earlier video's values
        video = await _video(request, seen, again)
        if video is not None:
            params = video.params or {}
            values = {
                "prompt": video.prompt or "",
                "model": video.model,
                "size": video.size,
                "seconds": video.seconds,
                "negative_prompt": params.get("negative_prompt") or "",
                "steps": str(params.get("num_inference_steps") or ""),
                "guidance": str(params.get("guidance_scale") or ""),
                "seed": str(params.get("seed", "")) if request.query_params.get("seed") else "",
            }
    context = _create_context(request, seen)
    return page(request, seen, "create.html", values=values, errors={}, **context)


@router.post("/create", response_class=HTMLResponse)
async def create(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form = await posted(request, seen)
    typed = forms.values(form, forms.CREATE_FIELDS)
    try:
        image = await forms.upload(form, "image")
        video = await run_in_threadpool(
            _service(request).create,
            seen.caller,
            prompt=forms.prompt_value(form),
            model=typed["model"] or None,
            seconds=typed["seconds"] or None,
            size=typed["size"] or None,
            image=image,
            extras=forms.extras(form),
        )
    except MoviolaError as err:
        context = _create_context(request, seen)
        return page(
            request,
            seen,
            "create.html",
            status_code=400,
            values=typed,
            errors=forms.errors_for(err),
            **context,
        )
    return go(request, seen, f"/videos/{video.id}?created=1")


# --- a video -----------------------------------------------------------------------------------


def _video_context(request: Request, seen: Viewer, video: Video) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    tree = library.lineage(request.app.state.sessions, seen.caller, video)
    return {
        "video": video,
        "tree": tree,
        "tree_size": library.tree_size(tree),
        "python_snippet": snippets.python(video, base),
        "curl_snippet": snippets.curl(video, base),
        "extension_seconds": EXTENSION_SECONDS,
    }


@router.get("/videos/{video_id}", response_class=HTMLResponse)
async def video_page(
    video_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> HTMLResponse:
    video = await _video(request, seen, video_id)
    if video is None:
        return _not_found(request, seen)
    context = await run_in_threadpool(_video_context, request, seen, video)
    return page(
        request,
        seen,
        "video.html",
        values={},
        errors={},
        created=bool(request.query_params.get("created")),
        **context,
    )


@router.get("/videos/{video_id}/file/{variant}")
async def video_file(
    video_id: str, variant: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    """The content endpoint's files for the browser: ranges for seeking, a name for saving."""
    try:
        path, media_type = await run_in_threadpool(
            _service(request).content, seen.caller, video_id, variant
        )
    except MoviolaError as err:
        return seen.apply(Response(str(err), status_code=404, media_type="text/plain"), request)
    download = request.query_params.get("download") is not None
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{video_id}{SUFFIX.get(variant, '.mp4')}"
        if variant in SUFFIX
        else f"{video_id}-{variant}.mp4",
        content_disposition_type="attachment" if download else "inline",
        headers={"cache-control": "private, max-age=86400, immutable"},
    )


async def _video_action(request: Request, seen: Viewer, video_id: str, action: str) -> Response:
    form = await posted(request, seen)
    source = await _video(request, seen, video_id)
    if source is None:
        return _not_found(request, seen)
    service = _service(request)
    typed = forms.values(form, ("prompt", "strength", "seconds"))
    prompt = forms.prompt_value(form)
    try:
        if action == "remix":
            video = await run_in_threadpool(
                service.remix, seen.caller, video_id, prompt=prompt, strength=typed["strength"]
            )
        elif action == "extend":
            video = await run_in_threadpool(
                service.extend,
                seen.caller,
                prompt=prompt,
                seconds=typed["seconds"] or None,
                video_id=video_id,
            )
        else:
            video = await run_in_threadpool(
                service.edit, seen.caller, prompt=prompt, video_id=video_id
            )
    except MoviolaError as err:
        errors = {f"{action}_{name}": msg for name, msg in forms.errors_for(err).items()}
        context = await run_in_threadpool(_video_context, request, seen, source)
        return page(
            request,
            seen,
            "video.html",
            status_code=400,
            values={f"{action}_{k}": v for k, v in typed.items()},
            errors=errors,
            open_action=action,
            **context,
        )
    return go(request, seen, f"/videos/{video.id}")


@router.post("/videos/{video_id}/remix")
async def remix(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    return await _video_action(request, seen, video_id, "remix")


@router.post("/videos/{video_id}/extend")
async def extend(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    return await _video_action(request, seen, video_id, "extend")


@router.post("/videos/{video_id}/edit")
async def edit(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    return await _video_action(request, seen, video_id, "edit")


@router.post("/videos/{video_id}/delete")
async def delete(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Delete a video, or cancel a job that is queued or running (the same thing)."""
    form = await posted(request, seen)
    try:
        await run_in_threadpool(_service(request).delete, seen.caller, video_id)
    except NotFoundError:
        return _not_found(request, seen)
    back = forms.text(form, "next")
    return go(
        request, seen, back if back.startswith("/") and not back.startswith("//") else "/library"
    )


# --- library -----------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, str]:
    query = request.query_params
    return {name: query.get(name, "").strip() for name in ("status", "model", "q")}


@router.get("/library", response_class=HTMLResponse)
async def library_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    filters = _filters(request)
    before = request.query_params.get("before", "")
    sessions = request.app.state.sessions
    result = await run_in_threadpool(
        library.library_page,
        sessions,
        seen.caller,
        status=filters["status"] or None,
        model=filters["model"] or None,
        search=filters["q"] or None,
        before=int(before) if before.isdigit() else None,
    )
    more_url = None
    if result.next_before is not None:
        kept = {k: v for k, v in filters.items() if v}
        more_url = "/library?" + urlencode({**kept, "before": result.next_before})
    if request.query_params.get("fragment"):  # the next page, for infinite scroll
        return page(request, seen, "_cards.html", videos=result.videos, more_url=more_url)
    models = await run_in_threadpool(library.models_used, sessions, seen.caller)
    return page(
        request,
        seen,
        "library.html",
        videos=result.videos,
        more_url=more_url,
        filters=filters,
        statuses=library.STATUSES,
        models=models,
    )


@router.post("/library/delete")
async def delete_many(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form = await posted(request, seen)
    service = _service(request)
    for video_id in form.getlist("id")[:500]:
        # Already gone (deleted in another tab) is what was asked for.
        with contextlib.suppress(NotFoundError):
            await run_in_threadpool(service.delete, seen.caller, str(video_id))
    return go(request, seen, "/library")


@router.get("/library/download")
async def download_many(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The chosen videos' MP4s in one zip (stored, not compressed: MP4s do not shrink)."""
    ids = request.query_params.getlist("id")
    rows = await run_in_threadpool(library.by_ids, request.app.state.sessions, seen.caller, ids)

    def pack() -> Path:
        # On disk, not in memory: a selection of long videos can be gigabytes.
        handle, name = tempfile.mkstemp(prefix="moviola-download-", suffix=".zip")
        os.close(handle)
        with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_STORED) as archive:
            for row in rows:
                entry = (row.files or {}).get("video")
                if row.status == "completed" and entry and Path(entry["path"]).is_file():
                    archive.write(entry["path"], f"{row.id}.mp4")
        return Path(name)

    path = await run_in_threadpool(pack)
    response = FileResponse(
        path,
        media_type="application/zip",
        filename="moviola-videos.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
    return seen.apply(response, request)


# --- storyboard --------------------------------------------------------------------------------


@router.get("/storyboard", response_class=HTMLResponse)
async def storyboard_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    context = _create_context(request, seen)
    blank = [{"prompt": "", "seconds": "2"}]
    return page(request, seen, "storyboard.html", shots=blank, values={}, errors={}, **context)


@router.post("/storyboard", response_class=HTMLResponse)
async def storyboard(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form = await posted(request, seen)
    typed = forms.values(form, ("model", "size", "seed", "negative_prompt", "steps", "guidance"))
    shots, typed_shots = await forms.shots(form)
    try:
        if not shots:
            raise InvalidRequestError("add at least one shot", param="form")
        video = await run_in_threadpool(
            _service(request).storyboard,
            seen.caller,
            shots=shots,
            model=typed["model"] or None,
            size=typed["size"] or None,
            extras=forms.extras(form),
        )
    except MoviolaError as err:
        context = _create_context(request, seen)
        return page(
            request,
            seen,
            "storyboard.html",
            status_code=400,
            shots=typed_shots or [{"prompt": "", "seconds": "2"}],
            values=typed,
            errors=forms.errors_for(err),
            **context,
        )
    return go(request, seen, f"/videos/{video.id}?created=1")


# --- queue, live progress ----------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    before = request.query_params.get("before", "")
    result = await run_in_threadpool(
        library.library_page,
        request.app.state.sessions,
        seen.caller,
        before=int(before) if before.isdigit() else None,
        limit=50,
    )
    more_url = f"/queue?before={result.next_before}" if result.next_before else None
    return page(request, seen, "queue.html", videos=result.videos, more_url=more_url)


@router.get("/studio/events")
async def events(request: Request, seen: Viewer = Depends(viewer)) -> StreamingResponse:
    ids = [i for i in request.query_params.getlist("id") if i][:200]
    response = StreamingResponse(
        live.stream(request, seen, ids),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
    return seen.apply(response, request)


# --- settings and keys -------------------------------------------------------------------------


def _may_manage_keys(seen: Viewer) -> bool:
    """Keys are the server's to give: managed from this machine only (or with `moviola keys`)."""
    return seen.local


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _settings(request, seen)


async def _settings(
    request: Request, seen: Viewer, *, new_secret: str | None = None, errors: dict | None = None
) -> HTMLResponse:
    settings = request.app.state.settings
    key_list = (
        await run_in_threadpool(keys.list_keys, request.app.state.sessions)
        if _may_manage_keys(seen)
        else []
    )
    return page(
        request,
        seen,
        "settings.html",
        models=choices(settings),
        aliases=settings.model_aliases,
        keys=key_list,
        may_manage=_may_manage_keys(seen),
        new_secret=new_secret,
        errors=errors or {},
        status_code=400 if errors else 200,
    )


@router.post("/settings/keys", response_class=HTMLResponse)
async def create_key(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form = await posted(request, seen)
    if not _may_manage_keys(seen):
        return await _settings(request, seen, errors={"key_name": "keys are managed locally"})
    name = forms.text(form, "key_name")
    if not name or len(name) > 200:
        return await _settings(
            request, seen, errors={"key_name": "give the key a name (up to 200 characters)"}
        )
    _, secret = await run_in_threadpool(keys.create_key, request.app.state.sessions, name)
    # Shown in this response only: it is not stored and is never in a URL.
    return await _settings(request, seen, new_secret=secret)


@router.post("/settings/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    await posted(request, seen)
    if _may_manage_keys(seen):
        await run_in_threadpool(keys.revoke, request.app.state.sessions, key_id)
    return go(request, seen, "/settings")


# --- signing in and out ------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request) -> HTMLResponse:
    seen = identify(request)
    return page(request, seen, "signin.html", next=request.query_params.get("next", "/"), errors={})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    seen = identify(request)
    form = await request.form()
    if not check_csrf(request, seen, form):
        raise CsrfRefused()
    target = forms.text(form, "next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    secret = forms.text(form, "key")
    owner = request.app.state.key_cache.owner_of(secret) if secret else None
    if owner is None:
        return page(
            request,
            seen,
            "signin.html",
            status_code=400,
            next=target,
            errors={"key": "that key is not right, or it was revoked"},
        )
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, new_session(request, owner))
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    seen = identify(request)
    form = await request.form()
    if not check_csrf(request, seen, form):
        raise CsrfRefused()
    response = RedirectResponse("/signin", status_code=303)
    set_cookie(response, request, new_session(request, None))
    return response
