"""Asking the chat model for JSON that fits a schema: repaired, retried, then a clear error.

The schema goes with the request (`response_format`): the local model is held to it by
constrained decoding, so its first answer fits. A remote server may ignore it, and a model may
still break a rule no schema can say (a character's name missing from its prompt): then the
answer and what is wrong with it go back to the model, which is asked again — at most
`RETRIES` more times — before the caller gets `AssistantInvalidOutputError`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from moviola.assistant.schemas import response_format
from moviola.errors import AssistantInvalidOutputError

RETRIES = 2  # after the first answer: three calls in all
# The most tokens a repair adds to the messages (the invalid answer, cut short, and what is
# wrong with it): callers keep this much of the context free.
REPAIR_TOKENS = 256
_ECHO_TOKENS = REPAIR_TOKENS - 96
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

Model = TypeVar("Model", bound=BaseModel)


class Chat(Protocol):
    """What the assistant needs of a chat backend: `moviola.chat.backend.ChatBackend`, or
    `Counted` around one."""

    @property
    def model(self) -> str: ...

    @property
    def context_tokens(self) -> int: ...

    async def complete(
        self,
        messages: list[dict],
        *,
        response_format: dict | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> str: ...

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> AsyncIterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


class Counted:
    """A chat backend that counts the calls made through it (for the audit log)."""

    def __init__(self, backend: Chat):
        self.backend = backend
        self.calls = 0

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def context_tokens(self) -> int:
        return self.backend.context_tokens

    async def complete(self, messages: list[dict], **options: Any) -> str:
        self.calls += 1
        return await self.backend.complete(messages, **options)

    def stream(self, messages: list[dict], **options: Any) -> AsyncIterator[str]:
        self.calls += 1
        return self.backend.stream(messages, **options)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)


class Invalid(ValueError):
    """An answer that parses and fits the schema but breaks a rule the schema cannot say."""


async def ask(
    backend: Chat,
    messages: list[dict[str, Any]],
    answer: type[Model],
    *,
    max_tokens: int,
    temperature: float = 0.7,
    seed: int | None = None,
    check: Callable[[Model], None] | None = None,
) -> Model:
    """`answer` as the model writes it for `messages`; `check` may raise `Invalid`."""
    conversation = list(messages)
    fmt = response_format(answer)
    problem = ""
    for attempt in range(1 + RETRIES):
        reply = await backend.complete(
            conversation,
            response_format=fmt,
            max_tokens=max_tokens,
            temperature=temperature,
            # Another draw on a retry: the same seed would write the same answer.
            seed=None if seed is None else seed + attempt,
        )
        try:
            parsed = answer.model_validate_json(_unfenced(reply))
            if check is not None:
                check(parsed)
            return parsed
        except (ValidationError, Invalid) as err:
            problem = describe(err)
        conversation = [
            *messages,
            {"role": "assistant", "content": _echo(backend, reply)},
            {
                "role": "user",
                "content": f"That answer cannot be used: {problem[:300]}. Answer again with only "
                "the JSON object, in the same shape, with that fixed.",
            },
        ]
    raise AssistantInvalidOutputError(
        f"the assistant's model ({backend.model}) did not answer in the expected shape after "
        f"{1 + RETRIES} tries; the last problem: {problem}"
    )


def describe(err: Exception) -> str:
    """What is wrong with an answer, in a line a model (and a person) can act on."""
    if not isinstance(err, ValidationError):
        return str(err)
    problems = []
    for item in err.errors()[:3]:
        where = ".".join(str(part) for part in item.get("loc", ()))
        if item.get("type") == "json_invalid":
            problems.append("it is not valid JSON (it may have been cut off)")
        else:
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    more = err.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _echo(backend: Chat, reply: str) -> str:
    """The start of an invalid answer, short enough to show the model its mistake without
    overflowing its context."""
    echo = reply[: _ECHO_TOKENS * 8]
    while echo and backend.count_tokens(echo) > _ECHO_TOKENS:
        echo = echo[: len(echo) * 2 // 3]
    return echo


def _unfenced(reply: str) -> str:
    """The JSON inside a ```json fence, which chat models add out of habit."""
    fenced = _FENCE.match(reply)
    return fenced[1] if fenced else reply
