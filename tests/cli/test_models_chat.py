"""`moviola models list | info | pull` know the assistant's chat models."""

from __future__ import annotations

from typer.testing import CliRunner

from moviola.cli import app
from moviola.engine.chat import ChatEngine, ChatParams
from moviola.engine.tiny_chat import TINY_CHAT_CONTEXT


def run(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return done.exit_code, " ".join(done.output.split())


def test_list_has_the_chat_models_and_the_one_in_use():
    code, out = run("models", "list")
    assert code == 0, out
    assert "Chat models (the assistant)" in out
    assert f"tiny-chat │ {TINY_CHAT_CONTEXT:,} │ - │ built in" in out
    assert "qwen3-1.7b (in use) │ 32,768 │ 4.1 GB │ no" in out


def test_info_describes_a_chat_model():
    code, out = run("models", "info", "qwen3-4b-instruct")
    assert code == 0, out
    assert "weights Qwen/Qwen3-4B-Instruct-2507" in out
    assert "context 32,768 tokens" in out and "licence Apache-2.0" in out


def test_pull_tiny_chat_saves_a_copy_that_loads_like_real_weights(tmp_path):
    code, out = run("models", "pull", "tiny-chat", "--to", str(tmp_path / "tiny-chat"))
    assert code == 0, out
    assert "tiny-chat is built in code; saved a copy to" in out
    saved = ChatEngine("tiny-chat", models_dir=tmp_path, device="cpu")
    reply = saved.generate([{"role": "user", "content": "hi"}], ChatParams(max_tokens=3, seed=1))
    assert reply.text() and reply.completion_tokens == 3


def test_pull_refuses_fast_for_a_chat_model():
    code, out = run("models", "pull", "qwen3-0.6b", "--fast")
    assert code != 0 and "--fast is for video models" in out
