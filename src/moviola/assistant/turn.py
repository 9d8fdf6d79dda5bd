"""One turn of a conversation: the history fitted to the context, the reply streamed, an
action proposed.

The model reads a system message (what Moviola is, the page's context: `context.py`), the
conversation's summary, then its recent messages, newest last. History that no longer fits is
not cut: the oldest messages are folded into the summary (`Projects.set_summary`), leaving the
recent ones verbatim, and what is folded stays folded, so a long conversation is summarised a
little at a time rather than on every turn.

The reply streams as plain text. Then, where the page offers actions (fill the prompt, add
shots, remix), one short call held to a JSON schema (`schemas.proposal`) reads the reply and
says which action it offered, if any; that is stored on the reply as `proposed`, and only the
client performs it, after the creator confirms. A separate call rather than JSON in the reply
keeps the streamed text readable as it arrives, and the schema makes the action's shape
certain even on a small local model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from moviola.assistant import budget, chunks, structured
from moviola.assistant.context import Facts
from moviola.assistant.projects import ConversationView, MessageView
from moviola.assistant.schemas import HINT_CHARS, PROMPT_CHARS, proposal
from moviola.assistant.storyboard_writer import Limits, sized
from moviola.assistant.structured import Chat
from moviola.engine.storyboard import MAX_SHOTS
from moviola.errors import MoviolaError

log = logging.getLogger("moviola.assistant")

REPLY_TOKENS = 1024  # the longest reply, where the context allows (a quarter of it)
ANSWER_TOKENS = 4096  # the most a proposal may take: a storyboard's worth of shots


def reply_tokens(backend: Chat) -> int:
    return max(budget.LEAST_ANSWER, min(REPLY_TOKENS, backend.context_tokens // 4))


def summary_message(summary: str) -> dict[str, str]:
    return {"role": "system", "content": f"The conversation so far, summarised:\n{summary}"}


@dataclass(frozen=True)
class History:
    messages: list[dict[str, Any]]  # the summary (if any), then the recent messages
    folded: int  # messages folded into the summary on this turn


async def fit_history(
    backend: Chat,
    conversation: ConversationView,
    room: int,
    save_summary: Callable[[str, int], Awaitable[None]],
) -> History:
    """The conversation's summary and messages within `room` tokens; older messages folded
    into a new summary (saved with `save_summary(summary, through_seq)`) when they do not fit."""
    recent = [{"role": m.role, "content": m.content} for m in conversation.messages]
    summary = [summary_message(conversation.summary)] if conversation.summary else []
    if budget.used(backend, summary + recent) <= room:
        return History(summary + recent, 0)
    # Keep the newest messages in half the room (the one just written at least), and fold
    # the rest: the next turns then have room before anything needs folding again.
    keep = len(recent) - 1
    kept = budget.used(backend, recent[keep:])
    while keep > 0:
        more = budget.used(backend, recent[keep - 1 : keep])
        if kept + more > room // 2:
            break
        keep, kept = keep - 1, kept + more
    folded = conversation.messages[:keep]
    if not folded:
        return History(summary + recent, 0)
    words = max(40, min(chunks.summary_tokens(backend), room // 4) * 2 // 3)
    new_summary = await summarise(backend, conversation.summary, folded, words)
    await save_summary(new_summary, folded[-1].seq)
    return History([summary_message(new_summary), *recent[keep:]], len(folded))


async def summarise(
    backend: Chat, summary: str, messages: tuple[MessageView, ...], words: int
) -> str:
    """The summary so far and `messages`, rolled into one summary of about `words` words."""
    transcript = "\n\n".join(f"{m.role}: {m.content}" for m in messages)
    if summary:
        transcript = f"Summary of what came before:\n{summary}\n\n{transcript}"
    system = (
        "Summarise this conversation between a creator and Moviola's video assistant so that "
        "it can go on without the full history: what they are making, what was decided, "
        "prompts worth keeping word for word, open questions. Plain prose, at most "
        f"{words} words."
    )
    answer = words * 2
    room = (
        backend.context_tokens
        - budget.used(backend, [{"role": "system", "content": system}])
        - answer
        - budget.MESSAGE_TOKENS
    )
    fitted = await chunks.condense(backend, transcript, room=room, what="conversation")
    asked = [{"role": "system", "content": system}, {"role": "user", "content": fitted.text}]
    text = await backend.complete(asked, max_tokens=answer, temperature=0.3)
    return text.strip() or summary


async def propose(
    backend: Chat, facts: Facts, request: str, reply: str, *, max_chars: int
) -> dict[str, Any] | None:
    """The action the reply offered, if the page offers any: `{"type", …}` or None."""
    offers = facts.offers
    if not offers or not reply.strip():
        return None
    system = (
        "Moviola's assistant just replied to the creator. Say which action the reply offers "
        "to do, with the content it offers (the prompt or shots written out in full), or "
        '{"type": "none"} if it offers none. Actions: '
        + "; ".join(_ACTIONS[offer] for offer in offers)
        + "."
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": f"The creator wrote:\n{request}\n\nThe reply:\n{reply}"},
    ]
    room = budget.answer_tokens(backend, messages, ANSWER_TOKENS, param="content")
    ratio = budget.chars_per_token(backend, system)
    shots = Limits(facts.shot_seconds, 1, MAX_SHOTS, None)
    hint_chars = HINT_CHARS
    if "add_shots" in offers:
        shots, max_chars, hint_chars = sized(shots, room, ratio, max_chars)
    max_chars = max(16, min(max_chars, PROMPT_CHARS, budget.chars_in(room - 64, ratio)))
    answer = proposal(
        offers,
        max_chars=max_chars,
        max_seconds=shots.max_seconds,
        max_shots=shots.max_shots,
        hint_chars=hint_chars,
        video_id=facts.video.id if facts.video is not None else None,
    )
    decided = await structured.ask(backend, messages, answer, max_tokens=room, temperature=0.2)
    action = decided.model_dump()["action"]
    if action["type"] == "none":
        return None
    if action["type"] == "add_shots":
        action["shots"] = [
            {"prompt": shot["prompt"], "seconds": shot["seconds"], "image_hint": shot["image_hint"]}
            for shot in action["shots"]
        ]
    return dict(action)


_ACTIONS = {
    "fill_prompt": 'fill_prompt {"prompt"}: put a prompt into the prompt field',
    "add_shots": 'add_shots {"shots": [{"prompt", "seconds", …}]}: add shots to the storyboard',
    "remix": 'remix {"video_id", "prompt"}: remix the video on the page with a new prompt',
}


async def propose_or_none(
    backend: Chat, facts: Facts, request: str, reply: str, *, max_chars: int
) -> dict[str, Any] | None:
    """`propose`, where a failure costs only the proposal: the reply the creator asked for is
    complete, and is kept without an action."""
    try:
        return await propose(backend, facts, request, reply, max_chars=max_chars)
    except MoviolaError as err:
        log.warning("no action proposed: %s", err)
        return None
