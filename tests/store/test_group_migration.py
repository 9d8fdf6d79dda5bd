"""Migration 0004 adds the variation group to videos, keeping every row, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from moviola.store.db import _MIGRATIONS, connect, sqlite_url


def move(engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def columns(engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("videos")}


def test_0004_adds_a_group_to_every_video_and_back(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    move(engine, "0003")
    assert "group_id" not in columns(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO videos (id, seq, kind, status, progress, model, engine_model, "
                "seconds, size, params, created_at, attempts, max_attempts, cancel_requested) "
                "VALUES ('video_old', 1, 'create', 'completed', 100, 'sora-2', 'tiny', '4', "
                "'160x96', '{}', 0, 1, 3, 0)"
            )
        )

    move(engine, "0004")
    assert "group_id" in columns(engine)
    indexes = {index["name"] for index in inspect(engine).get_indexes("videos")}
    assert "ix_videos_group_id" in indexes
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT id, group_id FROM videos")).all()
    assert kept == [("video_old", None)]  # made alone

    move(engine, "0003", down=True)
    assert "group_id" not in columns(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM videos")).scalars().all() == ["video_old"]
