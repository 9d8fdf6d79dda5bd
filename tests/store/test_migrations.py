"""The Alembic migrations build exactly the schema the models describe, and run twice safely."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from moviola.store.db import connect, migrate, sqlite_url
from moviola.store.models import Base


def test_migrations_match_the_models(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    migrate(engine)
    migrate(engine)  # idempotent: every start runs it
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    tables = set(inspect(engine).get_table_names())
    assert {"videos", "api_keys", "webhook_events", "characters", "audit_events"} <= tables
