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

from moviola.engine.loras import MAX_LORAS
from moviola.errors import InvalidRequestError
from moviola.store.models import VideoKind

EVERY_KIND = frozenset(VideoKind) - {VideoKind.IMPORT}
MAX_VARIATIONS = 4  # `n`: the most videos one create makes
Value = int | float | str | list[dict[str, Any]]


@dataclass(frozen=True)
class ObjectList:
    """The type of a field that takes a list of small objects (`loras: [{"name", "scale"}]`):
    each item's keys and their types, the key that names an item (unique within the list), and
    the values of keys left out."""

    keys: Mapping[str, type[float] | type[str]]
    key: str
    defaults: Mapping[str, float | str]
    max_items: int
    schema: str  # the item's name in the OpenAPI schema

    def parse(self, field: str, value: object) -> list[dict[str, Any]]:
        if isinstance(value, dict) and all(str(k).isdigit() for k in value):
            value = [value[k] for k in sorted(value, key=int)]  # a form's `field[0][name]`
        if not isinstance(value, list):
            raise InvalidRequestError(
                f"{field} must be a list of objects with {', '.join(self.keys)}", param=field
            )
        if len(value) > self.max_items:
            raise InvalidRequestError(
                f"{field} takes at most {self.max_items} items (got {len(value)})", param=field
            )
        items: list[dict[str, Any]] = []
        for index, item in enumerate(value):
            where = f"{field}[{index}]"
            if not isinstance(item, dict):
                raise InvalidRequestError(
                    f"{where} must be an object with {', '.join(self.keys)}", param=field
                )
            unknown = sorted(set(map(str, item)) - set(self.keys))
            if unknown:
                raise InvalidRequestError(
                    f"{where} has no field {unknown[0]!r}; it takes {', '.join(self.keys)}",
                    param=field,
                )
            parsed: dict[str, Any] = {}
            for key, kind in self.keys.items():
                given = item.get(key)
                if given is None or given == "":
                    if key not in self.defaults:
                        raise InvalidRequestError(f"{where}.{key} is required", param=field)
                    parsed[key] = self.defaults[key]
                else:
                    parsed[key] = _typed(f"{where}.{key}", kind, given, param=field)
            if any(parsed[self.key] == other[self.key] for other in items):
                raise InvalidRequestError(f"{field} names {parsed[self.key]!r} twice", param=field)
            items.append(parsed)
        return items


@dataclass(frozen=True)
class ExtraField:
    name: str  # on the wire and in the row's params
    type: type[bool] | type[int] | type[float] | type[str] | ObjectList
    request: str | None  # the GenerationRequest field it sets; None: the service acts on it
    help: str
    kinds: frozenset[VideoKind] = EVERY_KIND
    studio: str | None = None  # the Studio form's name for it, where shorter
    # The values a text field takes, for every kind; `more` adds some for one kind.
    choices: tuple[str, ...] = ()
    more: Mapping[VideoKind, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    inherit: bool = True  # a remix takes the source's value over (unless it gives its own)
    bounds: tuple[int, int] | None = None  # the least and the most a number may be
    refused: str = ""  # why the kinds of request it leaves out do not take it

    def choices_for(self, kind: VideoKind) -> tuple[str, ...]:
        return (*self.choices, *self.more.get(kind, ()))

    def parse(self, value: object, kind: VideoKind | None = None) -> Value:
        """The value as stored, from JSON (numbers) or a form (text); a clear 400 otherwise.
        A field with choices takes one of those the `kind` of request takes."""
        if isinstance(self.type, ObjectList):
            return self.type.parse(self.name, value)
        parsed = _typed(self.name, self.type, value)
        if self.bounds is not None and not isinstance(parsed, str):
            least, most = self.bounds
            if not least <= parsed <= most:
                raise InvalidRequestError(
                    f"{self.name} must be {least}–{most} (got {parsed})", param=self.name
                )
        if self.choices:
            allowed = self.choices_for(kind) if kind is not None else self.choices
            if parsed not in allowed:
                raise InvalidRequestError(
                    f"{self.name} must be one of {', '.join(allowed)} (got {parsed!r})",
                    param=self.name,
                )
        return parsed


_BOOLEANS = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}


def _typed(
    name: str,
    kind: type[bool] | type[int] | type[float] | type[str],
    value: object,
    param: str | None = None,
) -> int | float | str:
    try:
        if kind is bool:
            # JSON's true and false; a form's (and the SDK's multipart) text for them.
            if isinstance(value, bool):
                return value
            return _BOOLEANS[str(value).strip().lower()]
        if kind is int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return int(str(value))
        if kind is float:
            number = float(str(value))
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
            return number
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError, KeyError):
        what = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "text")
        raise InvalidRequestError(f"{name} must be {what}", param=param or name) from None


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "seed",
        int,
        "seed",
        "Same seed and request, same video.",
        kinds=EVERY_KIND - {VideoKind.REMIX},
        refused="a remix draws a seed of its own",
    ),
    ExtraField(
        "n",
        int,
        None,  # the service makes n jobs of one request
        f"Variations: 1–{MAX_VARIATIONS} videos of the same request, with seeds seed, "
        "seed+1 …, in one group (moviola.group_id); the response is the first, "
        "moviola.variations lists them all.",
        kinds=frozenset({VideoKind.CREATE}),
        inherit=False,
        bounds=(1, MAX_VARIATIONS),
    ),
    ExtraField(
        "enhance_prompt",
        bool,
        None,  # the API and the Studio act on it: the assistant writes the prompt first
        "The assistant writes a detailed prompt from this one (the idea) in the model's style "
        "before the video is made; the idea is kept (moviola.original_prompt) with the "
        "written prompt's variants (moviola.prompt_variants).",
        kinds=frozenset({VideoKind.CREATE}),
        inherit=False,
        refused="the prompt writer cannot see the source video, so it would invent a scene "
        "that fights it; write the change yourself, or ask the assistant in a conversation "
        "about the video",
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
    ExtraField(
        "loras",
        ObjectList(
            keys={"name": str, "scale": float},
            key="name",
            defaults={"scale": 1.0},
            max_items=MAX_LORAS,
            schema="LoraChoice",
        ),
        "loras",
        f"LoRAs from the server's library (`moviola loras list`), at most {MAX_LORAS}: "
        '[{"name": …, "scale": …}], scale -2 to 2 (default 1; 0 leaves the model as it is). '
        "Each must fit the model's family and size. A remix takes its source's unless it gives "
        "its own ([] for none).",
    ),
)
BY_NAME = {field.name: field for field in EXTRA_FIELDS}
# Errors name fields as the engine does; the wire's name where they differ.
WIRE_NAMES = {f.request: f.name for f in EXTRA_FIELDS if f.request and f.request != f.name}


def fields_for(kind: VideoKind) -> tuple[ExtraField, ...]:
    return tuple(field for field in EXTRA_FIELDS if kind in field.kinds)


def parse_extras(values: Mapping[str, object], kind: VideoKind) -> dict[str, Value]:
    """The extra fields of a `kind` request, checked and typed; blank or null means not given."""
    taken = fields_for(kind)
    for name, value in values.items():
        if value is not None and value != "" and name not in {f.name for f in taken}:
            ours = ", ".join(f.name for f in taken)
            raise unknown_field(name, f"Moviola's own fields of a {kind.value} are {ours}")
    params: dict[str, Value] = {}
    for field in taken:
        value = values.get(field.name)
        if value is None or value == "":
            continue
        params[field.name] = field.parse(value, kind)
    return params


def request_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `GenerationRequest` fields a row's params set."""
    return {
        f.request: params[f.name]
        for f in EXTRA_FIELDS
        if f.request is not None and params.get(f.name) is not None
    }


def unknown_field(name: str, takes: str) -> InvalidRequestError:
    """The refusal of a field a request does not take; `takes` says what it does take ("a
    remix takes prompt; …"). A field nobody would act on is never silently dropped."""
    if name in BY_NAME:
        why = f" ({BY_NAME[name].refused})" if BY_NAME[name].refused else ""
        message = f"{name} is not taken here{why}: {takes}"
    else:
        message = f"unknown field {name!r}: {takes}"
    return InvalidRequestError(message, param=name, code="unknown_parameter")
