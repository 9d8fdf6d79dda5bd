"""The models a creator can pick: aliases and catalogue entries, installed ones first.

Only the catalogue's plain data is read here (no torch): whether a model is installed is
whether its weights are found where the server would load them from. That look is at the disk,
so the answer is kept for a few seconds (a page that lists models is asked for often).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from moviola.config import Settings
from moviola.engine.catalogue import ModelSpec, catalogue
from moviola.engine.loading import Weighted, find_weights
from moviola.jobs import installs

CAPABILITY_WORDS = {"t2v": "text", "i2v": "image", "v2v": "video"}


@dataclass(frozen=True)
class Choice:
    name: str  # what the creator picks, as the API names it
    spec: ModelSpec
    installed: bool
    alias_of: str | None = None

    @property
    def can(self) -> list[str]:
        return [CAPABILITY_WORDS.get(c.value, c.value) for c in self.spec.capabilities]

    @property
    def sizes(self) -> dict[str, str]:
        """One size per aspect preset: the model's own where it has one, else derived."""
        native = self.spec.native_sizes
        found: dict[str, str] = {}
        for width, height in native:
            aspect = "portrait" if height > width else "landscape" if width > height else "square"
            found.setdefault(aspect, f"{width}x{height}")
        width, height = native[0]
        long_side, short_side = max(width, height), min(width, height)
        multiple = self.spec.size_multiple
        side = int(math.sqrt(width * height)) // multiple * multiple or multiple
        found.setdefault("landscape", f"{long_side}x{short_side}")
        found.setdefault("portrait", f"{short_side}x{long_side}")
        found.setdefault("square", f"{side}x{side}")
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.spec.name,
            "installed": self.installed,
            "can": self.can,
            "sizes": self.sizes,
            "fps": self.spec.fps,
            "steps": self.spec.default_steps,
            "guidance": self.spec.default_guidance,
            "audio": self.spec.audio,
        }


@dataclass(frozen=True)
class SoundtrackChoice:
    """The model that makes soundtracks here, and whether it is installed."""

    name: str
    label: str
    installed: bool


def soundtrack(settings: Settings) -> SoundtrackChoice:
    from moviola.engine.soundtrack import get_soundtrack_model

    try:
        spec = get_soundtrack_model(settings.soundtrack_model)
    except Exception:  # an unknown id in the settings: no soundtracks here
        return SoundtrackChoice(settings.soundtrack_model, settings.soundtrack_model, False)
    return SoundtrackChoice(spec.id, spec.name, _installed(spec, settings))


def _installed(spec: Weighted, settings: Settings) -> bool:
    try:
        find_weights(spec, settings.models_path)
    except Exception:  # WeightsNotFoundError, or an unreadable models folder
        return False
    return True


_INSTALLED_TTL_S = 5.0
# models path → (found, until, the models folder's mtime then)
_installed_seen: dict[str, tuple[dict[str, bool], float, int]] = {}


def installed_models(settings: Settings) -> dict[str, bool]:
    """`{catalogue id: whether creators can pick it here}` (`moviola.jobs.installs`), looked
    up at most every few seconds, and again at once when the models folder changes (an
    install renames its folder into place; a removal takes it away)."""
    known = catalogue()
    where = str(settings.models_path)
    try:
        stamp = settings.models_path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    cached = _installed_seen.get(where)
    now = time.monotonic()
    if cached is not None and now < cached[1] and cached[2] == stamp:
        return cached[0]
    found = {spec.id: installs.is_installed(spec, settings) for spec in known.values()}
    _installed_seen[where] = (found, now + _INSTALLED_TTL_S, stamp)
    return found


def choices(settings: Settings) -> list[Choice]:
    """Aliases (as clients name models) then catalogue ids, installed first within each."""
    known = catalogue()
    installed = installed_models(settings)
    aliases = [
        Choice(alias, known[target], installed[target], alias_of=target)
        for alias, target in sorted(settings.model_aliases.items())
        if target in known
    ]
    entries = [Choice(spec.id, spec, installed[spec.id]) for spec in known.values()]
    ordered = sorted(aliases, key=lambda c: not c.installed) + sorted(
        entries, key=lambda c: not c.installed
    )
    return ordered
