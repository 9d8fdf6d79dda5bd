"""A chat backend that is missing, down or silent is a clear 503 `assistant_unavailable`
within the deadline, never a hang nor a 500."""

from __future__ import annotations

import socket

import openai
import pytest
from tests.conftest import free_port

ASK = [{"role": "user", "content": "a lighthouse in a storm"}]


@pytest.fixture(scope="module")
def silent_backend():
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


@pytest.fixture(scope="module")
def waiting(tmp_path_factory, server_class, silent_backend):
    """A server whose assistant backend is the silent one, with a 1 s deadline."""
    running = server_class(
        tmp_path_factory.mktemp("chat-silent") / "data",
        env={
            "MOVIOLA_WORKERS": "0",
            "MOVIOLA_ASSISTANT_BASE_URL": silent_backend,
            "MOVIOLA_ASSISTANT_MODEL": "llama3",
            "MOVIOLA_ASSISTANT_TIMEOUT_S": "1",
        },
    ).start()
    yield running
    running.stop()


def unavailable(server, **create) -> openai.InternalServerError:
    # The client would wait 30 s: a 503 before then is the server's own deadline at work.
    client = server.client(timeout=30)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model=create.pop("model", "llama3"), messages=ASK, **create)
    assert err.value.status_code == 503
    assert err.value.code == "assistant_unavailable"
    return err.value


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_remote_backend_that_never_answers_is_a_503_within_the_deadline(
    waiting, silent_backend, stream
):
    err = unavailable(waiting, stream=stream)
    assert silent_backend in err.message and "within 1 s" in err.message


@pytest.mark.slow
def test_a_remote_backend_that_is_down_is_a_503(make_server):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    server = make_server(
        env={
            "MOVIOLA_WORKERS": "0",
            "MOVIOLA_ASSISTANT_BASE_URL": closed,
            "MOVIOLA_ASSISTANT_MODEL": "llama3",
        }
    ).start()
    err = unavailable(server)
    assert "cannot be reached" in err.message
    # The remote model is still listed: the server cannot know it is gone for good.
    assert "llama3" in {model.id for model in server.client().models.list()}


def test_a_local_model_not_on_this_machine_names_the_pull_command(server):
    # The shared API server: the default assistant model, whose weights are not here.
    err = unavailable(server, model="qwen3-1.7b")
    assert "moviola models pull qwen3-1.7b" in err.message
    assert "qwen3-1.7b" not in {model.id for model in server.client().models.list()}
