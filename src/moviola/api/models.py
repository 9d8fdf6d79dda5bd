"""`/v1/models`: the models this server answers to, as OpenAI lists them.

The configured aliases (`sora-2`, `sora-2-pro`, whatever their targets) are always served,
as a Sora client names them; catalogue ids only where their weights are here, so that a
client picking from the list picks something that renders. Whether weights are here is a
look at the disk, kept for a few seconds (clients ask at start-up, sometimes per request).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from moviola.api.auth import authenticate
from moviola.api.chat import served_chat_models
from moviola.api.schemas import ErrorResponse
from moviola.config import Settings
from moviola.errors import NotFoundError
from moviola.jobs.service import Caller

router = APIRouter(
    prefix="/v1",
    tags=["models"],
    responses={status: {"model": ErrorResponse} for status in (401, 404)},
)

TTL_S = 5.0
_installed_seen: dict[str, tuple[dict[str, dict[str, Any]], float]] = {}  # path → (found, until)


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def served_models(settings: Settings) -> list[dict[str, Any]]:
    """Aliases first, then the catalogue ids whose weights this server has."""
    installed = _installed(settings)
    served = [
        _model(alias, installed.get(target, {}).get("created", 0), "moviola")
        for alias, target in sorted(settings.model_aliases.items())
    ]
    return served + [_model(name, **found) for name, found in installed.items()]


def _installed(settings: Settings) -> dict[str, dict[str, Any]]:
    """`{catalogue id: {created, owned_by}}` for the models whose weights are here."""
    from moviola.engine.catalogue import catalogue
    from moviola.engine.loading import find_weights

    where = str(settings.models_path)
    now = time.monotonic()
    cached = _installed_seen.get(where)
    if cached is not None and now < cached[1]:
        return cached[0]
    found = {}
    for spec in catalogue().values():
        try:
            weights = find_weights(spec, settings.models_path)
            # Built-in test models have no weights on disk, hence no date.
            created = int(weights.stat().st_mtime) if weights is not None else 0
        except Exception:  # WeightsNotFoundError, or an unreadable models folder
            continue
        owner = spec.repo_id.split("/")[0] if spec.repo_id else "moviola"
        found[spec.id] = {"created": created, "owned_by": owner}
    _installed_seen[where] = (found, now + TTL_S)
    return found


def _model(name: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}


@router.get("/models", response_model=ModelList, summary="List the models this server serves")
def list_models(request: Request, caller: Caller = Depends(authenticate)) -> JSONResponse:
    served = served_models(request.app.state.settings) + served_chat_models(request)
    return JSONResponse({"object": "list", "data": served})


@router.get("/models/{model}", response_model=ModelObject, summary="Retrieve a model")
def retrieve_model(
    model: str, request: Request, caller: Caller = Depends(authenticate)
) -> JSONResponse:
    for served in served_models(request.app.state.settings) + served_chat_models(request):
        if served["id"] == model:
            return JSONResponse(served)
    raise NotFoundError(
        f"no model {model!r} on this server; GET /v1/models lists the ones it serves",
        param="model",
    )
