"""Style and camera presets: a named addition to the prompt, and the composer settings that go
with it. Built-in ones live here; a creator's own are stored (`moviola.store.presets`) and
merged over them: one of a built-in's kind and name replaces it, a hidden one removes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import InvalidRequestError
from moviola.store import presets as stored

KINDS = {"style": "Style", "camera": "Camera"}
MAX_NAME = 40  # a chip's label
MAX_ADDITION = 300  # a phrase or two added to a prompt
MAX_NEGATIVE = 500
SPEEDS = ("quality", "balanced", "fast")
# The composer fields a preset may set, as the form names them. Anything else is refused.
PARAMS = ("negative_prompt", "steps", "guidance", "speed")


@dataclass(frozen=True)
class Preset:
    kind: str
    name: str
    addition: str
    params: Mapping[str, Any] = field(default_factory=dict)
    builtin: bool = False  # one of the presets below, as shipped
    edited: bool = False  # a built-in the creator changed

    def form_values(self) -> dict[str, str]:
        """As its form on the presets page shows it."""
        typed = {key: str(value) for key, value in self.params.items()}
        return {"kind": self.kind, "name": self.name, "addition": self.addition, **typed}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "addition": self.addition,
            "params": dict(self.params),
        }


def _builtin(kind: str, name: str, addition: str, **params: Any) -> Preset:
    return Preset(kind, name, addition, params, builtin=True)


BUILTIN: tuple[Preset, ...] = (
    _builtin("style", "Cinematic", "cinematic lighting, shallow depth of field, film grain"),
    _builtin(
        "style",
        "Anime",
        "anime style, cel shading, vivid colours, clean line art",
        negative_prompt="photorealistic, 3d render",
    ),
    _builtin(
        "style",
        "Film noir",
        "black-and-white film noir, hard shadows, high contrast",
        negative_prompt="colour, saturated",
    ),
    _builtin("style", "Claymation", "claymation, stop-motion, handmade clay figures"),
    _builtin("style", "Documentary", "handheld documentary footage, natural light, candid"),
    _builtin("camera", "Dolly in", "the camera slowly dollies in"),
    _builtin("camera", "Orbit", "the camera orbits around the subject"),
    _builtin("camera", "Drone", "aerial drone shot sweeping over the scene"),
    _builtin("camera", "Handheld", "handheld camera with a slight shake"),
    _builtin("camera", "Static", "locked-off static camera, no camera movement"),
)


def shown(sessions: sessionmaker[Session], owner: str | None) -> list[Preset]:
    """The presets the owner sees: the built-ins, each replaced by the owner's row of its kind
    and name or dropped when that row is hidden, then the owner's own, by kind."""
    rows = {(row.kind, row.name): row for row in stored.of_owner(sessions, owner)}
    found: list[Preset] = []
    for preset in BUILTIN:
        row = rows.pop((preset.kind, preset.name), None)
        if row is None:
            found.append(preset)
        elif not row.hidden:
            found.append(Preset(row.kind, row.name, row.prompt_addition, row.params, True, True))
    found += [
        Preset(row.kind, row.name, row.prompt_addition, row.params)
        for row in rows.values()
        if not row.hidden
    ]
    order = list(KINDS)
    return sorted(found, key=lambda p: order.index(p.kind) if p.kind in order else len(order))


def save(
    sessions: sessionmaker[Session],
    owner: str | None,
    *,
    kind: str,
    name: str,
    addition: str,
    params: Mapping[str, str],
    replaces: str = "",
) -> Preset:
    """Check and store a preset; `replaces` is the name it had (a rename removes the old)."""
    preset = checked(kind, name, addition, params)
    stored.save(sessions, owner, preset.kind, preset.name, preset.addition, dict(preset.params))
    if replaces and replaces != preset.name:
        remove(sessions, owner, kind=kind, name=replaces)
    return preset


def remove(sessions: sessionmaker[Session], owner: str | None, *, kind: str, name: str) -> None:
    """Remove the owner's preset: a built-in is hidden, their own deleted."""
    if kind not in KINDS:
        raise InvalidRequestError(f"kind must be one of {', '.join(KINDS)}", param="kind")
    if any(p.kind == kind and p.name == name for p in BUILTIN):
        stored.hide(sessions, owner, kind, name)
    elif not stored.remove(sessions, owner, kind, name):
        raise InvalidRequestError(f"there is no {kind} preset named {name!r}", param="name")


def checked(kind: str, name: str, addition: str, params: Mapping[str, str]) -> Preset:
    """A preset from what was typed, or an `InvalidRequestError` naming the field at fault.
    Empty parameters are left unset; an unknown one is refused, never ignored."""
    if kind not in KINDS:
        raise InvalidRequestError(f"kind must be one of {', '.join(KINDS)}", param="kind")
    name = " ".join(name.split())
    if not name:
        raise InvalidRequestError("give the preset a name", param="name")
    if len(name) > MAX_NAME:
        raise InvalidRequestError(
            f"the name is {len(name)} characters; at most {MAX_NAME}", param="name"
        )
    addition = addition.strip()
    if len(addition) > MAX_ADDITION:
        raise InvalidRequestError(
            f"the addition is {len(addition)} characters; at most {MAX_ADDITION}",
            param="addition",
        )
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise InvalidRequestError(
            f"a preset cannot set {', '.join(unknown)}; it sets only {', '.join(PARAMS)}",
            param=unknown[0],
        )
    found = {key: _param(key, value.strip()) for key, value in params.items() if value.strip()}
    if not addition and not found:
        raise InvalidRequestError(
            "a preset adds something to the prompt or sets a setting: give it an addition",
            param="addition",
        )
    return Preset(kind, name, addition, found)


def _param(key: str, value: str) -> Any:
    if key == "negative_prompt":
        if len(value) > MAX_NEGATIVE:
            raise InvalidRequestError(
                f"the negative prompt is {len(value)} characters; at most {MAX_NEGATIVE}",
                param=key,
            )
        return value
    if key == "speed":
        if value not in SPEEDS:
            raise InvalidRequestError(f"speed must be one of {', '.join(SPEEDS)}", param=key)
        return value
    if key == "steps":
        if not value.isdigit() or not 1 <= int(value) <= 500:
            raise InvalidRequestError("steps must be a whole number from 1 to 500", param=key)
        return int(value)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0 <= number <= 50):
        raise InvalidRequestError("guidance must be a number from 0 to 50", param=key)
    return number
