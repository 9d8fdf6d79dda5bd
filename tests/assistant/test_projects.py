"""Projects, conversations and ratings against a real SQLite file: owned, searchable, atomic."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import select

from moviola.assistant.projects import Projects
from moviola.errors import ConflictError, InvalidRequestError, NotFoundError
from moviola.store import db
from moviola.store.models import AuditEvent, Character, Video, new_id

pytestmark = pytest.mark.timeout(60)

ALICE, BOB = "key_alice", "key_bob"
_seq = itertools.count(1)


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(db.sqlite_url(tmp_path))
    db.migrate(engine)
    return db.sessions(engine)


@pytest.fixture
def projects(sessions):
    return Projects(sessions)


def add_video(sessions, owner, prompt="a heron at dawn") -> str:
    video = Video(
        id=new_id("video"),
        seq=next(_seq),
        owner=owner,
        status="completed",
        model="tiny",
        engine_model="tiny",
        prompt=prompt,
        seconds="1",
        size="160x96",
        params={},
    )
    with sessions.begin() as session:
        session.add(video)
    return video.id


def add_character(sessions, owner) -> str:
    character = Character(id=new_id("char"), owner=owner, name="Mara", video_path="x.mp4")
    with sessions.begin() as session:
        session.add(character)
    return character.id


def audited(sessions) -> list[str]:
    with sessions() as session:
        return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def test_a_project_collects_videos_characters_and_conversations(projects, sessions):
    project = projects.create_project(ALICE, "Lighthouse short", notes="foggy, 16mm")
    assert project.id.startswith("proj_") and project.items == ()
    video = add_video(sessions, ALICE)
    character = add_character(sessions, ALICE)
    conversation = projects.create_conversation(ALICE, project_id=project.id, title="Shots")

    projects.add_item(ALICE, project.id, "video", video)
    projects.add_item(ALICE, project.id, "character", character)
    projects.add_item(ALICE, project.id, "video", video)  # again: still once

    got = projects.get_project(ALICE, project.id)
    assert [(item.kind, item.item_id) for item in got.items] == [
        ("conversation", conversation.id),
        ("video", video),
        ("character", character),
    ]
    assert got.notes == "foggy, 16mm"

    projects.remove_item(ALICE, project.id, "video", video)
    assert [item.kind for item in projects.get_project(ALICE, project.id).items] == [
        "conversation",
        "character",
    ]
    with pytest.raises(NotFoundError):
        projects.remove_item(ALICE, project.id, "video", video)


def test_projects_update_list_and_delete(projects):
    first = projects.create_project(ALICE, "One")
    second = projects.create_project(ALICE, "Two")
    renamed = projects.update_project(ALICE, first.id, name="One, renamed")
    assert renamed.name == "One, renamed" and renamed.updated_at >= second.updated_at
    # Most recently changed first.
    assert [p.id for p in projects.list_projects(ALICE)] == [first.id, second.id]
    assert [p.id for p in projects.list_projects(ALICE, limit=1)] == [first.id]

    projects.delete_project(ALICE, first.id)
    assert [p.id for p in projects.list_projects(ALICE)] == [second.id]
    with pytest.raises(NotFoundError):
        projects.get_project(ALICE, first.id)
    with pytest.raises(InvalidRequestError):
        projects.create_project(ALICE, "  ")
    with pytest.raises(InvalidRequestError):
        projects.list_projects(ALICE, limit=0)


def test_deleting_a_project_keeps_its_conversations(projects):
    project = projects.create_project(ALICE, "Kept talk")
    conversation = projects.create_conversation(ALICE, project_id=project.id)
    projects.delete_project(ALICE, project.id)
    kept = projects.get_conversation(ALICE, conversation.id)
    assert kept.project_id is None


def test_search_finds_projects_by_name_notes_and_what_was_said(projects):
    by_name = projects.create_project(ALICE, "Desert Kites")
    by_notes = projects.create_project(ALICE, "Untitled", notes="shoot at 100% zoom on KITES")
    by_talk = projects.create_project(ALICE, "Another")
    projects.create_project(ALICE, "Nothing here")
    talk = projects.create_conversation(ALICE, project_id=by_talk.id)
    projects.add_message(ALICE, talk.id, "user", "what about kites over the sea?")
    titled = projects.create_project(ALICE, "Titled")
    projects.create_conversation(ALICE, project_id=titled.id, title="Kite storyboard")

    found = {p.id for p in projects.list_projects(ALICE, query="kite")}
    assert found == {by_name.id, by_notes.id, by_talk.id, titled.id}
    # The query's own wildcards are taken literally.
    assert [p.id for p in projects.list_projects(ALICE, query="100%")] == [by_notes.id]
    assert projects.list_projects(ALICE, query="_") == []
    assert projects.list_projects(BOB, query="kite") == []


def test_a_conversation_keeps_its_messages_in_order_with_context_and_actions(projects):
    conversation = projects.create_conversation(ALICE, title="Prompt help")
    assert conversation.id.startswith("conv_")
    context = {"page": "create", "prompt": "a fox", "video_id": None}
    asked = projects.add_message(ALICE, conversation.id, "user", "make it moodier", context=context)
    action = {"type": "fill_prompt", "prompt": "a fox in blue fog, low key light"}
    answered = projects.add_message(ALICE, conversation.id, "assistant", "Try this.", action=action)
    assert (asked.seq, answered.seq) == (1, 2)
    assert answered.action == {**action, "state": "proposed"}

    confirmed = projects.set_action_state(ALICE, answered.id, "confirmed")
    assert confirmed.action["state"] == "confirmed"
    with pytest.raises(ConflictError):
        projects.set_action_state(ALICE, answered.id, "dismissed")
    with pytest.raises(ConflictError):
        projects.set_action_state(ALICE, asked.id, "confirmed")  # no action on it
    with pytest.raises(NotFoundError):
        projects.set_action_state(BOB, answered.id, "dismissed")

    got = projects.get_conversation(ALICE, conversation.id)
    assert [(m.role, m.content) for m in got.messages] == [
        ("user", "make it moodier"),
        ("assistant", "Try this."),
    ]
    assert got.messages[0].context == context
    assert got.messages[1].action["state"] == "confirmed"
    with pytest.raises(InvalidRequestError):
        projects.add_message(ALICE, conversation.id, "tool", "?")


def test_history_past_the_summary_is_what_the_model_gets(projects):
    conversation = projects.create_conversation(ALICE)
    for n in range(1, 6):
        projects.add_message(ALICE, conversation.id, "user", f"message {n}")
    projects.set_summary(ALICE, conversation.id, "They want a fox at night.", through_seq=3)

    got = projects.get_conversation(ALICE, conversation.id)
    assert got.summary == "They want a fox at night." and got.summary_through == 3
    assert [m.seq for m in got.messages] == [4, 5]
    everything = projects.get_conversation(ALICE, conversation.id, all_messages=True)
    assert [m.seq for m in everything.messages] == [1, 2, 3, 4, 5]
    with pytest.raises(InvalidRequestError):
        projects.set_summary(ALICE, conversation.id, "too far", through_seq=6)


def test_messages_added_at_once_get_distinct_seqs(projects):
    conversation = projects.create_conversation(ALICE)
    errors: list[BaseException] = []

    def add(n: int) -> None:
        try:
            projects.add_message(ALICE, conversation.id, "user", f"from thread {n}")
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    got = projects.get_conversation(ALICE, conversation.id)
    assert sorted(m.seq for m in got.messages) == [1, 2, 3, 4, 5, 6]


def test_conversations_list_by_project_and_search(projects):
    project = projects.create_project(ALICE, "Harbour")
    inside = projects.create_conversation(ALICE, project_id=project.id, title="Boats")
    outside = projects.create_conversation(ALICE, title="Elsewhere")
    projects.add_message(ALICE, outside.id, "user", "a lighthouse in a storm")

    assert [c.id for c in projects.list_conversations(ALICE, project_id=project.id)] == [inside.id]
    # The one with the latest message comes first.
    assert [c.id for c in projects.list_conversations(ALICE)] == [outside.id, inside.id]
    assert [c.id for c in projects.list_conversations(ALICE, query="LIGHTHOUSE")] == [outside.id]
    assert [c.id for c in projects.list_conversations(ALICE, query="boats")] == [inside.id]


def test_moving_a_conversation_between_projects(projects):
    first = projects.create_project(ALICE, "First")
    second = projects.create_project(ALICE, "Second")
    conversation = projects.create_conversation(ALICE, project_id=first.id)
    projects.add_item(ALICE, second.id, "conversation", conversation.id)

    assert projects.get_conversation(ALICE, conversation.id).project_id == second.id
    assert projects.get_project(ALICE, first.id).items == ()
    assert [i.item_id for i in projects.get_project(ALICE, second.id).items] == [conversation.id]

    projects.delete_conversation(ALICE, conversation.id)
    assert projects.get_project(ALICE, second.id).items == ()
    with pytest.raises(NotFoundError):
        projects.get_conversation(ALICE, conversation.id)
    with pytest.raises(NotFoundError):
        projects.add_message(ALICE, conversation.id, "user", "still there?")


def test_another_owners_things_are_not_found(projects, sessions):
    project = projects.create_project(ALICE, "Alice's")
    conversation = projects.create_conversation(ALICE, title="Alice's talk")
    local = projects.create_project(None, "The loopback user's")

    for call in (
        lambda: projects.get_project(BOB, project.id),
        lambda: projects.update_project(BOB, project.id, name="mine now"),
        lambda: projects.delete_project(BOB, project.id),
        lambda: projects.get_project(ALICE, local.id),
        lambda: projects.get_project(None, project.id),
        lambda: projects.get_conversation(BOB, conversation.id),
        lambda: projects.add_message(BOB, conversation.id, "user", "hello"),
        lambda: projects.set_summary(BOB, conversation.id, "", 0),
        lambda: projects.delete_conversation(BOB, conversation.id),
        lambda: projects.create_conversation(BOB, project_id=project.id),
        lambda: projects.get_project(ALICE, "proj_missing"),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert projects.list_projects(BOB) == [] and projects.list_conversations(BOB) == []
    assert [p.id for p in projects.list_projects(None)] == [local.id]

    # Only the owner's own things go in a project.
    bobs_project = projects.create_project(BOB, "Bob's")
    for kind, item in (
        ("video", add_video(sessions, ALICE)),
        ("character", add_character(sessions, ALICE)),
        ("conversation", conversation.id),
    ):
        with pytest.raises(NotFoundError):
            projects.add_item(BOB, bobs_project.id, kind, item)
    with pytest.raises(InvalidRequestError):
        projects.add_item(BOB, bobs_project.id, "lora", "x")


def test_ratings_and_the_prompts_liked(projects, sessions):
    liked_first = add_video(sessions, ALICE, "a kite over dunes")
    disliked = add_video(sessions, ALICE, "a blurry crowd")
    liked_later = add_video(sessions, ALICE, "a heron at dawn")
    same_prompt = add_video(sessions, ALICE, "a kite over dunes")
    bobs = add_video(sessions, BOB, "bob's liked prompt")

    projects.rate_video(ALICE, liked_first, 1, None)
    projects.rate_video(ALICE, disliked, -1, "too soft")
    projects.rate_video(ALICE, liked_later, 1, "lovely light")
    projects.rate_video(ALICE, same_prompt, 1, None)
    projects.rate_video(BOB, bobs, 1, None)

    assert projects.liked_prompts(ALICE) == ["a kite over dunes", "a heron at dawn"]
    assert projects.liked_prompts(ALICE, limit=1) == ["a kite over dunes"]
    assert projects.liked_prompts(BOB) == ["bob's liked prompt"]

    with sessions() as session:
        row = session.get(Video, disliked)
        assert (row.rating, row.rating_note) == (-1, "too soft") and row.rated_at is not None
    projects.rate_video(ALICE, disliked, None, None)  # cleared
    with sessions() as session:
        row = session.get(Video, disliked)
        assert (row.rating, row.rating_note, row.rated_at) == (None, None, None)

    with pytest.raises(NotFoundError):
        projects.rate_video(BOB, liked_first, -1, None)
    with pytest.raises(InvalidRequestError):
        projects.rate_video(ALICE, liked_first, 5, None)


def test_every_change_is_in_the_audit_log(projects, sessions):
    project = projects.create_project(ALICE, "Audited")
    video = add_video(sessions, ALICE)
    projects.add_item(ALICE, project.id, "video", video)
    projects.remove_item(ALICE, project.id, "video", video)
    projects.update_project(ALICE, project.id, notes="n")
    conversation = projects.create_conversation(ALICE)
    message = projects.add_message(ALICE, conversation.id, "assistant", "x", action={"type": "t"})
    projects.set_action_state(ALICE, message.id, "dismissed")
    projects.rate_video(ALICE, video, 1, None)
    projects.delete_conversation(ALICE, conversation.id)
    projects.delete_project(ALICE, project.id)
    assert audited(sessions) == [
        "project.create",
        "project.add_item",
        "project.remove_item",
        "project.update",
        "conversation.create",
        "conversation.action",
        "rate",
        "conversation.delete",
        "project.delete",
    ]
    with sessions() as session:
        rate = session.execute(select(AuditEvent).where(AuditEvent.action == "rate")).scalar_one()
    assert (rate.actor, rate.video_id, rate.detail["rating"]) == (ALICE, video, "up")
