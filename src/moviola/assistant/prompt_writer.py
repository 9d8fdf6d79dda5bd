"""An idea → a detailed prompt in the chosen model's style, with three variants.

    written = await write_prompt(chat, "a corgi surfing", get_model("wan2.2-ti2v-5b"))
    written.prompt, written.variants  # one prompt, and three others to choose from

What the creator liked before ("prompts I liked": the prompts of their thumbs-up videos) is
shown to the model as their taste, not as subjects to copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from moviola.assistant import budget, structured
from moviola.assistant.schemas import PROMPT_CHARS, VARIANTS, written_prompt
from moviola.assistant.structured import Chat
from moviola.assistant.styles import writing_brief
from moviola.engine.catalogue import ModelSpec
from moviola.errors import InvalidRequestError

LIKED_SHOWN = 5  # liked prompts shown as examples of taste
LIKED_CHARS = 400  # each cut to this
ANSWER_TOKENS = 8192  # the most an answer may take: four long prompts
MIN_CHARS = 80  # a prompt shorter than this is not worth writing


@dataclass(frozen=True)
class WrittenPrompt:
    prompt: str
    variants: tuple[str, ...]


def instructions(spec: ModelSpec, max_chars: int, liked: Sequence[str] = ()) -> str:
    lines = [
        "You write prompts for a video generation model. Turn the creator's idea into one "
        "detailed prompt, keeping everything the idea asks for and inventing only what it "
        f"leaves open; then write {VARIANTS} variants, each a complete prompt of its own that "
        "takes the idea a different way (another camera, light, mood or style).",
        writing_brief(spec),
        f"Each prompt is at most {max_chars} characters.",
    ]
    if liked:
        shown = "\n".join(f"- {prompt[:LIKED_CHARS]}" for prompt in liked[:LIKED_SHOWN])
        lines.append(
            "Prompts of videos this creator liked (their taste in camera, light and style; "
            f"not subjects to copy):\n{shown}"
        )
    lines.append('Answer with a JSON object: {"prompt": "…", "variants": ["…", "…", "…"]}.')
    return "\n\n".join(lines)


async def write_prompt(
    backend: Chat,
    idea: str,
    spec: ModelSpec,
    *,
    liked_prompts: Sequence[str] = (),
    max_chars: int = PROMPT_CHARS,
    seed: int | None = None,
) -> WrittenPrompt:
    """The idea written as a prompt for `spec`, and three variants; each at most `max_chars`
    characters (the server's prompt limit, where it is lower than the writer's own)."""
    messages = _messages(spec, idea, min(max_chars, PROMPT_CHARS), liked_prompts)
    # The four prompts must fit the answer's room even in a small context: where they might
    # not, each may be shorter (a schema's maxLength the model is held to).
    room = budget.answer_tokens(backend, messages, ANSWER_TOKENS, param="prompt")
    ratio = budget.chars_per_token(backend, messages[0]["content"])
    fits = budget.chars_in(room // (VARIANTS + 1) - 16, ratio)
    if fits < min(max_chars, PROMPT_CHARS):
        if fits < MIN_CHARS:
            raise InvalidRequestError(
                f"prompt is too long for the assistant's model ({backend.model} reads "
                f"{backend.context_tokens} tokens in all); shorten it",
                param="prompt",
            )
        max_chars = fits
        messages = _messages(spec, idea, max_chars, liked_prompts)
    max_chars = min(max_chars, PROMPT_CHARS)
    answer = await structured.ask(
        backend, messages, written_prompt(max_chars), max_tokens=room, seed=seed
    )
    data = answer.model_dump()
    return WrittenPrompt(prompt=data["prompt"], variants=tuple(data["variants"]))


def _messages(
    spec: ModelSpec, idea: str, max_chars: int, liked: Sequence[str]
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": instructions(spec, max_chars, liked)},
        {"role": "user", "content": idea},
    ]
