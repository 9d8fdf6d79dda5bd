"""API keys: shown once at creation, stored only as a SHA-256 hash.

Keys are long random secrets (not passwords), so one fast hash is the right tool: it makes a
leaked database useless for calling the API, and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.store.models import ApiKey, new_id

PREFIX = "mvk_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    sessions: sessionmaker[Session],
    name: str,
    *,
    before_commit: Callable[[Session, ApiKey], None] | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is not kept and cannot be shown again.
    `before_commit` does what must happen with the key, in its transaction (adopting the
    keyless library: `moviola.store.adoption`)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), name=name, prefix=secret[:12], secret_hash=_hash(secret))
    with sessions.begin() as session:
        session.add(key)
        if before_commit is not None:
            session.flush()
            before_commit(session, key)
    return key, secret


def live_key(sessions: sessionmaker[Session], key_id: str) -> ApiKey | None:
    """The live key with id (or shown prefix) `key_id`."""
    with sessions() as session:
        return session.execute(
            select(ApiKey).where(
                (ApiKey.id == key_id) | (ApiKey.prefix == key_id), ApiKey.revoked_at.is_(None)
            )
        ).scalar()


def verify(sessions: sessionmaker[Session], secret: str) -> ApiKey | None:
    """The live key `secret` belongs to, or None."""
    with sessions() as session:
        return session.execute(
            select(ApiKey).where(ApiKey.secret_hash == _hash(secret), ApiKey.revoked_at.is_(None))
        ).scalar()


def list_keys(sessions: sessionmaker[Session]) -> list[ApiKey]:
    with sessions() as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def any_keys(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return (
            session.execute(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)).first()
            is not None
        )


def revoke(sessions: sessionmaker[Session], key_id: str) -> bool:
    """Revoke by id (or by the shown prefix); False when no live key matched."""
    with sessions.begin() as session:
        done = session.execute(
            update(ApiKey)
            .where((ApiKey.id == key_id) | (ApiKey.prefix == key_id), ApiKey.revoked_at.is_(None))
            .values(revoked_at=time.time())
            .returning(ApiKey.id)
        ).first()
    return done is not None
