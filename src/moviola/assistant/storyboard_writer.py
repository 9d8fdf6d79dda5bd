"""A script, story or article → the shots of a storyboard, ready to render.

    board = await script_to_shots(chat, script, get_model("wan2.1-t2v-1.3b"), seconds=20)
    board.shots       # Shot(prompt, seconds, character, image_hint), in order
    board.characters  # the character ids the shots use: the storyboard's `characters`

Each shot is one generation of the model (1 s up to its longest single segment), so no shot
is stitched from segments that drift. Asked for a total length, the shots are as many as that
length needs and their seconds add up to it exactly. A character is one of the caller's, by
name; a shot that uses one names it verbatim in its prompt, as a storyboard request requires.
A script longer than the model's context is summarised in chunks first (`chunks.condense`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moviola.assistant import budget, chunks, structured
from moviola.assistant.schemas import HINT_CHARS, PROMPT_CHARS, storyboard
from moviola.assistant.structured import Chat
from moviola.assistant.styles import writing_brief
from moviola.engine.catalogue import ModelSpec
from moviola.engine.storyboard import MAX_SHOTS
from moviola.errors import InvalidRequestError
from moviola.jobs.characters import MAX_PER_VIDEO

SHOT_TOKENS = 32  # a shot's JSON around its two strings
MIN_SHOT_TOKENS = 96  # the least room a shot is given in the answer
MIN_PROMPT_CHARS = 40
MAX_ANSWER = 8192  # tokens: 24 shots of long prompts


@dataclass(frozen=True)
class CharacterChoice:
    """One of the caller's characters the shots may use."""

    id: str
    name: str


@dataclass(frozen=True)
class Shot:
    prompt: str
    seconds: int
    character: str | None = None  # a character id
    image_hint: str | None = None  # what a start image for the shot would show


@dataclass(frozen=True)
class Storyboard:
    shots: tuple[Shot, ...]
    characters: tuple[str, ...]  # the ids the shots use, in order of first use
    chunks: int  # summaries written first (0: the script fitted the context)


@dataclass(frozen=True)
class Limits:
    """How many shots, how long each, and the total."""

    max_seconds: int  # per shot: the model's longest single generation
    min_shots: int
    max_shots: int
    total: int | None  # the seconds the shots add up to; None: the script decides


def limits(spec: ModelSpec, seconds: float | None, max_total: float) -> Limits:
    """The shots a storyboard of `spec` may have, `seconds` long in all if given."""
    longest = max(1, math.floor(min(spec.max_seconds_per_segment, max_total)))
    if seconds is None:
        return Limits(longest, 1, MAX_SHOTS, None)
    total = round(seconds)
    if not 1 <= total <= max_total:
        raise InvalidRequestError(
            f"seconds must be 1–{max_total:g} (got {seconds:g})", param="seconds"
        )
    fewest = math.ceil(total / longest)
    if fewest > MAX_SHOTS:
        raise InvalidRequestError(
            f"a storyboard of {spec.id} is at most {MAX_SHOTS * longest} s: {MAX_SHOTS} shots "
            f"of up to {longest} s",
            param="seconds",
        )
    return Limits(longest, fewest, min(MAX_SHOTS, total), total)


def sized(shots: Limits, answer: int, ratio: float, max_chars: int) -> tuple[Limits, int, int]:
    """The shots' limits, the longest prompt and the longest image hint, such that the most
    shots, each as long as allowed, fit in an `answer` of that many tokens (`ratio`: the
    model's characters per token). A small context allows fewer shots, then shorter ones."""
    per_shot = answer // shots.max_shots
    if per_shot < MIN_SHOT_TOKENS:
        most = max(shots.min_shots, answer // MIN_SHOT_TOKENS)
        shots = dataclasses.replace(shots, max_shots=most)
        per_shot = answer // most
    text = per_shot - SHOT_TOKENS
    prompt_chars = min(max_chars, budget.chars_in(text - text // 4, ratio))
    if prompt_chars < MIN_PROMPT_CHARS:
        raise InvalidRequestError(
            f"the assistant's model reads too few tokens ({answer * 2}) to write "
            f"{shots.min_shots} shots: ask for a shorter storyboard",
            param="seconds",
        )
    return shots, prompt_chars, max(10, min(HINT_CHARS, budget.chars_in(text // 4, ratio)))


def instructions(
    spec: ModelSpec, shots: Limits, names: Sequence[str], max_chars: int, summarised: bool
) -> str:
    count = (
        f"{shots.min_shots}–{shots.max_shots} shots"
        if shots.min_shots != shots.max_shots
        else f"{shots.min_shots} shots"
    )
    length = f" adding up to {shots.total} seconds" if shots.total else ""
    lines = [
        "You turn a script, story or article into a storyboard for a video generation model: "
        f"{count}{length}, in story order, each 1–{shots.max_seconds} whole seconds. Each "
        "shot's prompt stands alone (the model sees one shot at a time): say again who and "
        "where, what happens in those seconds, and how the camera sees it.",
        writing_brief(spec),
        f"Each prompt is at most {max_chars} characters. image_hint: a short description of "
        "a still picture that could start the shot, or null.",
    ]
    if names:
        listed = ", ".join(names)
        lines.append(
            f"The creator's characters: {listed}. A shot showing one of them sets `character` "
            f"to that name and writes the name in its prompt; at most {MAX_PER_VIDEO} of them "
            "in the whole storyboard. Others: null."
        )
    else:
        lines.append("`character` is null in every shot.")
    if summarised:
        lines.append("The script was long: you are given summaries of its parts, in order.")
    lines.append(
        'Answer with a JSON object: {"shots": [{"prompt": "…", "seconds": 2, '
        '"character": null, "image_hint": null}, …]}.'
    )
    return "\n\n".join(lines)


async def script_to_shots(
    backend: Chat,
    script: str,
    spec: ModelSpec,
    *,
    characters: Sequence[CharacterChoice] = (),
    seconds: float | None = None,
    max_chars: int = PROMPT_CHARS,
    max_script_chars: int = 100_000,
    max_total_seconds: float = 120.0,
    seed: int | None = None,
) -> Storyboard:
    """The shots for `script` on `spec`; `max_chars` is the longest prompt the server takes,
    `max_script_chars` the longest script (longer: a 400 naming the limit)."""
    check_script(script, max_script_chars)
    max_chars = min(max_chars, PROMPT_CHARS)
    shots = limits(spec, seconds, max_total_seconds)
    by_name: dict[str, str] = {}
    for choice in characters:
        by_name.setdefault(choice.name, choice.id)
    names = tuple(by_name)

    # What the answer may take, then what is left for the script (or its summaries). On a
    # small context the instructions take much of it: the script then gets up to half of what
    # they leave (what it needs, if less), and the answer the rest.
    draft = instructions(spec, shots, names, max_chars, True)
    left = (
        backend.context_tokens
        - budget.used(backend, [{"role": "system", "content": draft}])
        - structured.REPAIR_TOKENS
        - budget.MESSAGE_TOKENS
    )
    needed = budget.used(backend, [{"role": "user", "content": script}])
    answer = min(MAX_ANSWER, backend.context_tokens // 2, left - min(needed, left // 2))
    ratio = budget.chars_per_token(backend, draft)
    shots, max_chars, hint_chars = sized(shots, answer, ratio, max_chars)
    system = instructions(spec, shots, names, max_chars, summarised=True)
    room = (
        backend.context_tokens
        - budget.used(backend, [{"role": "system", "content": system}])
        - answer
        - structured.REPAIR_TOKENS
        - budget.MESSAGE_TOKENS
    )
    if room < budget.LEAST_ANSWER:
        raise InvalidRequestError(
            f"the assistant's model ({backend.model}) reads only {backend.context_tokens} "
            "tokens: too few for a storyboard",
            param="script",
        )
    fitted = await chunks.condense(backend, script, room=room, what="script")
    messages = [
        {
            "role": "system",
            "content": instructions(spec, shots, names, max_chars, summarised=fitted.chunks > 0),
        },
        {"role": "user", "content": fitted.text},
    ]

    def check(board: Any) -> None:
        used = {shot.character for shot in board.shots} - {None}
        if len(used) > MAX_PER_VIDEO:
            raise structured.Invalid(
                f"the shots use {len(used)} characters ({', '.join(sorted(used))}); a "
                f"storyboard may use at most {MAX_PER_VIDEO}"
            )

    board = await structured.ask(
        backend,
        messages,
        storyboard(
            max_chars=max_chars,
            max_seconds=shots.max_seconds,
            min_shots=shots.min_shots,
            max_shots=shots.max_shots,
            characters=names,
            hint_chars=hint_chars,
        ),
        max_tokens=answer,
        seed=seed,
        check=check,
    )
    raw = board.model_dump()["shots"]
    lengths = [shot["seconds"] for shot in raw]
    if shots.total is not None:
        lengths = fit_seconds(lengths, shots.total, shots.max_seconds)
    made = tuple(
        Shot(
            prompt=_naming(shot["prompt"], shot["character"], max_chars),
            seconds=length,
            character=by_name[shot["character"]] if shot["character"] else None,
            image_hint=shot["image_hint"],
        )
        for shot, length in zip(raw, lengths, strict=True)
    )
    used = tuple(dict.fromkeys(shot.character for shot in made if shot.character))
    return Storyboard(shots=made, characters=used, chunks=fitted.chunks)


def check_script(script: str, max_chars: int) -> None:
    """A 400 for an empty script or one over `max_chars` characters (the limit named)."""
    if not script.strip():
        raise InvalidRequestError("script is empty", param="script")
    if len(script) > max_chars:
        raise InvalidRequestError(
            f"script is {len(script):,} characters; the limit is {max_chars:,}", param="script"
        )


def fit_seconds(lengths: Sequence[int], total: int, longest: int) -> list[int]:
    """Whole seconds in proportion to `lengths`, each 1–`longest`, adding up to `total`
    (which `len(lengths)` shots can always make: the schema saw to their number)."""
    count = len(lengths)
    weight = sum(lengths) or count
    exact = [length * total / weight for length in lengths]
    fitted = [min(longest, max(1, round(x))) for x in exact]
    # Hand out what is missing (or take back what is over) where rounding moved furthest.
    while sum(fitted) < total:
        grow = [i for i in range(count) if fitted[i] < longest]
        index = max(grow, key=lambda i: exact[i] - fitted[i])
        fitted[index] += 1
    while sum(fitted) > total:
        shrink = [i for i in range(count) if fitted[i] > 1]
        index = max(shrink, key=lambda i: fitted[i] - exact[i])
        fitted[index] -= 1
    return fitted


def _naming(prompt: str, character: str | None, max_chars: int) -> str:
    """The prompt, naming its character verbatim (a storyboard conditions a shot on the
    characters its prompt names); a model that forgot gets the name put first."""
    if character is None or character.casefold() in prompt.casefold():
        return prompt
    return f"{character}: {prompt}"[: max(max_chars, len(character) + 2)]
