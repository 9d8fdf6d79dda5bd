"""`ChatBackend`, the assistant's one client of a chat server, against a real chat worker
(`ChatProcess` running tiny-chat) and against servers that are missing, down or silent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

import jsonschema
import pytest
from tests.conftest import free_port

from moviola.chat.backend import ChatBackend
from moviola.chat.process import ChatProcess
from moviola.config import Settings
from moviola.engine.tiny_chat import TINY_CHAT_CONTEXT, tiny_chat_tokenizer_core
from moviola.errors import AssistantUnavailableError, InvalidRequestError

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Two shots of a fox in the snow."}]
SHOTS = {
    "type": "object",
    "properties": {
        "shots": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "items": {"type": "string", "maxLength": 20},
        }
    },
    "required": ["shots"],
    "additionalProperties": False,
}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("chat"), assistant_model="tiny-chat")


@pytest.fixture(scope="module")
def worker(settings):
    with pytest.MonkeyPatch.context() as env:
        # One torch thread in the worker, as the test servers run theirs: a small shared CPU.
        env.setenv("OMP_NUM_THREADS", "1")
        process = ChatProcess(settings)
        process.start()
        wait_for(lambda: process.url is not None, 180, "the chat worker to load tiny-chat")
        yield process
        process.stop()


@pytest.fixture(scope="module")
def chat(settings, worker) -> ChatBackend:
    return ChatBackend.from_settings(settings, worker)


def remote(url: str, *, timeout_s: float = 5, api_key: str | None = None, model: str = "m"):
    settings = Settings(
        assistant_base_url=url,
        assistant_model=model,
        assistant_api_key=api_key,
        assistant_timeout_s=timeout_s,
    )
    return ChatBackend.from_settings(settings, None)


async def streamed(chat: ChatBackend, **kwargs) -> list[str]:
    return [delta async for delta in chat.stream(ASK, **kwargs)]


def test_the_local_backend_names_its_model_and_context(chat):
    assert (chat.model, chat.context_tokens, chat.is_local) == (
        "tiny-chat",
        TINY_CHAT_CONTEXT,
        True,
    )


def test_complete_and_stream_write_the_same_reply_for_a_seed(chat):
    whole = asyncio.run(chat.complete(ASK, max_tokens=16, seed=4))
    deltas = asyncio.run(streamed(chat, max_tokens=16, seed=4))
    assert whole and "".join(deltas) == whole
    assert len(deltas) > 1


def test_complete_with_a_json_schema_returns_valid_json(chat):
    text = asyncio.run(
        chat.complete(
            ASK,
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": SHOTS}},
            max_tokens=200,
            seed=1,
        )
    )
    jsonschema.validate(json.loads(text), SHOTS)


def test_a_request_the_server_refuses_is_the_callers_error(chat):
    with pytest.raises(InvalidRequestError, match="shorten it") as err:
        too_long = "x" * (TINY_CHAT_CONTEXT + 100)  # a token a character, at least
        asyncio.run(chat.complete([{"role": "user", "content": too_long}], max_tokens=4))
    assert (err.value.code, err.value.param) == ("context_length_exceeded", "messages")


def test_local_tokens_are_counted_by_the_models_tokenizer_remote_ones_estimated(chat):
    text = "A fox leaps over a frozen stream at dawn."
    assert chat.count_tokens(text) == len(tiny_chat_tokenizer_core().encode(text).ids)
    assert remote("http://127.0.0.1:9/v1").count_tokens(text) == 11  # 41 characters / 4


def test_a_remote_server_that_is_down_is_unavailable():
    chat = remote(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(AssistantUnavailableError, match="cannot be reached"):
        asyncio.run(chat.complete(ASK))


def test_a_remote_server_that_never_answers_is_unavailable_at_the_deadline():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        chat = remote(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", timeout_s=0.5)
        with pytest.raises(AssistantUnavailableError, match=r"within 0\.5 s"):
            asyncio.run(chat.complete(ASK))
        with pytest.raises(AssistantUnavailableError, match=r"first byte within 0\.5 s"):
            asyncio.run(streamed(chat))


def test_a_remote_server_that_does_not_know_the_model_is_unavailable(worker):
    # The operator's set-up (a model name the server lacks), not the caller's request.
    chat = remote(worker.url, api_key=worker.token, model="llama3")
    with pytest.raises(AssistantUnavailableError, match="answered 404"):
        asyncio.run(chat.complete(ASK))


def test_a_local_model_that_is_not_here_names_the_pull_command(tmp_path):
    settings = Settings(data_dir=tmp_path, assistant_model="qwen3-0.6b")
    process = ChatProcess(settings)
    process.start()  # nothing to start: the weights are not here
    chat = ChatBackend.from_settings(settings, process)
    assert not chat.serving and process.url is None
    with pytest.raises(AssistantUnavailableError, match=r"moviola models pull qwen3-0\.6b"):
        asyncio.run(chat.complete(ASK))
    process.stop()


def test_a_killed_chat_worker_is_restarted_and_answers_again(chat, worker):
    before, url = worker.pid, worker.url
    os.kill(before, signal.SIGKILL)
    wait_for(lambda: worker.restarts == 1 and worker.url is not None, 180, "a new chat worker")
    assert worker.pid != before and worker.url != url
    assert asyncio.run(chat.complete(ASK, max_tokens=4, seed=4))
