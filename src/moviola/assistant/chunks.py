"""Text longer than the model's context, summarised in chunks (map) until it fits (reduce).

    fitted = await condense(chat, script, budget=3000, what="script")
    fitted.text    # the script itself when it fits, else its summaries joined in order
    fitted.chunks  # how many summaries were written (0: it fitted as it was)

Chunks end at paragraph breaks where they can (else sentences, else words), so a summary
rarely starts mid-thought. Each summary is much shorter than its chunk, so every round
shrinks the text; a text still too long goes round again. Summaries are asked for a few at a
time: a remote server answers them side by side; the local worker takes them in turn.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from moviola.assistant import budget
from moviola.assistant.structured import Chat
from moviola.errors import InvalidRequestError

CONCURRENCY = 4
MAX_ROUNDS = 4  # each round shrinks the text several times over: four cover any script
SHRINK = 4  # a chunk is at least this many times as long as its summary
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"\s+"))


@dataclass(frozen=True)
class Fitted:
    text: str
    chunks: int  # summaries written, over every round


def summary_tokens(backend: Chat) -> int:
    """How long one summary may be: an eighth of the context, at most 512 tokens."""
    return max(32, min(512, backend.context_tokens // 8))


def instructions(what: str, part: int, parts: int, words: int) -> str:
    return (
        f"You summarise part {part} of {parts} of a {what} so that a storyboard can be made "
        "from the summaries of all its parts. Keep the events in their order: who does what, "
        "where and when, and the visual details a shot would need (places, looks, light, "
        f"mood). Plain prose, at most {words} words, no preamble."
    )


async def condense(backend: Chat, text: str, *, room: int, what: str) -> Fitted:
    """`text` as it is if it takes at most `room` tokens, else summarised until it does."""
    written = 0
    for _ in range(MAX_ROUNDS):
        if backend.count_tokens(text) <= room:
            return Fitted(text, written)
        summaries = await _map(backend, text, what)
        written += len(summaries)
        joined = "\n\n".join(f"Part {i}: {s}" for i, s in enumerate(summaries, 1))
        if len(joined) >= len(text):  # a model that does not summarise: no round would help
            break
        text = joined
    if backend.count_tokens(text) <= room:
        return Fitted(text, written)
    raise InvalidRequestError(
        f"the {what} is too long for the assistant's model ({backend.model}, "
        f"{backend.context_tokens} tokens) even summarised; send a shorter one",
        param=what,
    )


async def _map(backend: Chat, text: str, what: str) -> list[str]:
    words = summary_tokens(backend) * 2 // 3
    probe = instructions(what, 999, 999, words)
    overhead = budget.used(backend, [{"role": "system", "content": probe}]) + budget.MESSAGE_TOKENS
    answer = summary_tokens(backend)
    size = backend.context_tokens - overhead - answer
    if size < SHRINK * answer:
        raise InvalidRequestError(
            f"the assistant's model ({backend.model}) reads only {backend.context_tokens} "
            f"tokens: too few to summarise a long {what}",
            param=what,
        )
    parts = split(backend, text, size)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def summarise(index: int, part: str) -> str:
        messages = [
            {"role": "system", "content": instructions(what, index, len(parts), words)},
            {"role": "user", "content": part},
        ]
        async with limit:
            return (await backend.complete(messages, max_tokens=answer, temperature=0.3)).strip()

    return list(await asyncio.gather(*(summarise(i, p) for i, p in enumerate(parts, 1))))


def split(backend: Chat, text: str, size: int) -> list[str]:
    """`text` in pieces of at most `size` tokens, in order, cut at the largest break that
    allows it: paragraphs, then sentences, then words, then characters."""
    return [piece for piece in _split(backend, text.strip(), size, 0) if piece]


def _split(backend: Chat, text: str, size: int, level: int) -> list[str]:
    if backend.count_tokens(text) <= size:
        return [text]
    if level == len(_BREAKS):
        # No break left (one enormous word): halve by characters.
        middle = len(text) // 2
        return [
            *_split(backend, text[:middle], size, level),
            *_split(backend, text[middle:], size, level),
        ]
    separator = "\n\n" if level == 0 else " "
    pieces: list[str] = []
    current, current_tokens = "", 0
    for part in _BREAKS[level].split(text):
        # Counted piece by piece (a join costs a token or so at most), not the whole chunk
        # again for every paragraph added to it.
        tokens = backend.count_tokens(part)
        if current and current_tokens + tokens + 2 <= size:
            current, current_tokens = f"{current}{separator}{part}", current_tokens + tokens + 2
            continue
        if current:
            pieces.append(current)
        if tokens <= size:
            current, current_tokens = part, tokens
        else:
            pieces.extend(_split(backend, part, size, level + 1))
            current, current_tokens = "", 0
    if current:
        pieces.append(current)
    return pieces
