"""Share links' tokens: a link's id signed with the server's share secret.

A token is `<the id's random part>.<HMAC-SHA256 of the id, 128 bits>`: a forged or altered one
is refused before the database is asked, and the owner's page can show a link again at any
time (nothing secret is stored: the token is made afresh from the id). The secret is made once
per data dir, atomically — written whole under a temporary name and hard-linked into place,
which fails if another server got there first, and then everyone reads the one that won — so
every server sharing the data dir signs alike and no link stops working after a restart.
Revoking, expiry and the trash are the database's to say (`moviola.store.shares`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from moviola.store import shares
from moviola.store.models import ShareLink, Video

SECRET_FILE = "share-secret"
_PREFIX = "share_"
_MAC_BYTES = 16
# What "Share" offers: how long a new link lives, by the form's value.
EXPIRY_DAYS = {"never": None, "1": 1, "7": 7, "30": 30}


def share_secret(data_dir: Path) -> bytes:
    """The data dir's share-signing secret, made on first use."""
    path = Path(data_dir) / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(6)}.tmp")
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(handle, secrets.token_bytes(32))
        os.fsync(handle)
    finally:
        os.close(handle)
    try:
        os.link(draft, path)  # never replaces: the first server's secret stays
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes()


def _secret(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "share_secret", None)
    if key is None:
        key = state.share_secret = share_secret(state.settings.data_dir)
    return key


def _mac(key: bytes, share_id: str) -> str:
    digest = hmac.new(key, f"share:{share_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")


def token(request: Request, share_id: str) -> str:
    return f"{share_id.removeprefix(_PREFIX)}.{_mac(_secret(request), share_id)}"


def share_id_of(request: Request, given: str) -> str | None:
    """The link id a token names, if its signature is this server's; None for anything else."""
    part, _, mac = given.partition(".")
    if not part or not mac or len(given) > 200 or not part.isalnum():
        return None
    share_id = _PREFIX + part
    if not hmac.compare_digest(mac, _mac(_secret(request), share_id)):
        return None
    return share_id


def url(request: Request, share_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/s/{token(request, share_id)}"


@dataclass(frozen=True)
class Shown:
    """A link as its owner's video page lists it."""

    link: ShareLink
    url: str
    expired: bool


def shown(request: Request, owner: str | None, video: Video) -> list[Shown]:
    """The video's links (not revoked) for its page: live ones first."""
    now = time.time()
    links = shares.of_video(request.app.state.sessions, video.id, owner)
    listed = [
        Shown(link, url(request, link.id), link.expires_at is not None and link.expires_at <= now)
        for link in links
    ]
    return sorted(listed, key=lambda item: item.expired)
