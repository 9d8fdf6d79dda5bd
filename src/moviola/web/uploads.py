"""Request bodies bounded while they arrive, for every front end that takes uploads (the API
and the Studio).

A declared `Content-Length` over the limit is refused before a byte is read, and a body
without one is counted as it streams, so a client can never make the server hold more than the
limit. A refused body is still read and thrown away up to `DRAIN_LIMIT`, so that the client,
which is still sending, gets to read the refusal rather than a reset connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from moviola.errors import InvalidRequestError, TooLargeError

# Room for the plain fields and the multipart framing around a maximum-size file.
FIELDS_ALLOWANCE = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024


def body_limit(max_upload_bytes: int, content_type: str) -> int:
    """The most bytes a request body may have: one upload, raw in multipart or base64 (4/3
    larger) as a data URL in JSON or a url-encoded form, plus its fields."""
    if content_type == "multipart/form-data":
        return max_upload_bytes + FIELDS_ALLOWANCE
    return max_upload_bytes * 4 // 3 + FIELDS_ALLOWANCE


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def too_large(max_upload_bytes: int, param: str | None = None) -> TooLargeError:
    return TooLargeError(
        f"the request is larger than this server accepts (uploads up to {max_upload_bytes:,} "
        "bytes)",
        param=param,
    )


async def refuse_declared(request: Request, limit: int, max_upload_bytes: int) -> None:
    """Refuse a body whose declared length is over `limit`, before reading any of it."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        if declared - limit <= DRAIN_LIMIT:
            await drain(request.stream())
        raise too_large(max_upload_bytes)


async def limited(request: Request, limit: int, max_upload_bytes: int) -> AsyncIterator[bytes]:
    """The body's chunks, refusing it once more than `limit` bytes have arrived."""
    seen = 0
    stream = request.stream()
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > limit:
                await drain(stream)
                raise too_large(max_upload_bytes)
            yield chunk
    except ClientDisconnect:
        raise InvalidRequestError("the client disconnected while sending the body") from None


async def drain(stream: AsyncIterator[bytes], budget: int = DRAIN_LIMIT) -> None:
    try:
        async for chunk in stream:
            budget -= len(chunk)
            if budget < 0:
                return
    except ClientDisconnect:
        return
