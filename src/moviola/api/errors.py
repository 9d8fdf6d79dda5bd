"""Every failure answers in the OpenAI error envelope, so the `openai` SDK raises the right class.

`{"error": {"message", "type", "param", "code"}}` with the status the SDK maps: 400
BadRequestError, 401 AuthenticationError, 404 NotFoundError, 409 ConflictError, 413 (a plain
APIStatusError), 416 (a download's Range is outside the file), 429 RateLimitError (honouring
`retry-after`), 500 InternalServerError, 502 (the assistant's model kept answering in a shape
Moviola cannot use), 503 (a service the request needs is down: the SDK retries it), 507 (the
data dir's disk is full, however the write failed: nothing was saved).
Unexpected errors are logged with the request id and answered without internals.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from moviola.engine.errors import WeightsNotFoundError
from moviola.errors import (
    AssistantInvalidOutputError,
    ConflictError,
    InsufficientStorageError,
    InvalidRequestError,
    MoviolaError,
    NotFoundError,
    ServiceUnavailableError,
    TooLargeError,
    TooManyRequestsError,
    is_disk_full,
)

log = logging.getLogger("moviola.api")

DISK_FULL = "the server's disk is full: nothing was saved; try again once its operator frees space"


class AuthenticationError(MoviolaError):
    code = "invalid_api_key"


class PermissionDeniedError(MoviolaError):
    code = "forbidden"


def error_response(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(err: MoviolaError) -> int:
    # Most specific first: TooLargeError is an InvalidRequestError.
    for cls, status in (
        (TooLargeError, 413),
        (InvalidRequestError, 400),
        (WeightsNotFoundError, 400),
        (AuthenticationError, 401),
        (PermissionDeniedError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (TooManyRequestsError, 429),
        (AssistantInvalidOutputError, 502),
        (ServiceUnavailableError, 503),
        (InsufficientStorageError, 507),
    ):
        if isinstance(err, cls):
            return status
    return 500


async def moviola_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, MoviolaError)
    status = status_of(err)
    if status == 500:
        return await unexpected_error(request, err)
    message, kind, headers = err.message, "invalid_request_error", None
    if isinstance(err, WeightsNotFoundError):
        message = f"this server cannot run the model yet: {err.message}"
    elif isinstance(err, TooManyRequestsError):
        kind = "rate_limit_error"
        headers = {"retry-after": str(max(1, math.ceil(err.retry_after)))}
    elif isinstance(err, AuthenticationError):
        headers = {"www-authenticate": "Bearer"}
    elif isinstance(err, ServiceUnavailableError):
        kind, headers = "server_error", {"retry-after": "1"}
    elif isinstance(err, AssistantInvalidOutputError):
        # Moviola already asked the model again twice; the SDK's own retries would not help.
        kind, headers = "server_error", {"x-should-retry": "false"}
    elif isinstance(err, InsufficientStorageError):
        return insufficient_storage(request, err, err.message)
    return error_response(
        status, message, type=kind, param=err.param, code=err.code, headers=headers
    )


async def validation_error(request: Request, err: Exception) -> JSONResponse:
    """Pydantic's complaints about a body or query, as one 400 naming the first bad field."""
    errors = err.errors() if isinstance(err, (RequestValidationError, ValidationError)) else []
    message, param = describe(errors)
    return error_response(400, message, param=param, code="invalid_value")


def describe(errors: Sequence[Any]) -> tuple[str, str | None]:
    if not errors:
        return "the request is not valid", None
    first = errors[0]
    # Drop FastAPI's location prefix ("body", "query") and pydantic's union-branch names.
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    loc = [p for p in loc if not p.startswith(("function-", "str", "int", "list[", "dict["))]
    param = ".".join(loc) or None
    if first.get("type") == "missing":
        message = f"{param} is required" if param else "a required field is missing"
    else:
        message = f"invalid {param}: {first.get('msg')}" if param else str(first.get("msg"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})"
    return message, param


async def http_error(request: Request, err: Exception) -> JSONResponse:
    """Unknown routes, wrong methods and the like, from the router itself."""
    assert isinstance(err, HTTPException)
    if err.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}"
        code = "unknown_url"
    elif err.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        code = "method_not_allowed"
    elif err.status_code == 416:
        message, code = str(err.detail), "range_not_satisfiable"
    else:
        message, code = str(err.detail), None
    return error_response(err.status_code, message, code=code, headers=err.headers)


def insufficient_storage(request: Request, err: Exception, message: str) -> JSONResponse:
    log.error(
        "no room on disk for %s %s: %s",
        request.method,
        request.url.path,
        err,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    # The SDK retries 5xx at once, which cannot help until someone frees space.
    return error_response(
        507,
        message,
        type="server_error",
        code="insufficient_storage",
        headers={"x-should-retry": "false"},
    )


async def unexpected_error(request: Request, err: Exception) -> JSONResponse:
    if is_disk_full(err):
        return insufficient_storage(request, err, DISK_FULL)
    request_id = getattr(request.state, "request_id", None)
    log.error(
        "unexpected error on %s %s",
        request.method,
        request.url.path,
        exc_info=err,
        extra={"request_id": request_id},
    )
    headers = {"x-request-id": request_id} if request_id else None
    return error_response(
        500,
        "the server failed on this request; the error is logged"
        + (f" under request id {request_id}" if request_id else ""),
        type="server_error",
        code="internal_error",
        headers=headers,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(MoviolaError, moviola_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    # The errors a full disk surfaces as, answered here rather than by the catch-all below,
    # which passes the error on to the server after answering, as a crash.
    for cls in (OSError, sqlite3.Error, SQLAlchemyError):
        app.add_exception_handler(cls, unexpected_error)
    app.add_exception_handler(Exception, unexpected_error)
