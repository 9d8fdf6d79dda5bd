"""The library's queries on a real database: search, filters, pages, lineage, ownership."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import event, text
from sqlalchemy.dialects import sqlite

from moviola.assistant.projects import Projects
from moviola.jobs.service import Caller
from moviola.store import db
from moviola.store.models import Video
from moviola.studio import library

_seq = itertools.count(1)
STATUSES = library.STATUSES


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'moviola.db'}")
    db.migrate(engine)
    return db.sessions(engine)


def add(sessions, prompt, *, owner=None, status="completed", model="sora-2", **fields) -> Video:
    seq = next(_seq)
    row = Video(
        id=f"video_{seq:032x}",
        seq=seq,
        owner=owner,
        status=status,
        model=model,
        engine_model="tiny",
        prompt=prompt,
        seconds="1",
        size="160x96",
        params={},
        **fields,
    )
    with sessions.begin() as session:
        session.add(row)
    return row


def prompts(videos) -> list[str]:
    return [v.prompt for v in videos]


def test_search_needs_every_word_in_any_case_and_takes_wildcards_literally(sessions):
    add(sessions, "A Red kite over dunes")
    add(sessions, "a red car")
    add(sessions, "100% kite")
    me = Caller()
    assert prompts(library.library_page(sessions, me, search="kite red").videos) == [
        "A Red kite over dunes"
    ]
    assert prompts(library.library_page(sessions, me, search="100%").videos) == ["100% kite"]
    assert library.library_page(sessions, me, search="_").videos == []


def test_filters_by_status_and_model(sessions):
    add(sessions, "done", model="sora-2")
    add(sessions, "waiting", status="queued", model="sora-2")
    add(sessions, "other model", model="tiny-ltx")
    me = Caller()
    assert prompts(library.library_page(sessions, me, status="queued").videos) == ["waiting"]
    assert prompts(library.library_page(sessions, me, model="tiny-ltx").videos) == ["other model"]
    assert library.models_used(sessions, me) == ["sora-2", "tiny-ltx"]


def test_filters_by_rating(sessions):
    add(sessions, "liked", rating=1)
    add(sessions, "disliked", rating=-1, rating_note="too soft")
    add(sessions, "unrated")
    me = Caller()
    assert prompts(library.library_page(sessions, me, rating="liked").videos) == ["liked"]
    assert prompts(library.library_page(sessions, me, rating="disliked").videos) == ["disliked"]
    assert prompts(library.library_page(sessions, me, rating="unrated").videos) == ["unrated"]
    everything = library.library_page(sessions, me, rating="any other word").videos
    assert len(everything) == 3


def test_filters_by_sound_favourites_and_collection(sessions):
    audio = {"codec": "aac", "sample_rate": 48000, "channels": 2, "kind": "joint"}
    add(sessions, "loud", result={"audio": audio}, favourited_at=5.0)
    add(sessions, "silent", result={"audio": None})
    add(sessions, "queued", status="queued")
    me = Caller()
    assert prompts(library.library_page(sessions, me, sound="with").videos) == ["loud"]
    assert prompts(library.library_page(sessions, me, sound="without").videos) == [
        "queued",
        "silent",
    ]
    assert prompts(library.library_page(sessions, me, favourites=True).videos) == ["loud"]

    projects = Projects(sessions, record=False)
    lakes = projects.create_project(None, "Lakes")
    silent = library.library_page(sessions, me, search="silent").videos[0]
    projects.add_item(None, lakes.id, "video", silent.id)
    assert prompts(library.library_page(sessions, me, collection=lakes.id).videos) == ["silent"]
    # Another creator's collection, or a deleted one, holds nothing for this viewer.
    theirs = projects.create_project("key_b", "Theirs")
    assert library.library_page(sessions, me, collection=theirs.id).videos == []
    projects.delete_project(None, lakes.id)
    assert library.library_page(sessions, me, collection=lakes.id).videos == []


def test_pages_run_newest_first_without_gaps_or_repeats(sessions):
    made = [add(sessions, f"clip {i}").id for i in range(7)]
    seen, before = [], None
    while True:
        page = library.library_page(sessions, Caller(), before=before, limit=3)
        seen += [v.id for v in page.videos]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == made[::-1]


def test_a_viewer_sees_only_their_own_and_never_deleted_ones(sessions):
    add(sessions, "mine", owner="key_a")
    add(sessions, "theirs", owner="key_b")
    add(sessions, "local")
    add(sessions, "gone", owner="key_a", deleted_at=1.0)
    assert prompts(library.library_page(sessions, Caller("key_a")).videos) == ["mine"]
    assert prompts(library.library_page(sessions, Caller()).videos) == ["local"]


def test_lineage_is_the_whole_tree_from_the_oldest_ancestor(sessions):
    root = add(sessions, "root")
    remix = add(sessions, "remix", kind="remix", remixed_from_video_id=root.id)
    extension = add(sessions, "longer", kind="extend", source_video_id=remix.id)
    other = add(sessions, "another remix", kind="remix", remixed_from_video_id=root.id)
    add(sessions, "someone else's remix", owner="key_b", remixed_from_video_id=root.id)
    tree = library.lineage(sessions, Caller(), extension)
    assert tree.video.id == root.id
    assert [(n.video.id, n.relation) for n in tree.children] == [
        (remix.id, "remix"),
        (other.id, "remix"),
    ]
    assert [(n.video.id, n.relation) for n in tree.children[0].children] == [
        (extension.id, "extension")
    ]
    assert library.tree_size(tree) == 4
    assert library.tree_size(library.lineage(sessions, Caller(), add(sessions, "alone"))) == 1


def test_job_states_give_the_place_in_the_shared_queue(sessions):
    add(sessions, "someone else's, first", owner="key_b", status="queued")
    mine = add(sessions, "mine, second", status="queued")
    running = add(sessions, "running", status="in_progress", progress=40, stage="denoising")
    states = {s.id: s for s in library.job_states(sessions, Caller(), [mine.id, running.id])}
    assert states[mine.id].position == 2
    assert states[running.id].position is None and states[running.id].progress == 40
    assert library.active_ids(sessions, Caller()) == [mine.id, running.id]


def plan(sessions, query) -> str:
    compiled = query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with sessions() as session:
        rows = session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    return " / ".join(row[-1] for row in rows)


def test_a_page_walks_an_index_newest_first_without_sorting(sessions):
    for i in range(50):
        add(sessions, f"clip {i}", owner=("key_a", None)[i % 2], status=STATUSES[i % 4])
    for caller in (Caller(), Caller("key_a")):
        for options in ({}, {"before": 10**6}, {"search": "nothing"}, {"model": "sora-2"}):
            found = plan(sessions, library.page_query(caller, **options))
            assert "USING INDEX ix_videos_owner_seq" in found, (caller, options, found)
            assert "TEMP B-TREE" not in found
        found = plan(sessions, library.page_query(caller, status="failed"))
        assert "USING INDEX" in found and "TEMP B-TREE" not in found


def test_lineage_finds_children_through_their_own_indexes(sessions):
    for i in range(30):  # most videos have no parent: statistics make the index look poor
        add(sessions, f"clip {i}")
    with sessions.begin() as session:
        session.execute(text("ANALYZE"))
    remixes, extensions = library.children_queries(["video_a", "video_b"], "sqlite")
    assert "USING INDEX ix_videos_remixed_from_video_id" in plan(sessions, remixes)
    assert "USING INDEX ix_videos_source_video_id" in plan(sessions, extensions)


def test_queue_places_of_many_jobs_come_from_one_query(sessions):
    owners = ("key_b", None)
    waiting = [
        add(sessions, f"waiting {i}", status="queued", owner=owners[i % 2]) for i in range(6)
    ]
    mine = [v for v in waiting if v.owner is None]
    statements = []
    engine = sessions.kw["bind"]
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        states = library.job_states(sessions, Caller(), [v.id for v in mine])
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert [s.position for s in states] == [2, 4, 6]
    assert len(statements) <= 4  # the rows, recent timings, the places, busy workers
