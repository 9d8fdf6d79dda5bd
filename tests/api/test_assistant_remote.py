"""The assistant against an OpenAI-compatible chat server of the operator's
(`MOVIOLA_ASSISTANT_BASE_URL`), here a small scripted one in this test: what a model answers
is chosen, so the paths a noise model rarely takes are taken on purpose — an answer in the
wrong shape repaired, or refused after three tries; an action proposed, confirmed, decided once;
a history too long for the context summarised; a backend that fails part way or is down.

The real `openai` SDK is the client (`client.post(..., cast_to=object)` for Moviola's own
routes); httpx reads the Server-Sent Events of a streamed turn.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from moviola import media
from moviola.store import audit

pytestmark = pytest.mark.timeout(180)


class Drop:
    """Stream `pieces` of text, then cut the connection: a backend that dies part way."""

    def __init__(self, pieces: list[str]):
        self.pieces = pieces


Reply = str | Callable[[dict[str, Any]], str] | Drop


class ChatServer:
    """An OpenAI-compatible `/v1/chat/completions` that answers from a script: each request
    takes the next reply (text, a function of the request, or a `Drop`); once the script is
    out, the default. Every request is kept, to count and read."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default: Reply = "Sure."
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with server.lock:
                    server.requests.append(body)
                    reply = server.replies.popleft() if server.replies else server.default
                if callable(reply):
                    reply = reply(body)
                if body.get("stream"):
                    self.stream(body, reply)
                else:
                    self.whole(body, reply)

            def whole(self, body: dict[str, Any], text: Any) -> None:
                data = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def stream(self, body: dict[str, Any], reply: Any) -> None:
                # Chunked, as real servers stream: a body cut short is then seen as cut short.
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("connection", "close")
                self.end_headers()
                pieces = reply.pieces if isinstance(reply, Drop) else reply.split(" ")
                for i, piece in enumerate(pieces):
                    text = piece if isinstance(reply, Drop) or i == 0 else " " + piece
                    self.event(body, {"content": text}, None)
                if isinstance(reply, Drop):
                    self.wfile.flush()
                    self.connection.shutdown(2)  # no finish, no [DONE]: the server died
                    return
                self.event(body, {}, "stop")
                self.chunk(b"data: [DONE]\n\n")
                self.chunk(b"")

            def chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def event(self, body: dict[str, Any], delta: dict[str, Any], finish: Any) -> None:
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                self.chunk(f"data: {json.dumps(chunk)}\n\n".encode())

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies = deque(replies)
            self.requests = []

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def chat():
    server = ChatServer()
    yield server
    server.close()


# Small enough that a few long messages outgrow it; large enough for a storyboard's answer.
CONTEXT_TOKENS = 3000


@pytest.fixture(scope="module")
def moviola(tmp_path_factory, server_class, chat):
    running = server_class(
        tmp_path_factory.mktemp("assistant-remote") / "data",
        env={
            "MOVIOLA_ASSISTANT_BASE_URL": chat.url,
            "MOVIOLA_ASSISTANT_MODEL": "scripted",
            "MOVIOLA_ASSISTANT_CONTEXT_TOKENS": str(CONTEXT_TOKENS),
            "MOVIOLA_ASSISTANT_TIMEOUT_S": "3",
            "MOVIOLA_WORKERS": "0",  # nothing here renders
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(moviola):
    return moviola.create_key("alice"), moviola.create_key("bob")


@pytest.fixture(scope="module")
def alice(moviola, keys):
    return moviola.client(keys[0])


@pytest.fixture(scope="module")
def bob(moviola, keys):
    return moviola.client(keys[1])


def shots_json(*seconds: int) -> str:
    return json.dumps(
        {
            "shots": [
                {
                    "prompt": f"shot {i}: a fox in the snow",
                    "seconds": s,
                    "character": None,
                    "image_hint": None,
                }
                for i, s in enumerate(seconds, 1)
            ]
        }
    )


def entries(moviola, action: str) -> list[dict[str, Any]]:
    return audit.query(moviola.sessions(), audit.Filter(action=action))


# --- structured answers: repaired, then refused ------------------------------------------------


def test_an_answer_in_the_wrong_shape_is_repaired_and_the_third_try_counts(moviola, chat, alice):
    chat.script("the fox, then the snow", shots_json(9, 1), shots_json(2, 1))
    board = alice.post(
        "/assistant/storyboards",
        body={"script": "A fox wakes. It runs into the snow.", "model": "sora-2"},
        cast_to=object,
    )
    assert [shot["seconds"] for shot in board["shots"]] == [2, 1]
    assert board["shots"][0]["prompt"] == "shot 1: a fox in the snow"
    assert len(chat.requests) == 3
    # Each repair shows the model its answer and what is wrong with it.
    first_repair, second_repair = chat.requests[1]["messages"], chat.requests[2]["messages"]
    assert first_repair[-2] == {"role": "assistant", "content": "the fox, then the snow"}
    assert "not valid JSON" in first_repair[-1]["content"]
    assert "less than or equal to 2" in second_repair[-1]["content"]  # tiny: 2 s a shot
    assert all(r["response_format"]["type"] == "json_schema" for r in chat.requests)
    assert entries(moviola, "assistant.storyboard")[-1]["detail"]["calls"] == 3


def test_an_answer_that_stays_wrong_is_a_clear_error_after_exactly_three_calls(chat, alice):
    chat.script(*["{}"] * 5)
    with pytest.raises(openai.APIStatusError) as failed:
        alice.post(
            "/assistant/storyboards",
            body={"script": "A fox wakes.", "model": "sora-2"},
            cast_to=object,
        )
    assert failed.value.status_code == 502
    assert failed.value.body["code"] == "assistant_invalid_output"
    assert "after 3 tries" in failed.value.body["message"]
    assert len(chat.requests) == 3


def test_a_shot_shows_one_of_the_creators_characters_by_id_and_names_it(moviola, chat, alice):
    frames = np.stack([np.full((64, 64, 3), 40 + 10 * i, np.uint8) for i in range(8)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mira.mp4"
        media.write_mp4(frames, path, fps=8, preset="ultrafast")
        mira = alice.videos.create_character(name="Mira", video=("mira.mp4", path.read_bytes()))
    answer = {
        "shots": [
            {
                "prompt": "a girl opens the door",
                "seconds": 2,
                "character": "Mira",
                "image_hint": "a red door",
            },
            {"prompt": "the street in rain", "seconds": 1, "character": None, "image_hint": None},
        ]
    }
    chat.script(json.dumps(answer))
    board = alice.post(
        "/assistant/storyboards",
        body={"script": "Mira leaves home in the rain."},
        cast_to=object,
    )
    first, second = board["shots"]
    assert first["character"] == mira.id and second["character"] is None
    assert first["prompt"] == "Mira: a girl opens the door"  # named, as a storyboard needs
    assert first["image_hint"] == "a red door"
    assert board["characters"] == [mira.id]
    # The model was offered the creator's characters by name, and held to them.
    request = chat.requests[0]
    assert "Mira" in request["messages"][0]["content"]
    schema = request["response_format"]["json_schema"]["schema"]
    character = schema["$defs"]["Shot"]["properties"]["character"]["anyOf"]
    assert character == [{"const": "Mira", "type": "string"}, {"type": "null"}]


def test_a_script_longer_than_the_context_is_summarised_in_parts_first(moviola, chat, alice):
    # About 7,500 tokens (four characters a token) for a 3,000-token context: a few parts.
    scenes = [f"Scene {i}. " + " ".join(["The fox runs through the snow."] * 45) for i in range(22)]
    script = "\n\n".join(scenes)

    def reply(body: dict[str, Any]) -> str:
        if "response_format" in body:
            return shots_json(2, 2)
        part = re.search(r"part (\d+) of (\d+)", body["messages"][0]["content"])
        return f"Summary of part {part[1]} of {part[2]}: a fox runs."

    chat.script()
    chat.default = reply
    try:
        board = alice.post(
            "/assistant/storyboards", body={"script": script, "seconds": 4}, cast_to=object
        )
    finally:
        chat.default = "Sure."
    assert [shot["seconds"] for shot in board["shots"]] == [2, 2]
    *maps, reduce = chat.requests
    parts = len(maps)
    assert parts >= 3
    # Each part whole, in order, within the context; together, the whole script.
    told = [re.search(r"part (\d+) of (\d+)", m["messages"][0]["content"]) for m in maps]
    assert sorted(int(t[1]) for t in told) == list(range(1, parts + 1))
    assert {int(t[2]) for t in told} == {parts}
    pieces = [
        m["messages"][1]["content"] for m in sorted(maps, key=lambda m: m["messages"][0]["content"])
    ]
    assert all(len(piece) < CONTEXT_TOKENS * 4 for piece in pieces)
    assert sum(piece.count("Scene ") for piece in pieces) == len(scenes)
    # The shots are written from the parts' summaries, in order, not from the script itself.
    summaries = reduce["messages"][1]["content"]
    assert summaries.index("part 1 of") < summaries.index(f"part {parts} of")
    assert "Scene 0." not in summaries
    detail = entries(moviola, "assistant.storyboard")[-1]["detail"]
    assert detail["chunks"] == parts and detail["calls"] == parts + 1


# --- conversations -----------------------------------------------------------------------------


def conversation(client) -> str:
    return client.post("/conversations", body={"title": "A fox"}, cast_to=object)["id"]


def turn(moviola, key: str, conversation_id: str, **body: Any) -> list[tuple[str, Any]]:
    """A streamed turn's events, in order."""
    events = []
    with httpx.stream(
        "POST",
        f"{moviola.url}/v1/conversations/{conversation_id}/messages",
        json={**body, "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_an_action_is_proposed_and_only_the_creators_confirmation_decides_it(
    moviola, chat, keys, alice
):
    conv = conversation(alice)
    written = "A corgi surfs a wave at sunset, low tracking shot, warm backlight."
    chat.script(
        f"Try this: {written}",
        json.dumps({"action": {"type": "fill_prompt", "prompt": written}}),
    )
    events = turn(
        moviola,
        keys[0],
        conv,
        content="Make my prompt better",
        context={"page": "create", "prompt": "a corgi surfing", "model": "sora-2"},
    )
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"}
    reply = events[-1][1]
    assert "".join(data["content"] for _, data in events[:-1]) == reply["content"]
    assert reply["action"] == {"type": "fill_prompt", "prompt": written, "state": "proposed"}
    # The model saw the page: what Moviola is, and the prompt being written.
    system = chat.requests[0]["messages"][0]
    assert system["role"] == "system" and "a corgi surfing" in system["content"]

    path = f"/conversations/{conv}/messages/{reply['id']}/action"
    with pytest.raises(openai.BadRequestError):
        alice.post(path, body={"state": "proposed"}, cast_to=object)
    decided = alice.post(path, body={"state": "confirmed"}, cast_to=object)
    assert decided["action"]["state"] == "confirmed"
    with pytest.raises(openai.ConflictError):
        alice.post(path, body={"state": "dismissed"}, cast_to=object)
    stored = alice.get(f"/conversations/{conv}", cast_to=object)
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][0]["context"]["prompt"] == "a corgi surfing"
    assert stored["messages"][1]["action"]["state"] == "confirmed"


def test_another_keys_conversation_is_not_found(moviola, chat, alice, bob):
    conv = conversation(alice)
    chat.script()
    with pytest.raises(openai.NotFoundError):
        bob.post(f"/conversations/{conv}/messages", body={"content": "hi"}, cast_to=object)
    with pytest.raises(openai.NotFoundError):
        bob.post(
            f"/conversations/{conv}/messages/msg_x/action",
            body={"state": "confirmed"},
            cast_to=object,
        )
    assert chat.requests == []  # the model was never asked
    assert alice.get(f"/conversations/{conv}", cast_to=object)["messages"] == []


def test_a_history_longer_than_the_context_is_summarised_not_cut(moviola, chat, alice):
    conv = conversation(alice)
    # Each message about 900 tokens (Moviola estimates four characters a token here): the
    # third exchange no longer fits the 3000-token context beside the reply.
    long = "The fox crosses the frozen river at dawn, wary of the ice. " * 60

    def reply(body: dict[str, Any]) -> str:
        system = body["messages"][0]["content"]
        return "SUMMARY: a fox, a river, dawn." if system.startswith("Summarise") else long

    chat.script()
    chat.default = reply
    try:
        for n in range(3):
            answer = alice.post(
                f"/conversations/{conv}/messages", body={"content": f"{n}: {long}"}, cast_to=object
            )
            assert answer["role"] == "assistant"
    finally:
        chat.default = "Sure."
    # From the second turn on, the two oldest messages no longer fit: folded each time into
    # the summary, which rolls on (the second summary is written from the first).
    summarised = [r for r in chat.requests if r["messages"][0]["content"].startswith("Summarise")]
    assert len(summarised) == 2
    assert "SUMMARY: a fox" in summarised[1]["messages"][1]["content"]
    stored = alice.get(f"/conversations/{conv}", cast_to=object)
    assert stored["summary"] == "SUMMARY: a fox, a river, dawn."
    assert stored["summary_through"] == 4
    # Nothing was lost: every message is still there, and the last turn read the summary and
    # the newest message (each is too long for two to share half the room).
    assert len(stored["messages"]) == 6
    last = chat.requests[-1]["messages"]
    assert last[1] == {
        "role": "system",
        "content": "The conversation so far, summarised:\nSUMMARY: a fox, a river, dawn.",
    }
    assert [m["role"] for m in last[2:]] == ["user"]
    assert entries(moviola, "assistant.turn")[-1]["detail"]["folded"] == 2


def test_a_backend_that_dies_part_way_ends_the_stream_with_an_error(moviola, chat, keys, alice):
    conv = conversation(alice)
    chat.script(Drop(["The fox", " runs"]))
    events = turn(moviola, keys[0], conv, content="Tell me a story")
    assert [name for name, _ in events][:2] == ["delta", "delta"]
    name, data = events[-1]
    assert name == "error"
    assert data["error"]["code"] == "assistant_unavailable"
    assert data["error"]["type"] == "server_error"
    # The creator's message was kept; no half reply was.
    stored = alice.get(f"/conversations/{conv}", cast_to=object)
    assert [m["role"] for m in stored["messages"]] == ["user"]
    assert entries(moviola, "assistant.turn")[-1]["detail"]["outcome"] == "assistant_unavailable"


# --- a backend that is down ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def down(tmp_path_factory, server_class):
    """A server whose chat backend accepts connections and never answers."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    running = server_class(
        tmp_path_factory.mktemp("assistant-down") / "data",
        env={
            "MOVIOLA_ASSISTANT_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "MOVIOLA_ASSISTANT_MODEL": "silent",
            "MOVIOLA_ASSISTANT_TIMEOUT_S": "1.5",
            "MOVIOLA_WORKERS": "0",
        },
    ).start()
    yield running
    running.stop()
    silent.close()


def test_a_backend_that_does_not_answer_is_a_503_within_the_deadline(down):
    client = down.client()
    for path, body in (
        ("/assistant/prompts", {"prompt": "a kite over dunes"}),
        ("/assistant/storyboards", {"script": "A kite rises over the dunes."}),
    ):
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as failed:
            client.post(path, body=body, cast_to=object)
        assert time.monotonic() - started < 10
        assert failed.value.status_code == 503
        assert failed.value.body["code"] == "assistant_unavailable"


def test_enhance_prompt_with_the_backend_down_queues_nothing(down):
    client = down.client()
    with pytest.raises(openai.APIStatusError) as failed:
        client.videos.create(
            prompt="a kite over dunes",
            size="160x96",
            seconds="1",
            extra_body={"enhance_prompt": True},
        )
    assert failed.value.status_code == 503
    assert failed.value.body["code"] == "assistant_unavailable"
    assert client.videos.list().data == []
