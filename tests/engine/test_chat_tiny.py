"""`tiny-chat` and the `ChatEngine`: a real transformers chat model (Qwen3's class, a byte-level
BPE tokenizer, ChatML), random weights built in code, written token by token."""

from __future__ import annotations

import threading

import pytest
import torch

from moviola.engine.chat import ChatEngine, ChatParams, ContextLengthError
from moviola.engine.chat_models import TINY_CHAT_ID, chat_weights, find_chat_model
from moviola.engine.errors import UnknownModelError, WeightsNotFoundError
from moviola.engine.tiny_chat import (
    TINY_CHAT_CONTEXT,
    build_tiny_chat,
    save_tiny_chat,
    tiny_chat_tokenizer_core,
)

HELLO = [{"role": "user", "content": "a storyboard about a lighthouse keeper"}]


@pytest.fixture(scope="module")
def chat():
    # One thread, as the server's workers run: on a small shared CPU, torch's thread pool
    # spinning against other processes makes a tiny model's steps ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ChatEngine(TINY_CHAT_ID, device="cpu")
    torch.set_num_threads(threads)


def test_tiny_chat_is_a_qwen3_causal_lm_with_a_byte_level_chat_tokenizer():
    model, tokenizer = build_tiny_chat()
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    # Every string encodes (256 byte tokens), and a merge makes some tokens longer than a byte.
    ids = tokenizer.encode("the façade", add_special_tokens=False)
    assert tokenizer.decode(ids) == "the façade"
    assert len(ids) < len("the façade".encode())
    text = tokenizer.apply_chat_template(HELLO, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>user\na storyboard about a lighthouse keeper<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_the_light_tokenizer_counts_as_the_model_does():
    _, tokenizer = build_tiny_chat()
    text = "Shot 1: a wave breaks over the rocks."
    core = tiny_chat_tokenizer_core()
    assert core.encode(text, add_special_tokens=False).ids == tokenizer.encode(
        text, add_special_tokens=False
    )


def test_the_same_seed_writes_the_same_reply_and_another_seed_another(chat):
    first = chat.generate(HELLO, ChatParams(max_tokens=24, seed=7))
    deltas = list(first)
    again = chat.generate(HELLO, ChatParams(max_tokens=24, seed=7)).text()
    other = chat.generate(HELLO, ChatParams(max_tokens=24, seed=8)).text()
    assert "".join(deltas) == again
    assert again != other
    assert len(deltas) > 1  # streamed a piece at a time
    assert first.prompt_tokens == len(chat.prompt_ids(HELLO))
    assert 1 <= first.completion_tokens <= 24
    assert first.finish_reason in ("stop", "length")


def test_max_tokens_ends_the_reply_with_length(chat):
    reply = chat.generate(HELLO, ChatParams(max_tokens=5, seed=1, temperature=0))
    reply.text()
    # Greedy decoding of tiny-chat never picks its end token in the first five.
    assert (reply.completion_tokens, reply.finish_reason) == (5, "length")


def test_a_stop_string_ends_the_reply_before_it(chat):
    full = chat.generate(HELLO, ChatParams(max_tokens=40, seed=3)).text()
    stop = full[10:12]
    cut = chat.generate(HELLO, ChatParams(max_tokens=40, seed=3, stop=(stop,)))
    text = cut.text()
    assert text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_a_cancelled_reply_stops_between_tokens(chat):
    cancel = threading.Event()
    reply = chat.generate(HELLO, ChatParams(max_tokens=500, seed=2), cancel)
    deltas = iter(reply)
    next(deltas)
    cancel.set()
    list(deltas)
    assert reply.completion_tokens < 500
    assert reply.finish_reason is None


def test_a_conversation_longer_than_the_context_is_refused(chat):
    long = [{"role": "user", "content": "x" * (TINY_CHAT_CONTEXT + 10)}]
    with pytest.raises(ContextLengthError, match="shorten it"):
        chat.generate(long, ChatParams(max_tokens=10))


def test_a_saved_copy_loads_through_the_path_real_weights_take(tmp_path, chat):
    folder = save_tiny_chat(tmp_path / TINY_CHAT_ID)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert chat_weights(find_chat_model(TINY_CHAT_ID), tmp_path) == folder
    saved = ChatEngine(TINY_CHAT_ID, models_dir=tmp_path, device="cpu")
    params = ChatParams(max_tokens=16, seed=5)
    assert saved.generate(HELLO, params).text() == chat.generate(HELLO, params).text()


def test_a_real_model_without_weights_names_the_pull_command(tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"moviola models pull qwen3-1\.7b"):
        ChatEngine("qwen3-1.7b", models_dir=tmp_path, device="cpu")


def test_an_unknown_chat_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="qwen3-4b-instruct"):
        find_chat_model("gpt-5")


def test_half_a_character_waits_for_its_other_half_and_is_never_dropped(chat):
    from moviola.engine.chat import _Detokenizer

    first, second = chat.tokenizer.encode("é", add_special_tokens=False)  # two byte tokens
    whole = _Detokenizer(chat.tokenizer)
    assert (whole.add(first), whole.add(second)) == ("", "é")
    cut = _Detokenizer(chat.tokenizer)
    assert (cut.add(first), cut.flush()) == ("", "\ufffd")  # a reply that ended mid-character
