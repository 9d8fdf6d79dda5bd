"""The shapes the assistant's model must answer in, as pydantic models.

Each model is both the JSON schema sent to the chat server (`response_format`, honoured by
constrained decoding on the local model) and the validation of the answer (remote servers may
ignore the schema). Limits that depend on the request — a model's longest shot, the caller's
characters, a prompt's length — are built into the model for each call, so the schema the
model is held to and the check of its answer are one definition.

Every property is required and objects take no other keys (optional values are `null`), which
is what OpenAI's strict structured outputs ask for. Strings carry a `maxLength` so that a
model writing noise (the test model) still closes every string and the answer ends.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

# The longest prompt the writers ask for: about 300 words, well past any family's guide.
PROMPT_CHARS = 2000
HINT_CHARS = 160  # a shot's start image hint: one short sentence
VARIANTS = 3

_SPACE = re.compile(r"[ \t]+")


def clean_text(value: Any) -> Any:
    """A model's text as Moviola stores it: control characters (a NUL, which PostgreSQL
    refuses) and lone surrogates dropped, runs of spaces collapsed, ends trimmed."""
    if not isinstance(value, str):
        return value
    kept = "".join(
        ch
        for ch in value
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn")
    )
    return _SPACE.sub(" ", kept).strip()


def text(max_chars: int, min_chars: int = 1) -> Any:
    """A string field of at most `max_chars` characters, cleaned before it is checked."""
    return Annotated[
        str,
        BeforeValidator(clean_text),
        Field(min_length=min_chars, max_length=max_chars),
    ]


def one_of(*values: str) -> Any:
    """The type of a field that takes exactly these values (a JSON schema `enum`/`const`)."""
    return Literal.__getitem__(values)


class Answer(BaseModel):
    """An object the model writes: its fields and nothing else."""

    model_config = ConfigDict(extra="forbid")


def response_format(answer: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI `response_format` that holds a model to `answer`'s schema."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": answer.__name__,
            "schema": answer.model_json_schema(),
            "strict": True,
        },
    }


# --- prompt writing ----------------------------------------------------------------------------


def written_prompt(max_chars: int) -> type[Answer]:
    """`{"prompt", "variants": [3]}`, each prompt at most `max_chars` characters."""
    prompt = text(max_chars)
    return create_model(
        "WrittenPrompt",
        __base__=Answer,
        prompt=(prompt, ...),
        variants=(list[prompt], Field(min_length=VARIANTS, max_length=VARIANTS)),  # type: ignore[valid-type]
    )


# --- storyboards -------------------------------------------------------------------------------


def storyboard(
    *,
    max_chars: int,
    max_seconds: int,
    min_shots: int,
    max_shots: int,
    characters: tuple[str, ...],
    hint_chars: int = HINT_CHARS,
) -> type[Answer]:
    """`{"shots": [{"prompt", "seconds", "character", "image_hint"}]}`: between `min_shots`
    and `max_shots` shots of 1–`max_seconds` whole seconds, each naming one of `characters`
    (names) or null."""
    return create_model(
        "Storyboard",
        __base__=Answer,
        shots=shot_list(
            shot(
                max_chars=max_chars,
                max_seconds=max_seconds,
                characters=characters,
                hint_chars=hint_chars,
            ),
            min_shots,
            max_shots,
        ),
    )


def shot(
    *, max_chars: int, max_seconds: int, characters: tuple[str, ...], hint_chars: int = HINT_CHARS
) -> type[Answer]:
    character: Any = one_of(*characters) | None if characters else None
    return create_model(
        "Shot",
        __base__=Answer,
        prompt=(text(max_chars), ...),
        seconds=(int, Field(ge=1, le=max_seconds)),
        character=(character, ...),
        image_hint=(text(hint_chars) | None, ...),
    )


def shot_list(item: type[Answer], least: int, most: int) -> tuple[Any, Any]:
    return (list[item], Field(min_length=least, max_length=most))  # type: ignore[valid-type]


# --- conversations -----------------------------------------------------------------------------

ActionType = Literal["fill_prompt", "add_shots", "remix"]


def proposal(
    offers: tuple[ActionType, ...],
    *,
    max_chars: int,
    max_seconds: int,
    max_shots: int,
    video_id: str | None,
    hint_chars: int = HINT_CHARS,
) -> type[Answer]:
    """`{"action": …}`: one of the actions the page offers, or `{"type": "none"}`."""
    prompt = text(max_chars)
    choices: list[Any] = [create_model("NoAction", __base__=Answer, type=(one_of("none"), ...))]
    if "fill_prompt" in offers:
        choices.append(
            create_model(
                "FillPrompt",
                __base__=Answer,
                type=(one_of("fill_prompt"), ...),
                prompt=(prompt, ...),
            )
        )
    if "add_shots" in offers:
        item = shot(
            max_chars=max_chars, max_seconds=max_seconds, characters=(), hint_chars=hint_chars
        )
        choices.append(
            create_model(
                "AddShots",
                __base__=Answer,
                type=(one_of("add_shots"), ...),
                shots=shot_list(item, 1, max_shots),
            )
        )
    if "remix" in offers and video_id is not None:
        choices.append(
            create_model(
                "Remix",
                __base__=Answer,
                type=(one_of("remix"), ...),
                video_id=(one_of(video_id), ...),
                prompt=(prompt, ...),
            )
        )
    union: Any = choices[0]
    for choice in choices[1:]:
        union = union | choice
    return create_model("Proposal", __base__=Answer, action=(union, ...))
