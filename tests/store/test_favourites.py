"""Favourites on a real database: starred and unstarred, only by the video's owner."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from moviola.errors import NotFoundError
from moviola.store import db, favourites
from moviola.store.models import AuditEvent, Video


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'moviola.db'}")
    db.migrate(engine)
    return db.sessions(engine)


_seq = itertools.count(1)


def add(sessions, video_id, *, owner=None, **fields):
    row = Video(
        id=video_id,
        seq=next(_seq),
        owner=owner,
        status="completed",
        model="sora-2",
        engine_model="tiny",
        prompt=video_id,
        seconds="1",
        size="160x96",
        params={},
        **fields,
    )
    with sessions.begin() as session:
        session.add(row)


def starred(sessions, video_id):
    with sessions() as session:
        return session.get(Video, video_id).favourited_at


def test_starring_keeps_when_it_was_first_starred_and_unstarring_clears_it(sessions):
    add(sessions, "video_a", owner="key_a")
    assert favourites.set_favourite(sessions, "key_a", ["video_a"], True) == ["video_a"]
    first = starred(sessions, "video_a")
    assert first is not None
    favourites.set_favourite(sessions, "key_a", ["video_a"], True)
    assert starred(sessions, "video_a") == first
    favourites.set_favourite(sessions, "key_a", ["video_a"], False)
    assert starred(sessions, "video_a") is None
    with sessions() as session:
        actions = session.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert [(a, d["on"]) for a, d in actions] == [
        ("favourite", True),
        ("favourite", True),
        ("favourite", False),
    ]


def test_another_creators_or_a_deleted_video_is_not_found(sessions):
    add(sessions, "video_theirs", owner="key_b")
    add(sessions, "video_gone", owner="key_a", deleted_at=1.0)
    add(sessions, "video_mine", owner="key_a")
    for video_id in ("video_theirs", "video_gone", "video_none"):
        with pytest.raises(NotFoundError):
            favourites.set_favourite(sessions, "key_a", [video_id], True)
    # In a selection, what is not the caller's is passed over.
    changed = favourites.set_favourite(
        sessions, "key_a", ["video_theirs", "video_mine", "video_gone"], True, record=False
    )
    assert changed == ["video_mine"]
    assert starred(sessions, "video_theirs") is None
