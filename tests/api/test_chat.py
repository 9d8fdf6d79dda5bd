"""`POST /v1/chat/completions` and the chat models of `GET /v1/models`, through the official
`openai` SDK against real servers.

Two servers: `local` runs tiny-chat in its own chat worker (and has an API key); `remote` has
no model of its own and is pointed at `local` as its OpenAI-compatible backend
(`MOVIOLA_ASSISTANT_BASE_URL`), as an operator would point it at Ollama or vLLM. The same tests
run through both: the assistant's two paths are one code path.
"""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

from moviola.store import audit

pytestmark = pytest.mark.slow

STORYBOARD = {
    "type": "object",
    "properties": {
        "shots": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "maxLength": 30},
                    "seconds": {"type": "integer", "minimum": 1, "maximum": 8},
                },
                "required": ["prompt", "seconds"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["shots"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Three shots of a lighthouse in a storm."}]
ENV = {
    "MOVIOLA_WORKERS": "0",  # no video rendering here: only the chat worker
    "MOVIOLA_BLOCKED_TERMS": "contraband",
}


def wait_for_chat(client: openai.OpenAI, timeout: float = 180) -> None:
    """Until the chat worker has loaded its model (503 while it starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.chat.completions.create(model="tiny-chat", messages=ASK, max_tokens=1)
            return
        except openai.InternalServerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def local(tmp_path_factory, server_class):
    running = server_class(
        tmp_path_factory.mktemp("chat-local") / "data",
        env={**ENV, "MOVIOLA_ASSISTANT_MODEL": "tiny-chat"},
    ).start()
    running.key = running.create_key("chat")
    wait_for_chat(running.client(running.key))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def remote(tmp_path_factory, server_class, local):
    running = server_class(
        tmp_path_factory.mktemp("chat-remote") / "data",
        env={
            **ENV,
            "MOVIOLA_ASSISTANT_BASE_URL": f"{local.url}/v1",
            "MOVIOLA_ASSISTANT_MODEL": "tiny-chat",
            "MOVIOLA_ASSISTANT_API_KEY": local.key,
        },
    ).start()
    running.key = "unused-on-loopback"  # no keys of its own
    yield running
    running.stop()


@pytest.fixture(params=["local", "remote"])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def client(server) -> openai.OpenAI:
    return server.client(server.key)


def test_a_completion_is_an_openai_chat_completion(client):
    completion = client.chat.completions.create(
        model="tiny-chat", messages=ASK, max_tokens=12, seed=5
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "tiny-chat"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= completion.usage.completion_tokens <= 12
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_healthz_says_where_the_assistants_replies_come_from(local, remote):
    for server, backend in ((local, "local"), (remote, "remote")):
        assistant = httpx.get(f"{server.url}/healthz").json()["assistant"]
        ready = {"backend": backend, "model": "tiny-chat", "ready": True, "reason": None}
        assert assistant == ready


def test_the_remote_path_answers_what_the_local_model_writes(local, remote):
    def ask(server):
        return server.client(server.key).chat.completions.create(
            model="tiny-chat", messages=ASK, max_tokens=12, seed=11
        )

    assert ask(remote).choices[0].message.content == ask(local).choices[0].message.content


def test_streamed_deltas_make_the_same_reply_and_end_with_a_finish_reason(client):
    whole = client.chat.completions.create(model="tiny-chat", messages=ASK, max_tokens=20, seed=3)
    stream = client.chat.completions.create(
        model="tiny-chat",
        messages=ASK,
        max_tokens=20,
        seed=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    with_choices = [c for c in chunks if c.choices]
    deltas = [c.choices[0].delta.content or "" for c in with_choices]
    assert "".join(deltas) == whole.choices[0].message.content
    assert len([d for d in deltas if d]) > 1  # streamed, not sent whole
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("seed", [1, 2])
def test_a_json_schema_reply_validates_against_its_schema(client, seed):
    completion = client.chat.completions.create(
        model="tiny-chat",
        messages=ASK,
        max_tokens=400,
        seed=seed,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "storyboard", "schema": STORYBOARD, "strict": True},
        },
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), STORYBOARD)
    assert completion.choices[0].finish_reason == "stop"


def test_the_model_list_has_the_chat_model_beside_the_video_models(client):
    ids = {model.id for model in client.models.list()}
    assert {"tiny-chat", "sora-2"} <= ids
    assert client.models.retrieve("tiny-chat").id == "tiny-chat"


def test_an_unknown_field_is_refused(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="tiny-chat", messages=ASK, extra_body={"logit_bias_please": 1}
        )
    assert err.value.code == "unknown_parameter"
    assert err.value.param == "logit_bias_please"


def test_another_model_name_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=ASK)
    assert err.value.param == "model" and "tiny-chat" in err.value.message


def test_a_blocked_prompt_is_refused_as_a_video_prompt_is(client):
    blocked = [{"role": "user", "content": "a storyboard about contraband"}]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny-chat", messages=blocked)
    assert err.value.code == "moderation_blocked"
    assert err.value.param == "messages"


def test_every_call_is_in_the_audit_log(server, client):
    client.chat.completions.create(
        model="tiny-chat", messages=ASK, max_tokens=2, user="audit-test-user"
    )
    entries = audit.query(server.sessions(), audit.Filter(action="chat"))
    assert any(entry["detail"].get("user") == "audit-test-user" for entry in entries)


def test_a_missing_or_wrong_key_is_refused_once_keys_exist(local):
    with pytest.raises(openai.AuthenticationError):
        local.client("not-a-key").chat.completions.create(model="tiny-chat", messages=ASK)
    answer = httpx.post(
        f"{local.url}/v1/chat/completions", json={"model": "tiny-chat", "messages": ASK}
    )
    assert answer.status_code == 401
