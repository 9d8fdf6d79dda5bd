"""The audit log: append-only entries, read with filters, exported, pruned by retention."""

import csv
import io
import json
import time

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import IntegrityError

from moviola.config import Settings
from moviola.jobs.sweeper import Sweeper
from moviola.store import audit, db
from moviola.store.blobs import Blobs
from moviola.store.models import AuditEvent, AuditRetention


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'moviola.db'}")
    db.migrate(engine)
    return db.sessions(engine)


def fill(sessions):
    """Three entries at known times: a local create, a key's download, a key's delete."""
    with sessions.begin() as session:
        for at, actor, action, video in (
            (1000.0, None, "create", "video_a"),
            (2000.0, "key_1", "download", "video_a"),
            (3000.0, "key_1", "delete", "video_b"),
        ):
            session.add(AuditEvent(at=at, actor=actor, action=action, video_id=video, detail={}))


def test_entries_come_back_in_order_with_what_was_recorded(sessions):
    audit.record(sessions, actor="key_1", action="create", video_id="video_a", detail={"n": 1})
    with sessions.begin() as session:  # inside a transaction of the caller's
        audit.add(session, actor=None, action="delete", video_id="video_a")
    first, second = audit.query(sessions)
    assert (first["actor"], first["action"], first["video_id"], first["detail"]) == (
        "key_1",
        "create",
        "video_a",
        {"n": 1},
    )
    assert (second["actor"], second["action"]) == (None, "delete")
    assert first["id"] < second["id"] and first["time"].endswith("Z")


def test_an_entry_cannot_be_rewritten(sessions):
    audit.record(sessions, actor="key_1", action="create", video_id="video_a")
    with pytest.raises(RuntimeError, match="append-only"), sessions.begin() as session:
        session.query(AuditEvent).one().action = "delete"
    assert audit.query(sessions)[0]["action"] == "create"


def test_the_database_itself_refuses_to_rewrite_or_remove_entries(sessions):
    fill(sessions)
    attempts = [
        lambda s: s.execute(update(AuditEvent).values(action="create")),  # past the ORM hook
        lambda s: s.execute(text("UPDATE audit_events SET actor = NULL")),
        lambda s: s.delete(s.query(AuditEvent).first()),
        lambda s: s.execute(delete(AuditEvent)),
        lambda s: s.execute(text("DELETE FROM audit_events WHERE at > 2500")),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError, match="append-only"), sessions.begin() as session:
            attempt(session)
    assert [e["action"] for e in audit.query(sessions)] == ["create", "download", "delete"]


def test_only_entries_older_than_the_prunes_cutoff_can_leave(sessions):
    fill(sessions)
    # The cutoff the prune records can never move into the future (that would free them all).
    with pytest.raises(IntegrityError, match="future"), sessions.begin() as session:
        session.execute(update(AuditRetention).values(cutoff=time.time() + 3600))
    assert audit.prune(sessions, 1, now=2500 + 86400) == 2
    with sessions() as session:
        assert session.get(AuditRetention, 1).cutoff == 2500
    # What the prune left stays protected: it is newer than the cutoff.
    with pytest.raises(IntegrityError, match="append-only"), sessions.begin() as session:
        session.execute(delete(AuditEvent))
    assert [e["action"] for e in audit.query(sessions)] == ["delete"]


def test_filters_by_actor_action_video_and_time(sessions):
    fill(sessions)

    def actions(**where):
        return [e["action"] for e in audit.query(sessions, audit.Filter(**where))]

    assert actions(actor="local") == ["create"]
    assert actions(actor="key_1") == ["download", "delete"]
    assert actions(action="delete") == ["delete"]
    assert actions(video_id="video_a") == ["create", "download"]
    assert actions(since=2000, until=3000) == ["download"]
    newest = audit.query(sessions, limit=2, newest_first=True)
    assert [e["action"] for e in newest] == ["delete", "download"]


def test_exports_as_json_lines_and_csv(sessions):
    fill(sessions)
    entries = audit.query(sessions)
    lines = io.StringIO()
    assert audit.export(entries, lines, "jsonl") == 3
    assert [json.loads(line) for line in lines.getvalue().splitlines()] == entries
    table = io.StringIO()
    audit.export(entries, table, "csv")
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert [r["action"] for r in rows] == ["create", "download", "delete"]
    assert rows[0]["actor"] == "" and json.loads(rows[0]["detail"]) == {}
    with pytest.raises(ValueError, match="jsonl or csv"):
        audit.export(entries, io.StringIO(), "xml")


def test_retention_removes_only_entries_older_than_it(sessions):
    fill(sessions)
    assert audit.prune(sessions, 0, now=10**9) == 0  # 0: kept forever
    day = 86400
    assert audit.prune(sessions, 1, now=2500 + day) == 2
    assert [e["action"] for e in audit.query(sessions)] == ["delete"]


def test_the_sweeper_applies_the_retention(tmp_path, sessions):
    fill(sessions)
    settings = Settings(data_dir=tmp_path, audit_retention_days=1)
    Sweeper(settings, sessions, Blobs(tmp_path / "blobs")).run_pass()
    assert audit.query(sessions) == []  # all from 1970: far older than a day
