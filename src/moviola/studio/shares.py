"""Sharing a finished video: its owner makes and revokes unlisted links on its page; whoever
holds one watches it at `/s/{token}`, read-only, signed in or not, even once keys exist.

Every link that does not work — revoked, expired, forged, its video in the trash — gets the
same plain 404 page, so a link says nothing about why.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from moviola.errors import InvalidRequestError, MoviolaError, NotFoundError
from moviola.jobs.service import Caller
from moviola.media import formats
from moviola.store import audit, shares
from moviola.store.models import ShareLink, Video, VideoStatus
from moviola.studio import downloads, forms, sharing
from moviola.studio.routes import _not_found, _problem, _service, go, page, posted
from moviola.studio.session import Viewer, viewer
from moviola.web.files import RangedFileResponse

router = APIRouter(include_in_schema=False)

DAY_S = 24 * 3600.0
# An unlisted page: kept out of search engines and caches, its address never sent onwards.
SHARED_HEADERS = {"x-robots-tag": "noindex, nofollow", "referrer-policy": "no-referrer"}


# --- the owner's side ------------------------------------------------------------------------


@router.post("/videos/{video_id}/shares")
async def share(video_id: str, request: Request, seen: Viewer = Depends(viewer)) -> Response:
    form, refusal = await posted(request, seen)
    state = request.app.state
    try:
        if refusal is not None:
            raise refusal
        choice = forms.text(form, "expires") or "never"
        if choice not in sharing.EXPIRY_DAYS:
            raise InvalidRequestError("choose how long the link works", param="expires")
        days = sharing.EXPIRY_DAYS[choice]
        video = await run_in_threadpool(_service(request).get, seen.caller, video_id)
        if video.status is not VideoStatus.COMPLETED:
            raise InvalidRequestError("only a finished video can be shared", param="expires")
        link = await run_in_threadpool(
            shares.create,
            state.sessions,
            video.id,
            seen.caller.owner,
            expires_at=time.time() + days * DAY_S if days else None,
            audited=state.settings.audit,
        )
    except NotFoundError:
        return _not_found(request, seen)
    except MoviolaError as err:
        return _problem(request, seen, err)
    return go(request, seen, f"/videos/{video_id}?shared={link.id}#share")


@router.post("/videos/{video_id}/shares/{share_id}/revoke")
async def revoke(
    video_id: str, share_id: str, request: Request, seen: Viewer = Depends(viewer)
) -> Response:
    _, refusal = await posted(request, seen)
    if refusal is not None:
        return _problem(request, seen, refusal)
    state = request.app.state
    # Revoked already (in another tab) is what was asked for.
    await run_in_threadpool(
        shares.revoke,
        state.sessions,
        share_id,
        video_id,
        seen.caller.owner,
        audited=state.settings.audit,
    )
    return go(request, seen, f"/videos/{video_id}#share")


# --- the visitor's side ----------------------------------------------------------------------


def _gone(request: Request) -> HTMLResponse:
    response = page(request, None, "share_missing.html", status_code=404)
    response.headers.update(SHARED_HEADERS)
    return response


async def _shared(request: Request, token: str) -> tuple[ShareLink, Video] | None:
    share_id = sharing.share_id_of(request, token)
    if share_id is None:
        return None
    return await run_in_threadpool(shares.shared, request.app.state.sessions, share_id)


@router.get("/s/{token}", response_class=HTMLResponse)
async def shared_page(token: str, request: Request) -> HTMLResponse:
    found = await _shared(request, token)
    if found is None:
        return _gone(request)
    link, video = found
    response = page(request, None, "shared.html", video=video, link=link, token=token)
    response.headers.update(SHARED_HEADERS)
    return response


@router.get("/s/{token}/{variant}")
async def shared_file(token: str, variant: str, request: Request) -> Response:
    """The shared video's MP4 (HTTP ranges, for seeking) or its thumbnail."""
    found = await _shared(request, token)
    if found is None or variant not in ("video", "thumbnail"):
        return _gone(request)
    link, video = found
    service = _service(request)
    download = request.query_params.get("download") is not None
    try:
        # As its owner would read it: the same checks (expired files, imported types).
        path, media_type = await run_in_threadpool(
            service.content, Caller(link.owner), video.id, variant, audited=False
        )
    except MoviolaError:
        return _gone(request)
    if download and variant == "video" and service.settings.audit:
        detail = {"variant": variant, "share": link.id}
        await run_in_threadpool(
            audit.record,
            request.app.state.sessions,
            actor=None,
            action="download",
            video_id=video.id,
            detail=detail,
        )
    suffix = formats.SUFFIXES.get(media_type, path.suffix)
    return RangedFileResponse(
        path,
        media_type=media_type,
        headers={
            "cache-control": "private, max-age=300",
            "content-disposition": downloads.disposition(
                video.prompt,
                video.id,
                suffix,
                "" if variant == "video" else variant,
                attachment=download,
            ),
            **SHARED_HEADERS,
        },
    )
