"""An image reference (`input_reference`, `last_frame`) in any of its forms → the image's bytes.

A file part, a `data:` URL, or an http(s) URL that the server fetches, within the upload size
limit (counted as it downloads) and one deadline for the whole fetch: a server that drips its
answer a byte at a time never trips a per-read timeout. `file_id` refers to OpenAI's Files
API, which Moviola does not have: it gets a 400 that says what to send instead. The bytes are
not decoded here; the service sniffs and checks them like any upload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote_to_bytes

import httpx

from moviola.api.schemas import ImageReference
from moviola.errors import InvalidRequestError, TooLargeError
from moviola.jobs.service import Upload

PARAM = "input_reference"
FETCH_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
MAX_REDIRECTS = 3


async def reference_image(
    given: ImageReference | str | None,
    upload: Upload | None,
    max_bytes: int,
    *,
    allow_private: bool,
    timeout_s: float,
    field: str = PARAM,
) -> Upload | None:
    """The image `field` names: its file part, or its value (`{image_url}`, a bare URL)."""
    if upload is not None:
        if given is not None:
            raise InvalidRequestError(
                f"{field} is given both as a file and as a value; send one", param=field
            )
        return upload
    if given is None:
        return None
    if isinstance(given, str):  # a bare URL in a form field: take it as the image_url
        given = ImageReference(image_url=given)
    if given.file_id is not None:
        raise InvalidRequestError(
            f"{field}.file_id is not supported: this server has no Files API; upload the "
            'image as a file part, or send {"image_url": "data:image/png;base64,…"} or an '
            "http(s) URL",
            param=f"{field}.file_id",
            code="unsupported_value",
        )
    url = (given.image_url or "").strip()
    if not url:
        raise InvalidRequestError(f"{field} needs an image file, or an image_url", param=field)
    if url[:5].lower() == "data:":
        return Upload(data=decode_data_url(url, max_bytes, field), filename=field)
    if url.lower().startswith(("http://", "https://")):
        data = await fetch(
            url, max_bytes, allow_private=allow_private, timeout_s=timeout_s, field=field
        )
        return Upload(data=data, filename=field)
    raise InvalidRequestError(
        f"{field}.image_url must be a data: URL or an http(s) URL",
        param=f"{field}.image_url",
    )


def decode_data_url(url: str, max_bytes: int, field: str = PARAM) -> bytes:
    """`data:[<type>][;base64],<data>` → bytes (RFC 2397)."""
    param = f"{field}.image_url"
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidRequestError("the data URL has no ',' before its data", param=param)
    if header.lower().endswith(";base64"):
        if len(payload) * 3 // 4 > max_bytes + 3:  # refuse before decoding
            raise _too_large(max_bytes, field)
        try:
            data = base64.b64decode("".join(unquote(payload).split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("the data URL is not valid base64", param=param) from None
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(max_bytes, field)
    if not data:
        raise InvalidRequestError("the data URL is empty", param=param)
    return data


def unquote(text: str) -> str:
    # Base64 in a URL may come percent-encoded ("%2B" for "+").
    return unquote_to_bytes(text).decode("ascii", "replace") if "%" in text else text


async def fetch(
    url: str, max_bytes: int, *, allow_private: bool, timeout_s: float, field: str = PARAM
) -> bytes:
    param = f"{field}.image_url"
    try:
        return await asyncio.wait_for(_fetch(url, max_bytes, allow_private, field), timeout_s)
    except asyncio.TimeoutError:
        raise InvalidRequestError(
            f"{param} took longer than {timeout_s:g} s to fetch; "
            "send the image itself, or a URL that answers sooner",
            param=param,
            code="image_url_timeout",
        ) from None
    except (httpx.InvalidURL, UnicodeError) as err:  # UnicodeError: a host IDNA cannot encode
        raise InvalidRequestError(f"{param} is not a valid URL ({err})", param=param) from None
    except httpx.HTTPError as err:
        raise InvalidRequestError(
            f"could not fetch {param} ({type(err).__name__}: {err})",
            param=param,
        ) from None


async def _fetch(url: str, max_bytes: int, allow_private: bool, field: str) -> bytes:
    param = f"{field}.image_url"
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = url
            headers: dict[str, str] = {}
            extensions: dict[str, str] = {}
            if not allow_private:
                target, headers, extensions = await pinned(url, field)
            request = client.build_request("GET", target, headers=headers)
            request.extensions.update(extensions)
            async with _send(client, request) as response:
                if response.is_redirect and "location" in response.headers:
                    # Each hop is checked again: a public URL may redirect inward.
                    url = str(response.url.join(response.headers["location"]))
                    continue
                return await _read(response, max_bytes, field)
        raise InvalidRequestError(
            f"{param} redirected more than {MAX_REDIRECTS} times",
            param=param,
        )


async def pinned(url: str, field: str = PARAM) -> tuple[str, dict[str, str], dict[str, str]]:
    """`url` rewritten to connect to the one address that was checked, with the Host header
    and TLS server name of the original, so that the server fetches from exactly that address.

    URLs that resolve to this machine or a private network are refused: without this, anyone
    who may create a video could make the server read internal services for them. Connecting
    by name after the check would resolve it a second time, and a name that answers a public
    address first and a private one next (DNS rebinding) would slip through."""
    param = f"{field}.image_url"
    parsed = httpx.URL(url)
    host = parsed.host
    try:
        infos = await asyncio.to_thread(
            socket.getaddrinfo, host, parsed.port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise InvalidRequestError(f"{param}: cannot resolve {host!r}", param=param) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise InvalidRequestError(
                f"{param} points at a private address ({address}); "
                "send the image itself, or allow private URLs (MOVIOLA_FETCH_PRIVATE_URLS)",
                param=param,
            )
    target = str(parsed.copy_with(host=str(addresses[0])))
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return target, {"Host": parsed.netloc.decode("ascii")}, extensions


@asynccontextmanager
async def _send(client: httpx.AsyncClient, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


async def _read(response: httpx.Response, max_bytes: int, field: str) -> bytes:
    if response.status_code != 200:
        raise InvalidRequestError(
            f"fetching {field}.image_url answered HTTP {response.status_code}",
            param=f"{field}.image_url",
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, field)
    chunks, seen = [], 0
    async for chunk in response.aiter_bytes():
        seen += len(chunk)
        if seen > max_bytes:
            raise _too_large(max_bytes, field)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int, field: str) -> TooLargeError:
    return TooLargeError(f"the {field} image is larger than {max_bytes:,} bytes", param=field)
