"""Migration 0006 adds the trash's `purged_at` and the share links; a video deleted before
there was a trash (its files already removed) arrives purged, never restorable."""

from __future__ import annotations

from sqlalchemy import inspect, text
from tests.store.test_migration_0005 import move, video_columns

from moviola.store.db import connect, sqlite_url


def add_video(connection, video_id: str, deleted_at: float | None) -> None:
    connection.execute(
        text(
            "INSERT INTO videos (id, seq, kind, status, progress, model, engine_model, prompt, "
            "seconds, size, params, created_at, attempts, max_attempts, cancel_requested, "
            "deleted_at) VALUES (:id, :seq, 'create', 'completed', 100, 'sora-2', 'tiny', 'a fox',"
            " '4', '160x96', '{}', 0, 1, 3, 0, :deleted_at)"
        ),
        {"id": video_id, "seq": len(video_id), "deleted_at": deleted_at},
    )


def test_0006_purges_what_was_deleted_before_and_goes_back(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    move(engine, "0005")
    with engine.begin() as connection:
        add_video(connection, "video_kept", None)
        add_video(connection, "video_deleted", 123.0)

    move(engine, "0006")

    assert "share_links" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, deleted_at, purged_at FROM videos ORDER BY id"))
        assert rows.all() == [("video_deleted", 123.0, 123.0), ("video_kept", None, None)]

    move(engine, "0005", down=True)
    assert "share_links" not in inspect(engine).get_table_names()
    assert "purged_at" not in video_columns(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM videos")).scalar() == 2
