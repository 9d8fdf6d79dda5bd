"""Which API replica dispatches: exactly one at a time, chosen by the database.

On PostgreSQL, the replica that holds a session-level advisory lock dispatches. The lock lives
on a connection of its own, so it goes when the process goes: a replica that dies (even by
`kill -9`) closes its socket, the server drops the lock at once, and the next replica to try
(every `RETRY_S`) takes over. A replica cut off without a word (a machine that loses power) is
found out by TCP keepalives within about `KEEPALIVE_S`. The holder checks every `RETRY_S` that
it still holds the lock (`pg_locks`), and stands down the moment it does not; its completions
carry the same check (`fence`), so a replica deposed without knowing it changes nothing.

On SQLite there is a single server process, so it always dispatches.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from sqlalchemy import TextClause, create_engine, text
from sqlalchemy.engine import make_url

log = logging.getLogger("moviola.election")

LOCK_KEY = 0x6D6F7669  # "movi": the same key in every replica of one database
RETRY_S = 1.0
KEEPALIVE_S = 10  # idle 4 s, then 3 probes 2 s apart
APPLICATION = "moviola-dispatcher"


class Election:
    def __init__(self, db_url: str, *, retry_s: float = RETRY_S):
        self.db_url = db_url
        self.retry_s = retry_s
        self.single = make_url(db_url).get_backend_name() != "postgresql"
        self.identity = f"{socket.gethostname()[:40]}:{os.getpid()}"
        self._engine: Any = None
        self._connection: Any = None
        self._pid: int | None = None  # the election connection's server process
        self._leading = self.single
        self._checked = 0.0

    def leading(self) -> bool:
        """Whether this replica dispatches now; tries to become the one when nobody does.
        Cheap to call often: the database is asked at most every `retry_s`."""
        if self.single:
            return True
        if time.monotonic() - self._checked < self.retry_s:
            return self._leading
        self._checked = time.monotonic()
        try:
            if self._leading:
                if not self._holds_lock():
                    raise RuntimeError("the advisory lock is no longer held")
            else:
                self._leading = self._try_acquire()
                if self._leading:
                    log.info("%s now dispatches", self.identity)
        except Exception as err:
            if self._leading:
                log.warning("lost the dispatcher lock (%s): standing down", type(err).__name__)
            self._leading = False
            self._drop_connection()
        return self._leading

    @property
    def standing(self) -> bool:
        """Whether this replica has a connection in the election (it may hold the lock)."""
        return not self.single and self._connection is not None

    def holder(self) -> str | None:
        """Who dispatches (`host:pid`), read from the database; None when nobody does."""
        if self.single:
            return self.identity
        engine = self._engine or self._make_engine()
        with engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.objid = :key AND l.classid = 0"
                ),
                {"key": LOCK_KEY},
            ).scalar()

    def fence(self) -> TextClause | None:
        """A condition a dispatcher's writes carry so that they only apply while this replica
        still holds the lock (None on SQLite, where there is one replica): a replica that lost
        it, and does not know yet, changes nothing."""
        if self.single or self._pid is None:
            return None
        return text(
            "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            f"AND classid = 0 AND objid = {LOCK_KEY} AND pid = {int(self._pid)})"
        )

    def still_leading(self) -> bool:
        """Asks the database now (not throttled): whether this replica still holds the lock."""
        if self.single:
            return True
        if not self._leading or self._connection is None:
            return False
        try:
            held = self._holds_lock()
        except Exception:
            held = False
        if not held:
            log.warning("%s no longer holds the dispatcher lock: standing down", self.identity)
            self._leading = False
            self._drop_connection()
        return held

    def resign(self) -> None:
        """Let another replica dispatch (at shutdown)."""
        if not self.single:
            self._leading = False
            self._drop_connection()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- internals ---------------------------------------------------------------------------

    def _make_engine(self) -> Any:
        url = make_url(self.db_url)
        self._engine = create_engine(
            url,
            pool_size=2,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args={
                "application_name": f"{APPLICATION} {self.identity}",
                "connect_timeout": 5,
                # Our side: a dead server is noticed, and the lock given up, within seconds.
                "keepalives": 1,
                "keepalives_idle": 4,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                # Unacknowledged writes (a server cut off mid-query) fail within 10 s too.
                "tcp_user_timeout": 10_000,
            },
        )
        return self._engine

    def _try_acquire(self) -> bool:
        engine = self._engine or self._make_engine()
        if self._connection is None:
            self._connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # The server's side: a replica that vanishes without closing its socket loses the
            # lock once these probes go unanswered, not after the system's two hours.
            for setting, value in (
                ("tcp_keepalives_idle", 4),
                ("tcp_keepalives_interval", 2),
                ("tcp_keepalives_count", 3),
            ):
                self._connection.execute(text(f"SET {setting} = {value}"))
        self._pid = self._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        return bool(
            self._connection.execute(
                text("SELECT pg_try_advisory_lock(0, :key)"), {"key": LOCK_KEY}
            ).scalar()
        )

    def _holds_lock(self) -> bool:
        """Not just "the connection answers": the server may have ended our session (and the
        lock with it) while a new connection, without the lock, took its place."""
        return bool(
            self._connection.execute(
                text(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = 0 AND objid = :key AND pid = pg_backend_pid()"
                ),
                {"key": LOCK_KEY},
            ).scalar()
        )

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # never back to a pool while it may hold the lock
                self._connection.close()
            except Exception:
                pass
            self._connection = None
            self._pid = None
