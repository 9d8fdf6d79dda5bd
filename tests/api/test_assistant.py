"""The assistant end to end on this server's own chat model: `tiny-chat`, random weights that
write noise, held to each JSON schema by constrained decoding — so every answer that must be
JSON is, and the flows run whole: an idea written as a prompt and rendered
(`enhance_prompt`), a script turned into shots that render as a storyboard, a conversation
turn streamed and stored.

The real `openai` SDK is the client (`client.post(..., cast_to=object)` for Moviola's own
routes, `extra_body` for its video fields); httpx reads a streamed turn's events and posts the
Studio's storyboard form. Prompts are kept short (`MOVIOLA_MAX_PROMPT_CHARS`) so that the noise
model, which fills every string to its limit, answers in seconds.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import openai
import pytest

from moviola.store import audit

pytestmark = pytest.mark.timeout(300)

MAX_PROMPT = 80
MAX_SCRIPT = 5000
IDEA = "a corgi surfing at sunset"


@pytest.fixture(scope="module")
def local(tmp_path_factory, server_class):
    running = server_class(
        tmp_path_factory.mktemp("assistant") / "data",
        env={
            "MOVIOLA_ASSISTANT_MODEL": "tiny-chat",
            "MOVIOLA_ASSISTANT_TIMEOUT_S": "120",  # a shared CPU: the noise model is slow
            "MOVIOLA_MAX_PROMPT_CHARS": str(MAX_PROMPT),
            "MOVIOLA_ASSISTANT_MAX_SCRIPT_CHARS": str(MAX_SCRIPT),
            "MOVIOLA_BLOCKED_TERMS": "contraband",
        },
    ).start()
    client = running.client(timeout=180)
    deadline = time.monotonic() + 120
    while True:  # the chat worker loads its model after the server is up
        try:
            client.chat.completions.create(
                model="tiny-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
            break
        except openai.APIStatusError as err:
            if err.status_code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(1)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(local):
    return local.client(timeout=180)


def last_entry(server, action: str) -> dict:
    return audit.query(server.sessions(), audit.Filter(action=action))[-1]


def test_an_idea_is_written_as_a_prompt_with_three_variants(local, client):
    written = client.post(
        "/assistant/prompts", body={"prompt": IDEA, "model": "sora-2"}, cast_to=object
    )
    assert written["object"] == "assistant.prompt"
    assert len(written["variants"]) == 3
    for prompt in (written["prompt"], *written["variants"]):
        assert 1 <= len(prompt) <= MAX_PROMPT  # the server's prompt limit, held to
    entry = last_entry(local, "assistant.prompt")
    assert entry["detail"]["outcome"] == "ok" and entry["detail"]["calls"] == 1


def test_enhance_prompt_renders_the_written_prompt_and_keeps_the_idea(local, client, small):
    video = client.videos.create_and_poll(prompt=IDEA, **small, extra_body={"enhance_prompt": True})
    assert video.status == "completed", video.error
    assert video.prompt != IDEA and 1 <= len(video.prompt) <= MAX_PROMPT
    extras = video.model_extra["moviola"]
    assert extras["original_prompt"] == IDEA
    assert len(extras["prompt_variants"]) == 3
    assert last_entry(local, "assistant.prompt")["detail"]["via"] == "enhance_prompt"
    # A video made without it has neither.
    plain = client.videos.retrieve(client.videos.create(prompt=IDEA, **small).id)
    assert plain.prompt == IDEA
    assert plain.model_extra["moviola"]["original_prompt"] is None


def test_enhance_prompt_is_taken_by_a_create_only(client, small):
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.remix("video_0", prompt="in snow", extra_body={"enhance_prompt": True})
    assert refused.value.body["param"] == "enhance_prompt"
    assert "cannot see the source video" in refused.value.body["message"]
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt=IDEA, **small, extra_body={"enhance_prompt": "maybe"})
    assert refused.value.body["param"] == "enhance_prompt"


def test_a_script_becomes_shots_that_render_as_one_storyboard(local, client):
    script = (
        "INT. BURROW - DAWN. A fox wakes and stretches.\n\n"
        "EXT. SNOWFIELD - DAY. It runs into the snow, leaving tracks behind."
    )
    board = client.post(
        "/assistant/storyboards",
        body={"script": script, "model": "sora-2", "seconds": 3},
        cast_to=object,
    )
    shots = board["shots"]
    # sora-2 is the tiny model here: 2 s in one generation, so 2 or 3 shots making 3 s.
    assert 2 <= len(shots) <= 3
    assert sum(shot["seconds"] for shot in shots) == 3
    assert all(1 <= shot["seconds"] <= 2 for shot in shots)
    assert all(1 <= len(shot["prompt"]) <= MAX_PROMPT for shot in shots)
    assert board["characters"] == [] and all(s["character"] is None for s in shots)

    # The shots are what the Storyboard editor posts: they render as one video.
    with httpx.Client(base_url=local.url, timeout=60) as browser:
        page = browser.get("/storyboard")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]
        posted = browser.post(
            "/storyboard",
            data={
                "csrf": csrf,
                "shot_prompt": [shot["prompt"] for shot in shots],
                "shot_seconds": [str(shot["seconds"]) for shot in shots],
                "model": board["model"],
                "size": "160x96",
            },
        )
    assert posted.status_code == 303, posted.text[-2000:]
    video_id = re.search(r"/videos/(video_[0-9a-f]+)", posted.headers["location"])[1]
    video = client.videos.poll(video_id)
    assert video.status == "completed", video.error
    assert video.model_extra["moviola"]["kind"] == "storyboard"
    assert last_entry(local, "assistant.storyboard")["detail"]["shots"] == len(shots)


def test_a_script_over_the_limit_is_refused_naming_it(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.post(
            "/assistant/storyboards", body={"script": "x" * (MAX_SCRIPT + 1)}, cast_to=object
        )
    assert refused.value.body["param"] == "script"
    assert f"{MAX_SCRIPT:,}" in refused.value.body["message"]


def test_a_turn_streams_its_reply_and_stores_it(local, client):
    conversation = client.post("/conversations", body={}, cast_to=object)["id"]
    events = []
    with httpx.stream(
        "POST",
        f"{local.url}/v1/conversations/{conversation}/messages",
        json={
            "content": "How do I make this more cinematic?",
            "context": {"page": "create", "prompt": IDEA, "model": "sora-2"},
            "stream": True,
        },
        timeout=180,
    ) as response:
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "done"
    assert {name for name, _ in events[:-1]} <= {"delta"}
    reply = events[-1][1]
    assert "".join(data["content"] for _, data in events[:-1]) == reply["content"]
    # The create page offers one action: a prompt to fill in, proposed, never done.
    if reply["action"] is not None:
        assert reply["action"]["type"] == "fill_prompt"
        assert reply["action"]["state"] == "proposed"
    stored = client.get(f"/conversations/{conversation}", cast_to=object)["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["context"] == {"page": "create", "prompt": IDEA, "model": "sora-2"}
    assert stored[1]["content"] == reply["content"]

    whole = client.post(
        f"/conversations/{conversation}/messages",
        body={"content": "And the light?"},
        cast_to=object,
    )
    assert whole["role"] == "assistant" and whole["seq"] == 4


def test_text_the_policy_blocks_is_refused_and_nothing_is_stored(local, client):
    conversation = client.post("/conversations", body={}, cast_to=object)["id"]
    for path, body in (
        ("/assistant/prompts", {"prompt": "a contraband deal"}),
        ("/assistant/storyboards", {"script": "They hide the contraband."}),
        (f"/conversations/{conversation}/messages", {"content": "more contraband"}),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.post(path, body=body, cast_to=object)
        assert refused.value.body["code"] == "moderation_blocked"
    assert client.get(f"/conversations/{conversation}", cast_to=object)["messages"] == []
    kinds = [
        e["detail"]["kind"]
        for e in audit.query(local.sessions(), audit.Filter(action="moderation"))
    ]
    assert kinds[-3:] == ["assistant.prompt", "assistant.storyboard", "assistant.turn"]
