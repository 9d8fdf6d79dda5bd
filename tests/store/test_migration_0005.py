"""Migration 0005 adds projects, conversations and ratings, keeping every video, and can be
undone."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from moviola.store.db import _MIGRATIONS, connect, sqlite_url

NEW_TABLES = {"projects", "project_items", "conversations", "messages"}
NEW_COLUMNS = {"rating", "rating_note", "rated_at", "original_prompt", "prompt_variants"}


def move(engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def video_columns(engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("videos")}


def test_0005_adds_projects_conversations_and_ratings_and_back(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    move(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO videos (id, seq, kind, status, progress, model, engine_model, "
                "prompt, seconds, size, params, created_at, attempts, max_attempts, "
                "cancel_requested, group_id) VALUES ('video_old', 1, 'create', 'completed', "
                "100, 'sora-2', 'tiny', 'a fox', '4', '160x96', '{}', 0, 1, 3, 0, 'group_1')"
            )
        )

    move(engine, "0005")
    assert set(inspect(engine).get_table_names()) >= NEW_TABLES
    assert video_columns(engine) >= NEW_COLUMNS
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT id, prompt, group_id, rating, rating_note, prompt_variants FROM videos")
        ).all()
    assert kept == [("video_old", "a fox", "group_1", None, None, None)]  # not yet rated

    move(engine, "0004", down=True)
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    assert not NEW_COLUMNS & video_columns(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, group_id FROM videos")).all() == [
            ("video_old", "group_1")
        ]
