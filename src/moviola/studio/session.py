"""Who is looking at the Studio: a signed session cookie, and a CSRF token for every change.

The rules are the API's. With no API key created, only this machine is served, with no
sign-in (and, as for the API, a page that names another host in `Host` or `Origin` is refused,
so DNS rebinding cannot reach it). Once a key exists, a creator signs in with one; the
session remembers the key's id, never the secret, and ends as soon as the key is revoked.

The cookie is HTTP-only and signed with a secret kept in the data dir, so sessions survive a
restart and every server sharing the data dir accepts them. Each session has a random id; the
CSRF token is an HMAC of it, checked on every state-changing request (forms send it as a field,
scripts as the `x-csrf-token` header).

The cookie alone would outlive a sign-out (a copy of it would keep working), so signing out
records the time in `<data dir>/studio-signouts.json`, per key: a cookie issued before its
key's last sign-out is no longer accepted, on any server sharing the data dir.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import Response

from moviola.jobs.service import Caller
from moviola.media.files import atomic_write_bytes
from moviola.web.locality import hostname, is_local_name, through_proxy

COOKIE = "moviola_studio"
MAX_AGE_S = 30 * 24 * 3600

_Response = TypeVar("_Response", bound=Response)


class SignInRequired(Exception):
    """The server has keys and this browser has not signed in with a live one."""


class Refused(Exception):
    """Keyless access from somewhere other than this machine."""


@dataclass
class Viewer:
    caller: Caller
    sid: str
    csrf: str
    local: bool  # a request from this machine, not through a proxy
    key_name: str | None = None  # the key signed in with; None when keyless
    fresh_cookie: str | None = None  # a cookie to set on the response

    @property
    def signed_in(self) -> bool:
        return self.caller.owner is not None

    def apply(self, response: _Response, request: Request) -> _Response:
        if self.fresh_cookie is not None:
            set_cookie(response, request, self.fresh_cookie)
        return response


def secret_key(data_dir: Path) -> bytes:
    """The signing secret: made once, kept beside the database, readable by its owner only."""
    path = Path(data_dir) / "studio-secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)
    try:
        # Two servers starting together may both write: the rename makes one of them win
        # whole, and reading it back gives both the winner.
        atomic_write_bytes(path, secrets.token_bytes(32))
    finally:
        os.umask(old)
    return path.read_bytes()


class SignOuts:
    """When each key last signed out: `{key id: time}`, kept in a small JSON file in the data
    dir (written whole, atomically) and re-read only when the file changes."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "studio-signouts.json"
        self._lock = threading.Lock()
        self._seen: tuple[int, dict[str, float]] = (-1, {})  # (file mtime_ns, contents)

    def _load(self) -> dict[str, float]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if stamp != self._seen[0]:
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                data = {}
            self._seen = (stamp, data if isinstance(data, dict) else {})
        return self._seen[1]

    def last(self, key_id: str) -> float:
        return float(self._load().get(key_id, 0.0))

    def record(self, key_id: str, at: float) -> None:
        with self._lock:
            data = {**self._load(), key_id: at}
            atomic_write_bytes(self.path, json.dumps(data).encode())


def sign_outs(request: Request) -> SignOuts:
    state = request.app.state
    found = getattr(state, "studio_sign_outs", None)
    if found is None:
        found = state.studio_sign_outs = SignOuts(state.settings.data_dir)
    return found


def _signing_key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "studio_secret", None)
    if key is None:
        key = state.studio_secret = secret_key(state.settings.data_dir)
    return key


def _sign(key: bytes, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(key: bytes, cookie: str | None) -> dict[str, Any] | None:
    if not cookie or "." not in cookie:
        return None
    body, mac = cookie.rsplit(".", 1)
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("at", 0) + MAX_AGE_S < time.time():
        return None
    return payload


def csrf_token(key: bytes, sid: str) -> str:
    return hmac.new(key, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def new_session(request: Request, key_id: str | None) -> str:
    """A cookie for a new session (a new id: signing in never keeps the old one)."""
    return _sign(_signing_key(request), _new_payload(key_id))


def _new_payload(key_id: str | None) -> dict[str, Any]:
    # Issued to the microsecond: a sign-in just after a sign-out is after it.
    return {"sid": secrets.token_urlsafe(18), "key": key_id, "at": time.time()}


def is_local(request: Request) -> bool:
    """From this machine, not through a proxy, and naming only local hosts (Host, Origin)."""
    if request.client is None or not is_local_name(request.client.host):
        return False
    if through_proxy(request.headers):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null" and not is_local_name(hostname(urlsplit(origin).netloc)):
        return False
    return is_local_name(hostname(request.headers.get("host", "")))


def identify(request: Request) -> Viewer:
    """The viewer of `request` without requiring a sign-in (for the sign-in page itself).

    May read the database (the key, once a second at most): call it from a worker thread."""
    key = _signing_key(request)
    payload = _unsign(key, request.cookies.get(COOKIE))
    fresh = None
    if payload is None:
        payload = _new_payload(None)
        fresh = _sign(key, payload)
    owner, name = None, None
    if payload.get("key"):
        key_id = str(payload["key"])
        name = request.app.state.key_cache.live_name(key_id)
        # Revoked since, or signed out since: the session ends.
        if name is None or float(payload.get("at", 0)) <= sign_outs(request).last(key_id):
            payload = _new_payload(None)
            fresh = _sign(key, payload)
            name = None
        else:
            owner = key_id
    sid = payload["sid"]
    return Viewer(Caller(owner), sid, csrf_token(key, sid), is_local(request), name, fresh)


def sign_out(request: Request, seen: Viewer) -> None:
    """End every session of the viewer's key, this cookie and any copy of it."""
    if seen.caller.owner is not None:
        sign_outs(request).record(seen.caller.owner, time.time())


def viewer(request: Request) -> Viewer:
    """FastAPI dependency: the signed-in (or keyless local) viewer, else a redirect."""
    seen = identify(request)
    if request.app.state.key_cache.any_keys():
        if not seen.signed_in:
            raise SignInRequired()
    elif not seen.local:
        raise Refused()
    return seen


def check_csrf(request: Request, seen: Viewer, form: Any | None = None) -> bool:
    """Whether a state-changing request carries this session's token (and no foreign origin)."""
    sent = request.headers.get("x-csrf-token") or (form.get("csrf") if form is not None else None)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, seen.csrf):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return True


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/signin?next={quote(target, safe='')}"


def safe_next(target: str, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: never another site (`//host`,
    `/\\host`, which browsers read as `//host`), nor a header-breaking control character."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return default
    return target
