"""Who is calling: an API key's owner, or the keyless local user.

With no API key created, the server answers only requests from this machine, with no key
needed (the `openai` SDK always sends one; any value passes). Once a key exists, every request
needs a live one. A request that came through a proxy (it carries forwarding headers) never
counts as local, so a reverse proxy on the same machine cannot open a keyless server to the
world.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from moviola.api.errors import AuthenticationError, PermissionDeniedError
from moviola.jobs.service import Caller
from moviola.store.keycache import KeyCache
from moviola.web.locality import hostname, is_local_name, is_loopback, through_proxy

# Documents the scheme in the OpenAPI schema; the check itself is below.
bearer = HTTPBearer(auto_error=False, description="An API key from `moviola keys create`.")


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Caller:
    """The caller of `request`, or 401 `invalid_api_key`.

    Async on purpose, though a lookup may block: it is one indexed read (SQLite in WAL mode
    never waits on writers), and usually none (see `KeyCache`), far cheaper than a hop to the
    thread pool on every request, polling included.
    """
    secret = credentials.credentials if credentials is not None else ""
    caller = identify(request, secret)
    request.app.state.limiter.check(caller.owner)
    return caller


def identify(request: Request, secret: str) -> Caller:
    """Who sends `request` with the Bearer token `secret`, or 401 (403 for a foreign page);
    not counted against any rate limit."""
    cache: KeyCache = request.app.state.key_cache
    if not cache.any_keys():
        local = request.client is not None and is_loopback(request.client.host)
        if local and not through_proxy(request.headers):
            _refuse_foreign_pages(request)
            return Caller(owner=None)
        raise AuthenticationError(
            "this server has no API keys yet and answers only local requests without one; "
            "create a key with `moviola keys create NAME` and send it as a Bearer token"
        )
    secret = secret.strip()
    if not secret:
        raise AuthenticationError(
            "missing API key: send it in an 'Authorization: Bearer <key>' header"
        )
    owner = cache.owner_of(secret)
    if owner is None:
        raise AuthenticationError("incorrect or revoked API key")
    return Caller(owner=owner)


def _refuse_foreign_pages(request: Request) -> None:
    """Keyless access is for programs on this machine, not for web pages it visits.

    A page elsewhere can reach a loopback server two ways: by a form post from its own
    origin (no preflight for multipart), and by DNS rebinding (its own host name, resolved to
    127.0.0.1). The first shows in `Origin`, the second in `Host`; both must be local.
    """
    host = hostname(request.headers.get("host", ""))
    origin = request.headers.get("origin")
    origin_host = hostname(urlsplit(origin).netloc) if origin and origin != "null" else ""
    if not is_local_name(host) or (origin is not None and not is_local_name(origin_host)):
        raise PermissionDeniedError(
            "keyless access is only for local programs: this request names another host "
            "(Host or Origin); create a key with `moviola keys create NAME` and send it"
        )
