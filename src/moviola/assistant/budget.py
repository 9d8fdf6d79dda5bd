"""Fitting a call into the chat model's context: what the messages take, what the answer may.

A model reads its messages and writes its answer within one context window
(`ChatBackend.context_tokens`); a server refuses a call whose messages and `max_tokens`
together do not fit. Tokens are counted with the local model's own tokenizer, or estimated for
a remote server (`ChatBackend.count_tokens`).
"""

from __future__ import annotations

from typing import Any

from moviola.assistant.structured import REPAIR_TOKENS, Chat
from moviola.errors import InvalidRequestError

MESSAGE_TOKENS = 8  # what a chat template adds around each message (role markers)
LEAST_ANSWER = 64  # an answer shorter than this is no answer


def used(backend: Chat, messages: list[dict[str, Any]]) -> int:
    """The tokens `messages` take in the context."""
    return sum(backend.count_tokens(str(m["content"])) + MESSAGE_TOKENS for m in messages)


def answer_tokens(backend: Chat, messages: list[dict[str, Any]], wanted: int, *, param: str) -> int:
    """`max_tokens` for an answer to `messages`: `wanted`, or what the context leaves once a
    repair's worth of room is kept free. Messages that leave too little are the caller's to
    shorten: a 400 naming `param`."""
    left = backend.context_tokens - used(backend, messages) - REPAIR_TOKENS
    if left < LEAST_ANSWER:
        raise InvalidRequestError(
            f"{param} is too long for the assistant's model ({backend.model} reads "
            f"{backend.context_tokens} tokens in all); shorten it",
            param=param,
        )
    return min(wanted, left)


def chars_per_token(backend: Chat, sample: str) -> float:
    """About how many characters of text one of the model's tokens holds, measured on
    `sample`: one for a byte-level tokenizer (the test model), about four for English on a
    real model's."""
    return min(6.0, max(1.0, len(sample) / max(1, backend.count_tokens(sample))))


def chars_in(tokens: int, ratio: float) -> int:
    """The characters that surely fit in `tokens` tokens (JSON escapes and odd words cost
    more than the average): what a schema's `maxLength` may allow."""
    return max(0, int(tokens * ratio * 0.8))
