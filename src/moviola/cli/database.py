"""The database of this machine's settings, for commands that read or change it directly."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def open_sessions() -> sessionmaker[Session]:
    """A session factory on the configured database, its schema brought up to date first
    (a command may be the first thing run against a fresh data dir)."""
    from moviola.config import get_settings
    from moviola.store import db

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    return db.sessions(engine)
