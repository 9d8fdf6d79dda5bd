"""The key lookups every request makes (the API's and the Studio's), remembered briefly.

Keys are created and revoked by `moviola keys` in another process, so a change takes effect
within `ttl_s`. Only accepted keys are remembered (by hash, never the secret), so guessing
cannot grow the cache.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola.store import keys
from moviola.store.models import ApiKey


class KeyCache:
    MAX_ENTRIES = 10_000

    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 1.0):
        self.sessions = sessions
        self.ttl_s = ttl_s
        self._any = (False, 0.0)  # (value, valid until)
        self._owners: dict[str, tuple[str, float]] = {}  # secret hash → (key id, until)
        self._names: dict[str, tuple[str | None, float]] = {}  # key id → (name if live, until)

    def any_keys(self) -> bool:
        value, until = self._any
        now = time.monotonic()
        if now >= until:
            value = keys.any_keys(self.sessions)
            self._any = (value, now + self.ttl_s)
        return value

    def owner_of(self, secret: str) -> str | None:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        now = time.monotonic()
        cached = self._owners.get(digest)
        if cached is not None and now < cached[1]:
            return cached[0]
        key = keys.verify(self.sessions, secret)
        if key is None:
            self._owners.pop(digest, None)
            return None
        if len(self._owners) >= self.MAX_ENTRIES:
            self._owners.clear()
        self._owners[digest] = (key.id, now + self.ttl_s)
        return key.id

    def live_name(self, key_id: str) -> str | None:
        """The name of the key `key_id` while it is live; None once revoked (or unknown).

        Key ids come from signed session cookies, never from guesses, so they are cached
        whether live or not."""
        now = time.monotonic()
        cached = self._names.get(key_id)
        if cached is not None and now < cached[1]:
            return cached[0]
        with self.sessions() as session:
            name = session.execute(
                select(ApiKey.name).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            ).scalar()
        if len(self._names) >= self.MAX_ENTRIES:
            self._names.clear()
        self._names[key_id] = (name, now + self.ttl_s)
        return name
