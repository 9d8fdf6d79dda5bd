"""Moviola's own request fields (a Sora client never sends them): one registry for every front end.

Each field says its name (on the wire, in `extra_body`, in a stored row's `params`), its type,
which requests take it and which `GenerationRequest` field it sets. The API's request models,
the Studio's forms, the stored row and the request a worker renders are all read from this
table, so a new option is added here, in the engine and in the Studio's form — nowhere else.
"""

from __future__ import annotations

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

    def parse(self, value: object) -> int | float | str:
        """The value as stored, from JSON (numbers) or a form (text); a clear 400 otherwise."""
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
        params[field.name] = field.parse(value)
    return params


def request_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `GenerationRequest` fields a row's params set."""
    return {f.request: params[f.name] for f in EXTRA_FIELDS if params.get(f.name) is not None}
