"""Moviola's own request fields (a Sora client never sends them): one registry for every front end.

Each field says its name (on the wire, in `extra_body`, in a stored row's `params`), its type,
which requests take it and which `GenerationRequest` field it sets. The API's request models,
the Studio's forms, the stored row and the request a worker renders are all read from this
table, so a new option is added here, in the engine and in the Studio's form — nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moviola.errors import InvalidRequestError
from moviola.store.models import VideoKind

EVERY_KIND = frozenset(VideoKind) - {VideoKind.IMPORT}


@dataclass(frozen=True)
class ExtraField:
    name: str  # on the wire and in the row's params
    type: type[int] | type[float] | type[str]
    request: str  # the GenerationRequest field it sets
    help: str
    kinds: frozenset[VideoKind] = EVERY_KIND
    studio: str | None = None  # the Studio form's name for it, where shorter
    # The values a text field takes, for every kind; `more` adds some for one kind.
    choices: tuple[str, ...] = ()
    more: Mapping[VideoKind, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    inherit: bool = True  # a remix takes the source's value over (unless it gives its own)

    def choices_for(self, kind: VideoKind) -> tuple[str, ...]:
        return (*self.choices, *self.more.get(kind, ()))

    def parse(self, value: object, kind: VideoKind | None = None) -> int | float | str:
        """The value as stored, from JSON (numbers) or a form (text); a clear 400 otherwise.
        A field with choices takes one of those the `kind` of request takes."""
        parsed = self._typed(value)
        if self.choices:
            allowed = self.choices_for(kind) if kind is not None else self.choices
            if parsed not in allowed:
                raise InvalidRequestError(
                    f"{self.name} must be one of {', '.join(allowed)} (got {parsed!r})",
                    param=self.name,
                )
        return parsed

    def _typed(self, value: object) -> int | float | str:
        try:
            if self.type is int:
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                return int(str(value))
            if self.type is float:
                number = float(str(value))
                if number != number or number in (float("inf"), float("-inf")):
                    raise ValueError
                return number
            if not isinstance(value, str):
                raise TypeError
            return value
        except (TypeError, ValueError):
            what = {int: "an integer", float: "a number"}.get(self.type, "text")
            raise InvalidRequestError(f"{self.name} must be {what}", param=self.name) from None


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "seed",
        int,
        "seed",
        "Same seed and request, same video.",
        kinds=EVERY_KIND - {VideoKind.REMIX},  # a remix draws a seed of its own
    ),
    ExtraField("negative_prompt", str, "negative_prompt", "What the video should not show."),
    ExtraField("num_inference_steps", int, "steps", "Denoising steps.", studio="steps"),
    ExtraField("guidance_scale", float, "guidance", "Guidance scale.", studio="guidance"),
    ExtraField("fps", int, "fps", "Frames per second (default: the model's)."),
    ExtraField(
        "strength",
        float,
        "strength",
        "0–1: how far the result may move from the source (default 0.6).",
        kinds=frozenset({VideoKind.REMIX}),
    ),
    ExtraField(
        "audio",
        str,
        "audio",
        "Sound: auto (the model's own where it makes sound, else the source's), none, "
        "soundtrack (made from the prompt by a text-to-audio model); on an edit also add "
        "(keep the picture as it is and make only its sound).",
        choices=("auto", "none", "soundtrack"),
        more={VideoKind.EDIT: ("add",)},
        # A remix keeps its source's sound by default, whatever made it.
        inherit=False,
    ),
    ExtraField(
        "speed",
        str,
        "speed",
        "quality (every step), balanced (a step cache skips steps that barely change the "
        "result), fast (a step-distilled LoRA: a few steps, no guidance).",
        choices=("quality", "balanced", "fast"),
    ),
)
BY_NAME = {field.name: field for field in EXTRA_FIELDS}
# Errors name fields as the engine does; the wire's name where they differ.
WIRE_NAMES = {f.request: f.name for f in EXTRA_FIELDS if f.request != f.name}


def fields_for(kind: VideoKind) -> tuple[ExtraField, ...]:
    return tuple(field for field in EXTRA_FIELDS if kind in field.kinds)


def parse_extras(values: Mapping[str, object], kind: VideoKind) -> dict[str, int | float | str]:
    """The extra fields of a `kind` request, checked and typed; blank or null means not given."""
    params: dict[str, int | float | str] = {}
    for field in fields_for(kind):
        value = values.get(field.name)
        if value is None or value == "":
            continue
        params[field.name] = field.parse(value, kind)
    return params


def request_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `GenerationRequest` fields a row's params set."""
    return {f.request: params[f.name] for f in EXTRA_FIELDS if params.get(f.name) is not None}
