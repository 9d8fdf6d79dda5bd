"""The Studio's pages and the forms they post. Every change goes through `VideoService`, so
validation, quotas and ownership are exactly the API's."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from moviola.assistant.projects import Projects
from moviola.engine.catalogue import Capability, get_model
from moviola.errors import InvalidRequestError, MoviolaError, NotFoundError, TooManyRequestsError
from moviola.jobs.service import EXTENSION_SECONDS
from moviola.media.formats import suffix_for
from moviola.store import adoption, audit, keys
from moviola.store.models import Video, VideoKind, VideoStatus
from moviola.studio import characters as studio_characters
from moviola.studio import composer, downloads, forms, library, live, sharing, snippets, states
from moviola.studio.loras import lora_choices
from moviola.studio.models import choices, soundtrack
from moviola.studio.session import (
    Viewer,
    check_csrf,
    identify,
    new_session,
    safe_next,
    set_cookie,
    sign_out,
    viewer,
)

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


@functools.lru_cache(maxsize=4096)
def _sheet_size(path: str) -> tuple[int, int] | None:
    """A spritesheet's pixel size, from its header (files never change once written)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


TILE_WIDTH = 160  # what `media.write_spritesheet` uses unless told otherwise


def grid_of(sheet: tuple[int, int], frames: int, video_size: str) -> dict[str, int] | None:
    """The grid of a spritesheet `sheet` (width, height) pixels big, holding up to 25 of a
    video's `frames`, read from the file rather than assumed (an imported spritesheet may hold
    fewer frames, or be laid out differently, from the ones rendered here).

    A sheet is a grid of whole tiles of the video's shape. Of the grids that divide it so,
    the near-square one `media.write_spritesheet` makes for some number of frames comes first;
    else the one whose tiles are nearest its usual width."""
    try:
        width, height = (int(n) for n in video_size.split("x"))
    except ValueError:
        return None
    most = min(frames, 25)
    if most < 2 or width <= 0 or height <= 0:
        return None

    def fits(columns: int, rows: int) -> bool:
        if sheet[0] % columns or sheet[1] % rows:
            return False  # tiles that are not whole
        tile_width, tile_height = sheet[0] // columns, sheet[1] // rows
        return abs(tile_height - tile_width * height / width) <= 1  # the video's shape

    for count in range(most, 1, -1):
        columns = math.ceil(math.sqrt(count))
        rows = math.ceil(count / columns)
        if fits(columns, rows):
            return {"columns": columns, "rows": rows, "count": count}
    found = [
        (abs(sheet[0] // columns - TILE_WIDTH), columns, rows)
        for columns in range(1, most + 1)
        for rows in range(1, most + 1)
        if (rows - 1) * columns < most and columns * rows >= 2 and fits(columns, rows)
    ]
    if not found:
        return None
    _, columns, rows = min(found)
    return {"columns": columns, "rows": rows, "count": min(columns * rows, most)}


def _sprite(video: Video) -> dict[str, int] | None:
    """The spritesheet's grid, for scrubbing it on hover."""
    if video.status != VideoStatus.COMPLETED or not video.files or "spritesheet" not in video.files:
        return None
    frames = int((video.result or {}).get("frames") or 0)
    sheet = _sheet_size(str(video.files["spritesheet"].get("path", "")))
    if frames < 2 or sheet is None:
        return None
    return grid_of(sheet, frames, video.size or "")


templates.env.filters["when"] = _age
templates.env.filters["size"] = _bytes
templates.env.globals["sprite"] = _sprite
templates.env.globals["job_state"] = library.job_state  # a job's live state, as first drawn
templates.env.filters["state"] = states.shown_status
templates.env.globals["edit_again_url"] = states.edit_again_url


# Every page carries the session's CSRF token (and one shows a new key's secret): never
# cached, never framed (so no page elsewhere can trick a click), scripts and styles from here.
PAGE_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
}


def page(
    request: Request, seen: Viewer | None, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    if request.method == "POST":
        # A form answered with a page (its errors): the address bar is to show the page the
        # form was on, not the POST-only URL that a reload or a copied link would fail on.
        context.setdefault("address", _form_page(request))
    response = templates.TemplateResponse(
        request,
        name,
        {"viewer": seen, "keys_exist": request.app.state.key_cache.any_keys(), **context},
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
    return seen.apply(response, request) if seen is not None else response


def _form_page(request: Request) -> str | None:
    """The page a form was posted from (its same-origin Referer), where there is one."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def go(request: Request, seen: Viewer, url: str) -> RedirectResponse:
    return seen.apply(RedirectResponse(url, status_code=303), request)


async def posted(request: Request, seen: Viewer) -> tuple[Any, MoviolaError | None]:
    """The form of a state-changing request and, when it may not go ahead, why: too large,
    or too many requests. The caller shows that beside the form, re-rendered as typed, and
    changes nothing. A form whose CSRF token is not this session's (a page elsewhere posting
    here) is refused outright."""
    state = request.app.state
    form, refusal = await forms.read_form(request, state.settings.max_upload_bytes)
    if refusal is not None:
        return form, refusal  # nothing is done with it, so its token need not be checked
    if not check_csrf(request, seen, form):
        raise CsrfRefused()
    # The API's per-key rate applies to what changes things; reading pages (and the dozens of
    # thumbnails a library page shows) does not use it up.
    try:
        state.limiter.check(seen.caller.owner)
    except TooManyRequestsError as err:
        return form, err
    return form, None


def _problem(request: Request, seen: Viewer, refusal: MoviolaError) -> HTMLResponse:
    """A refusal of a form that has no page of its own to come back to."""
    status = 429 if isinstance(refusal, TooManyRequestsError) else 400
    message = next(iter(forms.errors_for(refusal).values()))
    return page(request, seen, "problem.html", status_code=status, message=message)


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
    settings = request.app.state.settings
    models = choices(settings)
    return {
        "models": models,
        **composer.context(settings, request.app.state.sessions, seen.caller, models),
        "soundtrack": soundtrack(settings),
        "loras": lora_choices(settings, models),
        "characters": studio_characters.shown(_service(request), seen.caller),
    }


@router.get("/create", response_class=HTMLResponse)
async def create_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    values = await _composer_values(request, seen)
    context = await run_in_threadpool(_create_context, request, seen)
    return page(request, seen, "create.html", values=values, errors={}, **context)


async def _composer_values(request: Request, seen: Viewer) -> dict[str, Any]:
    """What the composer starts with: an earlier video's values (`from`, with its seed when
    `seed` is given), or a model just installed (`model`); else nothing."""
    values: dict[str, Any] = {}
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
                **forms.extra_values(params, VideoKind.CREATE),
            }
            if not request.query_params.get("seed"):
                values["seed"] = ""  # "try again" draws a new one
    if request.query_params.get("model"):  # "Use on Create", a model just installed
        values["model"] = request.query_params["model"]
    return values


@router.post("/create", response_class=HTMLResponse)
async def create(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    typed = forms.values(form, forms.CREATE_FIELDS)
    typed["characters"] = ",".join(studio_characters.picked(form))
    written = _written(form)
    typed.update(forms.values(form, ("original_prompt", "prompt_variants")))
    try:
        if refusal is not None:
            raise refusal
        image = await forms.upload(form, "image")
        video = await run_in_threadpool(
            _service(request).create,
            seen.caller,
            **written,
            prompt=forms.prompt_value(form),
            model=typed["model"] or None,
            seconds=typed["seconds"] or None,
            size=typed["size"] or None,
            image=image,
            last_frame=await forms.upload(form, "last_frame"),
            extras=forms.extras(form, VideoKind.CREATE),
            characters=studio_characters.picked(form),
            reference_images=await studio_characters.reference_uploads(form),
        )
    except MoviolaError as err:
        context = await run_in_threadpool(_create_context, request, seen)
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


def _written(form: Any) -> dict[str, Any]:
    """After Improve: the idea the prompt was written from and the versions not chosen, kept
    on the video as `enhance_prompt` keeps them (the versions travel as a JSON list)."""
    idea = form.get("original_prompt")
    if not isinstance(idea, str) or not idea.strip():
        return {}
    try:
        versions = json.loads(forms.text(form, "prompt_variants") or "[]")
    except ValueError:
        versions = []
    prompt = forms.prompt_value(form)
    others = (
        [v for v in versions if isinstance(v, str) and v != prompt]
        if isinstance(versions, list)
        else []
    )
    return {"original_prompt": idea, "prompt_variants": others}


# --- a video -----------------------------------------------------------------------------------


def _video_context(request: Request, seen: Viewer, video: Video) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    sessions, settings = request.app.state.sessions, request.app.state.settings
    tree = library.lineage(sessions, seen.caller, video)
    return {
        "video": video,
        "group": library.group_of(sessions, seen.caller, video),
        "tree": tree,
        "tree_size": library.tree_size(tree),
        "python_snippet": snippets.python(video, base),
        "curl_snippet": snippets.curl(video, base),
        # Only the lengths the result may have: the stitched total is held to max_seconds.
        "extension_seconds": [
            s for s in EXTENSION_SECONDS if float(video.seconds) + s <= settings.max_seconds + 1e-9
        ],
        "max_seconds": settings.max_seconds,
        "shares": sharing.shown(request, seen.caller.owner, video),
        "just_shared": request.query_params.get("shared"),
        **_sound_context(request, video),
        **_projects_of(request, seen, video),
    }


def _projects_of(request: Request, seen: Viewer, video: Video) -> dict[str, Any]:
    """The projects the video is in, and those it could be added to."""
    # Imported here: the projects pages build on this module's `page`, `posted` and `go`.
    from moviola.studio.projects import of_video

    return of_video(request, seen, video.id)


def _sound_context(request: Request, video: Video) -> dict[str, Any]:
    """Who can make a finished video's sound: the installed models that hear a picture (they
    make sound and take a video), and a soundtrack when the video's own model is silent."""
    settings = request.app.state.settings
    listening = [
        c
        for c in choices(settings)
        if c.alias_of is None and c.installed and c.spec.audio and c.spec.supports(Capability.VIDEO)
    ]
    try:
        own = get_model(settings.resolve_model(video.model))
        silent = not own.audio
    except MoviolaError:
        silent = True  # an import of unknown origin: its edits use the default model
    return {
        "sound_makers": listening,
        "soundtrack": soundtrack(settings),
        "own_model_silent": silent,
    }


@router.get("/videos/{video_id}", response_class=HTMLResponse)
async def video_page(
    video_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> HTMLResponse:
    video = await _video(request, seen, video_id)
    if video is None:
        return _not_found(request, seen)
    context = await run_in_threadpool(_video_context, request, seen, video)
    values, action = await _again(request, seen, video)
    return page(
        request,
        seen,
        "video.html",
        values=values,
        errors={},
        open_action=action,
        created=bool(request.query_params.get("created")),
        **context,
    )


async def _again(request: Request, seen: Viewer, source: Video) -> tuple[dict[str, str], str]:
    """ "Edit & retry" of a remix, edit or extension of `source` (`?again=ID`): that action's
    form, open and filled in as it was asked."""
    again = await _video(request, seen, request.query_params.get("again") or "")
    if again is None or source.id not in (again.remixed_from_video_id, again.source_video_id):
        return {}, ""
    action = {"remix": "remix", "edit": "edit", "extend": "extend"}.get(again.kind, "")
    params = again.params or {}
    values = {"prompt": again.prompt or "", "audio": str(params.get("audio") or "")}
    if action == "remix":
        values["strength"] = str(params.get("strength") or "")
    if action == "extend":
        values["seconds"] = str(params.get("extend_seconds") or "")
    return {f"{action}_{name}": value for name, value in values.items()}, action


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
    # The prompt names a file being saved, or the player's video ("Save video as…"); the
    # feed's many thumbnails and sprites are shown, not saved, and skip the extra read.
    named_after_prompt = download or variant == "video"
    video = await _video(request, seen, video_id) if named_after_prompt else None
    named = downloads.disposition(
        video.prompt if video else None,
        video_id,
        suffix_for(media_type, SUFFIX.get(variant, ".mp4")),
        "" if variant == "video" else variant.replace("_", "-"),
        attachment=download,
    )
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "cache-control": "private, max-age=86400, immutable",
            "content-disposition": named,
        },
    )


async def _video_action(request: Request, seen: Viewer, video_id: str, action: str) -> Response:
    form, refusal = await posted(request, seen)
    source = await _video(request, seen, video_id)
    if source is None:
        return _not_found(request, seen)
    service = _service(request)
    typed = forms.values(form, ("prompt", "strength", "seconds", "audio", "model"))
    prompt = forms.prompt_value(form)
    # "Add sound" is an edit that keeps the picture; the others say what sound they want.
    extras = {"audio": "add" if action == "sound" else typed["audio"] or None}
    try:
        if refusal is not None:
            raise refusal
        if action == "vary":
            video = await run_in_threadpool(
                service.vary, seen.caller, video_id, n=forms.text(form, "n") or 2
            )
        elif action == "remix":
            video = await run_in_threadpool(
                service.remix,
                seen.caller,
                video_id,
                prompt=prompt,
                strength=typed["strength"],
                extras=extras,
            )
        elif action == "extend":
            video = await run_in_threadpool(
                service.extend,
                seen.caller,
                prompt=prompt,
                seconds=typed["seconds"] or None,
                video_id=video_id,
                extras=extras,
            )
        else:
            video = await run_in_threadpool(
                service.edit,
                seen.caller,
                prompt=prompt,
                video_id=video_id,
                model=typed["model"] or None if action == "sound" else None,
                extras=extras,
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


@router.post("/videos/{video_id}/vary")
async def vary(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """New variations of a video: its request again, with new seeds."""
    return await _video_action(request, seen, video_id, "vary")


@router.post("/videos/{video_id}/sound")
async def add_sound(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    return await _video_action(request, seen, video_id, "sound")


@router.post("/videos/{video_id}/delete")
async def delete(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """Move a video to the trash (a job that is queued or running is cancelled first)."""
    form, refusal = await posted(request, seen)
    if refusal is not None:
        return _problem(request, seen, refusal)
    try:
        await run_in_threadpool(_service(request).delete, seen.caller, video_id)
    except NotFoundError:
        return _not_found(request, seen)
    return go(request, seen, safe_next(forms.text(form, "next"), "/library"))


# --- library -----------------------------------------------------------------------------------


FILTERS = ("q", "status", "model", "rating", "sound", "favourites", "collection")


def _filters(request: Request) -> dict[str, str]:
    query = request.query_params
    return {name: query.get(name, "").strip() for name in FILTERS}


def _before(request: Request) -> int | None:
    """The page cursor (a `seq`); anything else (not a number, past the database's 64-bit
    integers) starts from the newest."""
    before = request.query_params.get("before", "")
    if before.isascii() and before.isdigit() and len(before) <= 19 and int(before) < 2**63:
        return int(before)
    return None


@router.get("/", response_class=HTMLResponse)
@router.get("/library", response_class=HTMLResponse)  # the home's older address, kept for links
async def home_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    """The home: the composer on top of the creator's videos, newest first, filtered."""
    filters = _filters(request)
    sessions = request.app.state.sessions
    result = await run_in_threadpool(
        library.library_page,
        sessions,
        seen.caller,
        status=filters["status"] or None,
        model=filters["model"] or None,
        search=filters["q"] or None,
        rating=filters["rating"] or None,
        sound=filters["sound"] or None,
        favourites=bool(filters["favourites"]),
        collection=filters["collection"] or None,
        before=_before(request),
    )
    more_url = None
    if result.next_before is not None:
        kept = {k: v for k, v in filters.items() if v}
        more_url = "/?" + urlencode({**kept, "before": result.next_before})
    if request.query_params.get("fragment"):  # the next page, for infinite scroll
        return page(request, seen, "_cards.html", videos=result.videos, more_url=more_url)
    models = await run_in_threadpool(library.models_used, sessions, seen.caller)
    if filters["model"] and filters["model"] not in models:  # used since the list was read
        models = sorted([*models, filters["model"]])
    collections = await run_in_threadpool(
        Projects(sessions).list_projects, seen.caller.owner, None, 100
    )
    values = await _composer_values(request, seen)
    context = await run_in_threadpool(_create_context, request, seen)
    return page(
        request,
        seen,
        "library.html",
        videos=result.videos,
        more_url=more_url,
        filters=filters,
        statuses=library.STATUSES,
        used_models=models,
        ratings=library.RATINGS,
        sounds=library.SOUNDS,
        collections=collections,
        values=values,
        errors={},
        **context,
    )


@router.post("/library/delete")
async def delete_many(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    if refusal is not None:
        return _problem(request, seen, refusal)
    service = _service(request)
    for video_id in form.getlist("id")[:500]:
        # Already gone (deleted in another tab) is what was asked for.
        with contextlib.suppress(NotFoundError):
            await run_in_threadpool(service.delete, seen.caller, str(video_id))
    return go(request, seen, safe_next(forms.text(form, "next"), "/"))


@router.get("/library/download")
async def download_many(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    """The chosen videos in one zip (stored, not compressed: videos do not shrink); each one
    packed is a download in the audit log, as through the API."""
    ids = request.query_params.getlist("id")
    sessions = request.app.state.sessions
    rows = await run_in_threadpool(library.by_ids, sessions, seen.caller, ids)

    def pack() -> Path:
        # On disk, not in memory (a selection of long videos can be gigabytes), and in the
        # data dir, which has room for videos, rather than the system's temporary folder.
        folder = _service(request).settings.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="download-", suffix=".zip", dir=folder)
        os.close(handle)
        packed = []
        with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_STORED) as archive:
            for row in rows:
                entry = (row.files or {}).get("video")
                if row.status == VideoStatus.COMPLETED and entry and Path(entry["path"]).is_file():
                    # An imported GIF or WebM keeps its own suffix.
                    suffix = Path(entry["path"]).suffix
                    archive.write(entry["path"], downloads.file_name(row.prompt, row.id, suffix))
                    packed.append(row.id)
        if packed and _service(request).settings.audit:
            with sessions.begin() as session:
                for video_id in packed:
                    detail = {"variant": "video", "archive": "zip"}
                    audit.add(
                        session,
                        actor=seen.caller.owner,
                        action="download",
                        video_id=video_id,
                        detail=detail,
                    )
        return Path(name)

    path = await run_in_threadpool(pack)
    response = _TemporaryFile(path, media_type="application/zip", filename="moviola-videos.zip")
    return seen.apply(response, request)


class _TemporaryFile(FileResponse):
    """A file sent once, then removed: also when the client goes away part way (where a
    background task would not run)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            Path(self.path).unlink(missing_ok=True)


# --- storyboard --------------------------------------------------------------------------------


@router.get("/storyboard", response_class=HTMLResponse)
async def storyboard_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    context = await run_in_threadpool(_create_context, request, seen)
    shots = [{"prompt": "", "seconds": "2"}]
    values: dict[str, str] = {}
    again = await _video(request, seen, request.query_params.get("from") or "")
    if again is not None and again.kind == VideoKind.STORYBOARD:  # "edit & retry"
        params = again.params or {}
        shots = [
            {"prompt": str(shot.get("prompt", "")), "seconds": _number(shot.get("seconds"))}
            for shot in params.get("shots") or []
        ] or shots
        values = {
            "model": again.model,
            "size": again.size,
            **forms.extra_values(params, VideoKind.STORYBOARD),
        }
    return page(request, seen, "storyboard.html", shots=shots, values=values, errors={}, **context)


def _number(value: object) -> str:
    """A stored number as a form shows it: 2.0 as 2."""
    return str(value).removesuffix(".0") if value is not None else ""


@router.post("/storyboard", response_class=HTMLResponse)
async def storyboard(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    typed = forms.values(form, forms.STORYBOARD_FIELDS)
    typed["characters"] = ",".join(studio_characters.picked(form))
    typed_shots = forms.typed_shots(form)
    try:
        if refusal is not None:
            raise refusal
        shots = await forms.shots(form)
        if not shots:
            raise InvalidRequestError("add at least one shot", param="form")
        video = await run_in_threadpool(
            _service(request).storyboard,
            seen.caller,
            shots=shots,
            model=typed["model"] or None,
            size=typed["size"] or None,
            extras=forms.extras(form, VideoKind.STORYBOARD),
            characters=studio_characters.picked(form),
        )
    except MoviolaError as err:
        context = await run_in_threadpool(_create_context, request, seen)
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


# --- characters --------------------------------------------------------------------------------


async def _characters_page(
    request: Request,
    seen: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    service = _service(request)
    return page(
        request,
        seen,
        "characters.html",
        status_code=400 if errors else 200,
        characters=await run_in_threadpool(studio_characters.shown, service, seen.caller),
        faces=service.characters.faces is not None,
        made=request.query_params.get("made"),
        values=values or {},
        errors=errors or {},
    )


@router.get("/characters", response_class=HTMLResponse)
async def characters_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _characters_page(request, seen)


@router.post("/characters", response_class=HTMLResponse)
async def create_character(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    typed = {"name": forms.text(form, "name")}
    try:
        if refusal is not None:
            raise refusal
        clip = await forms.upload(form, "video")
        if clip is None:
            raise InvalidRequestError("choose a short clip of the character", param="video")
        made = await run_in_threadpool(
            _service(request).characters.create,
            seen.caller.owner,
            typed["name"],
            clip.data,
            clip.filename,
        )
    except MoviolaError as err:
        return await _characters_page(request, seen, values=typed, errors=forms.errors_for(err))
    return go(request, seen, f"/characters?made={made.id}#{made.id}")


@router.get("/characters/{character_id}/frame/{variant}")
async def character_frame(
    character_id: str, variant: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    """A character's reference frame, for its owner's pages."""
    characters = _service(request).characters
    try:
        path = await run_in_threadpool(
            characters.reference_path, seen.caller.owner, character_id, variant
        )
    except MoviolaError as err:
        return seen.apply(Response(str(err), status_code=404, media_type="text/plain"), request)
    return FileResponse(
        path, media_type="image/png", headers={"cache-control": "private, max-age=86400"}
    )


# --- queue, live progress ----------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    result = await run_in_threadpool(
        library.library_page,
        request.app.state.sessions,
        seen.caller,
        before=_before(request),
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


def _may_manage_keys(seen: Viewer, keys_exist: bool) -> bool:
    """Keys are the server's to give. The Studio makes the first one, for whoever runs the
    server on this machine (keyless, local); once keys exist, a signed-in creator holds just
    one of them, and the rest are managed with `moviola keys` on the server."""
    return seen.local and not seen.signed_in and not keys_exist


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, seen: Viewer = Depends(viewer)) -> HTMLResponse:
    return await _settings(request, seen)


async def _settings(
    request: Request,
    seen: Viewer,
    *,
    new_secret: str | None = None,
    adopted: dict[str, int] | None = None,
    errors: dict | None = None,
) -> HTMLResponse:
    state = request.app.state
    settings = state.settings
    may_manage = _may_manage_keys(seen, await run_in_threadpool(state.key_cache.any_keys))
    key_list = await run_in_threadpool(keys.list_keys, state.sessions)
    own = [k for k in key_list if k.id == seen.caller.owner]
    # What the first key would take over (see moviola.store.adoption): the form offers it.
    keyless = await run_in_threadpool(adoption.keyless_counts, state.sessions) if may_manage else {}
    return page(
        request,
        seen,
        "settings.html",
        models=choices(settings),
        aliases=settings.model_aliases,
        keys=key_list if may_manage else [],
        own_key=own[0] if own else None,
        may_manage=may_manage,
        new_secret=new_secret,
        keyless=adoption.describe(keyless) if keyless else None,
        adopted=adoption.describe(adopted) if adopted else None,
        errors=errors or {},
        status_code=400 if errors else 200,
    )


@router.post("/settings/keys", response_class=HTMLResponse)
async def create_key(request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    if refusal is not None:
        return await _settings(request, seen, errors=forms.errors_for(refusal))
    state = request.app.state
    # Not the key cache: two keys must not be made from two tabs within its second.
    if not _may_manage_keys(seen, await run_in_threadpool(keys.any_keys, state.sessions)):
        return await _settings(
            request,
            seen,
            errors={"key_name": "keys are managed on the server, with `moviola keys`"},
        )
    name = forms.text(form, "key_name")
    if not name or len(name) > 200:
        return await _settings(
            request, seen, errors={"key_name": "give the key a name (up to 200 characters)"}
        )
    moved: dict[str, int] = {}
    _, secret = await run_in_threadpool(
        keys.create_key,
        state.sessions,
        name,
        before_commit=adoption.on_create(forms.text(form, "adopt") == "1", moved),
    )
    # Shown in this response only (never cached, see PAGE_HEADERS): not stored, never in a URL.
    return await _settings(request, seen, new_secret=secret, adopted=moved)


# --- signing in and out ------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request) -> HTMLResponse:
    seen = await run_in_threadpool(identify, request)
    target = safe_next(request.query_params.get("next", "/"))
    return page(request, seen, "signin.html", next=target, errors={})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    seen = await run_in_threadpool(identify, request)
    form, refusal = await forms.read_form(request, 0)
    if refusal is not None or not check_csrf(request, seen, form):
        raise CsrfRefused()
    target = safe_next(forms.text(form, "next"))
    secret = forms.text(form, "key")
    cache = request.app.state.key_cache
    owner = await run_in_threadpool(cache.owner_of, secret) if secret else None
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
    seen = await run_in_threadpool(identify, request)
    form, refusal = await forms.read_form(request, 0)
    if refusal is not None or not check_csrf(request, seen, form):
        raise CsrfRefused()
    # Ends this session and every copy of its cookie (and the key's other sessions).
    await run_in_threadpool(sign_out, request, seen)
    response = RedirectResponse("/signin", status_code=303)
    set_cookie(response, request, new_session(request, None))
    return response
