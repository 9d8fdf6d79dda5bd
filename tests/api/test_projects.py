"""Projects, conversations and ratings through the `openai` SDK: Moviola's own routes, owned
per key, searchable, audited, and intact after the server is killed."""

from __future__ import annotations

import os
import signal

import openai
import pytest
from sqlalchemy import select

from moviola.assistant.projects import Projects
from moviola.store import keys
from moviola.store.models import AuditEvent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, server_class):
    """A server with API keys and no worker: videos stay queued, which is all rating needs."""
    running = server_class(
        tmp_path_factory.mktemp("projects") / "data", env={"MOVIOLA_WORKERS": "0"}
    ).start()
    yield running
    running.stop()


def user(server, name: str):
    """A key's SDK client, with its key id: the owner of what it makes."""
    key, secret = keys.create_key(server.sessions(), name)
    client = server.client(secret)
    client.owner = key.id
    return client


@pytest.fixture(scope="module")
def alice(keyed):
    return user(keyed, "alice")


@pytest.fixture(scope="module")
def bob(keyed):
    return user(keyed, "bob")


@pytest.fixture(scope="module")
def store(keyed) -> Projects:
    """The store behind the server, for what only the assistant's conversation turn writes
    (messages, summaries)."""
    return Projects(keyed.sessions())


def post(client, path: str, body: dict) -> dict:
    return client.post(path, body=body, cast_to=object)


def get(client, path: str, **params) -> dict:
    return client.get(path, cast_to=object, options={"params": params})


def delete(client, path: str) -> dict:
    return client.delete(path, cast_to=object)


def test_a_project_is_created_changed_filled_and_deleted(alice, small):
    project = post(alice, "/projects", {"name": "Lighthouse", "notes": "fog, 16mm"})
    assert project["object"] == "project" and project["id"].startswith("proj_")
    assert (project["name"], project["notes"], project["items"]) == ("Lighthouse", "fog, 16mm", [])

    changed = post(alice, f"/projects/{project['id']}", {"notes": ""})
    assert (changed["name"], changed["notes"]) == ("Lighthouse", "")

    video = alice.videos.create(prompt="a lighthouse in fog", **small)
    conversation = post(alice, "/conversations", {"project_id": project["id"], "title": "Shots"})
    filled = post(alice, f"/projects/{project['id']}/items", {"kind": "video", "id": video.id})
    assert [(i["kind"], i["id"]) for i in filled["items"]] == [
        ("conversation", conversation["id"]),
        ("video", video.id),
    ]
    emptied = delete(alice, f"/projects/{project['id']}/items/video/{video.id}")
    assert [i["kind"] for i in emptied["items"]] == ["conversation"]

    gone = delete(alice, f"/projects/{project['id']}")
    assert gone == {"id": project["id"], "object": "project.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        get(alice, f"/projects/{project['id']}")
    # Its conversation lives on, in no project now.
    assert get(alice, f"/conversations/{conversation['id']}")["project_id"] is None


def test_projects_are_listed_and_searched(alice, store):
    kites = post(alice, "/projects", {"name": "Desert kites"})
    talk = post(alice, "/projects", {"name": "Untitled"})
    conversation = post(alice, "/conversations", {"project_id": talk["id"], "title": "Ideas"})
    post(alice, "/projects", {"name": "Other"})
    store.add_message(alice.owner, conversation["id"], "user", "a red KITE over the sea")

    found = get(alice, "/projects", q="kite")
    assert found["object"] == "list" and found["has_more"] is False
    assert {p["id"] for p in found["data"]} == {kites["id"], talk["id"]}
    first = get(alice, "/projects", limit=1)
    assert len(first["data"]) == 1 and first["has_more"] is True
    assert get(alice, "/projects", limit=100)["has_more"] is False
    with pytest.raises(openai.BadRequestError):
        get(alice, "/projects", limit=0)


def test_a_conversation_shows_every_message_and_its_summary(alice, store):
    conversation = post(alice, "/conversations", {"title": "Fox"})
    assert conversation["object"] == "conversation" and conversation["messages"] == []
    owner = alice.owner
    store.add_message(owner, conversation["id"], "user", "a fox", context={"page": "create"})
    store.add_message(
        owner,
        conversation["id"],
        "assistant",
        "Try:",
        action={"type": "fill_prompt", "prompt": "x"},
    )
    store.set_summary(owner, conversation["id"], "A fox, at night.", through_seq=1)

    got = get(alice, f"/conversations/{conversation['id']}")
    assert got["summary"] == "A fox, at night." and got["summary_through"] == 1
    assert [(m["seq"], m["role"], m["content"]) for m in got["messages"]] == [
        (1, "user", "a fox"),
        (2, "assistant", "Try:"),
    ]
    assert got["messages"][0]["context"] == {"page": "create"}
    assert got["messages"][1]["action"] == {
        "type": "fill_prompt",
        "prompt": "x",
        "state": "proposed",
    }

    listed = get(alice, "/conversations", q="FOX")
    assert [c["id"] for c in listed["data"]] == [conversation["id"]]
    assert listed["data"][0]["messages"] == []

    assert delete(alice, f"/conversations/{conversation['id']}")["deleted"] is True
    with pytest.raises(openai.NotFoundError):
        get(alice, f"/conversations/{conversation['id']}")


def test_another_keys_projects_and_conversations_are_not_found(alice, bob, small):
    project = post(alice, "/projects", {"name": "Alice's"})
    conversation = post(alice, "/conversations", {"title": "Alice's talk"})
    video = alice.videos.create(prompt="alice's", **small)

    for call in (
        lambda: get(bob, f"/projects/{project['id']}"),
        lambda: post(bob, f"/projects/{project['id']}", {"name": "mine"}),
        lambda: delete(bob, f"/projects/{project['id']}"),
        lambda: get(bob, f"/conversations/{conversation['id']}"),
        lambda: delete(bob, f"/conversations/{conversation['id']}"),
        lambda: post(bob, "/conversations", {"project_id": project["id"]}),
        lambda: post(bob, f"/videos/{video.id}/rating", {"rating": "down"}),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    bobs = post(bob, "/projects", {"name": "Bob's"})
    with pytest.raises(openai.NotFoundError):  # only your own things go in your project
        post(bob, f"/projects/{bobs['id']}/items", {"kind": "video", "id": video.id})
    assert project["id"] not in {p["id"] for p in get(bob, "/projects")["data"]}
    assert get(bob, "/conversations", q="Alice")["data"] == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/projects", {"name": "x", "colour": "red"}, "colour"),
        ("/conversations", {"topic": "x"}, "topic"),
        ("/videos/video_x/rating", {"rating": "up", "stars": 5}, "stars"),
    ],
)
def test_an_unknown_field_is_refused(alice, path, body, param):
    with pytest.raises(openai.BadRequestError) as refused:
        post(alice, path, body)
    error = refused.value.body
    assert (error["param"], error["code"]) == (param, "unknown_parameter")


def test_a_rating_is_stored_shown_and_cleared(alice, store, small):
    video = alice.videos.create(prompt="a heron at dawn", **small)
    assert video.model_extra["moviola"]["rating"] is None

    rated = post(alice, f"/videos/{video.id}/rating", {"rating": "up", "note": "lovely light"})
    assert rated["id"] == video.id
    shown = alice.videos.retrieve(video.id).model_extra["moviola"]["rating"]
    assert (shown["value"], shown["note"]) == ("up", "lovely light") and shown["at"] > 0
    assert store.liked_prompts(alice.owner) == ["a heron at dawn"]

    cleared = post(alice, f"/videos/{video.id}/rating", {"rating": None})
    assert cleared["moviola"]["rating"] is None
    with pytest.raises(openai.BadRequestError) as refused:
        post(alice, f"/videos/{video.id}/rating", {"rating": "sideways"})
    assert refused.value.body["param"] == "rating"


def test_every_write_is_in_the_audit_log(keyed, alice, small):
    project = post(alice, "/projects", {"name": "Audited"})
    video = alice.videos.create(prompt="audited", **small)
    post(alice, f"/videos/{video.id}/rating", {"rating": "down"})
    delete(alice, f"/projects/{project['id']}")
    with keyed.sessions()() as session:
        entries = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    mine = [(e.action, e.detail.get("project_id"), e.video_id) for e in entries]
    assert ("project.create", project["id"], None) in mine
    assert ("rate", None, video.id) in mine
    assert ("project.delete", project["id"], None) in mine
    assert all(e.actor == alice.owner for e in entries if e.action == "rate")


def test_a_project_and_conversation_survive_kill_9(make_server):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    client = server.client()  # keyless, from this machine
    project = post(client, "/projects", {"name": "Survivor", "notes": "must outlive a crash"})
    conversation = post(client, "/conversations", {"project_id": project["id"], "title": "Talk"})
    store = Projects(server.sessions())
    for n in range(3):
        store.add_message(None, conversation["id"], "user", f"message {n}")

    os.kill(server.process.pid, signal.SIGKILL)  # no shutdown, no clean-up
    server.process.wait()

    client = make_server(server.data_dir, env={"MOVIOLA_WORKERS": "0"}).start().client()
    kept = get(client, f"/projects/{project['id']}")
    assert (kept["name"], kept["notes"]) == ("Survivor", "must outlive a crash")
    assert kept["items"] == [
        {"kind": "conversation", "id": conversation["id"], "added_at": kept["items"][0]["added_at"]}
    ]
    talk = get(client, f"/conversations/{conversation['id']}")
    assert [m["content"] for m in talk["messages"]] == ["message 0", "message 1", "message 2"]
