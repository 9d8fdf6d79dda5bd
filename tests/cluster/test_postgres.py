"""PostgreSQL as the shared database: the same migrations, and the dispatcher election."""

from __future__ import annotations

import time

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from moviola.jobs.ray.election import Election
from moviola.store.db import connect, migrate
from moviola.store.models import Base


def test_migrations_build_the_models_schema_on_postgresql(database_url):
    engine = connect(database_url)
    migrate(engine)
    migrate(engine)  # idempotent: every replica runs it at start-up
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    tables = set(inspect(engine).get_table_names())
    assert {"videos", "api_keys", "webhook_events", "characters", "audit_events"} <= tables
    engine.dispose()


def test_exactly_one_replica_dispatches_and_another_takes_over(database_url):
    first, second = Election(database_url, retry_s=0.1), Election(database_url, retry_s=0.1)
    try:
        assert first.leading()
        time.sleep(0.15)
        assert not second.leading()
        assert first.holder().endswith(first.identity)  # named for `moviola cluster status`
        first.resign()  # or dies: its connection closes, and the lock goes with it
        deadline = time.monotonic() + 5
        while not second.leading():
            assert time.monotonic() < deadline, "nobody took over"
            time.sleep(0.1)
        time.sleep(0.15)
        assert not first.leading()
    finally:
        first.resign()
        second.resign()


def test_sqlite_has_a_single_dispatcher_without_election(tmp_path):
    assert Election(f"sqlite:///{tmp_path / 'moviola.db'}").leading()


def test_the_librarys_filters_run_on_postgresql(database_url):
    """JSON paths and sub-selects as PostgreSQL reads them, not only SQLite."""
    from moviola.jobs.service import Caller
    from moviola.store.db import sessions
    from moviola.store.models import Video
    from moviola.studio.library import library_page

    engine = connect(database_url)
    migrate(engine)
    made = sessions(engine)
    sound = {"codec": "aac", "sample_rate": 48000, "channels": 2}
    with made.begin() as session:
        for n, (audio, starred) in enumerate(((sound, True), (None, False), (sound, False))):
            session.add(
                Video(
                    id=f"video_{n}",
                    seq=n + 1,
                    status="completed",
                    model="tiny",
                    engine_model="tiny",
                    prompt=f"clip {n}",
                    seconds="1",
                    size="160x96",
                    params={},
                    result={"audio": audio} if audio else {},
                    favourited_at=1.0 if starred else None,
                )
            )

    def ids(**filters) -> list[str]:
        return [v.id for v in library_page(made, Caller(), **filters).videos]

    assert ids(sound="with") == ["video_2", "video_0"]
    assert ids(sound="without") == ["video_1"]
    assert ids(favourites=True) == ["video_0"]
    assert ids(collection="project_none") == []
    engine.dispose()
