"""What the composer shows beside its form: each model's limits (the aspect and duration
chips), the example prompts, the creator's recent prompts and their presets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.engine.catalogue import Capability
from moviola.jobs.service import DEFAULT_SECONDS, Caller
from moviola.store.models import Video
from moviola.studio import presets
from moviola.studio.examples import EXAMPLES
from moviola.studio.models import Choice

DURATIONS = (1, 2, 4, 8)  # the duration chips, in seconds, each shown where the model allows it
RECENT = 6  # recent prompts offered
_RECENT_SCAN = 60  # the newest videos looked through for them


def limits(choice: Choice, settings: Settings) -> dict[str, Any]:
    """The model's own sizes by aspect (an aspect it was not trained at has no chip), its
    longest video, and the size and duration it starts at."""
    spec = choice.spec
    aspects: dict[str, str] = {}
    for width, height in spec.native_sizes:
        aspect = "portrait" if height > width else "landscape" if width > height else "square"
        aspects.setdefault(aspect, f"{width}x{height}")
    # A model continues a video past one generation from its last frame (image-to-video, or a
    # model it chains to); one that cannot, or that makes a video between two given frames,
    # makes one generation at most.
    continues = (spec.supports(Capability.IMAGE) or spec.chain_model) and not spec.last_frame
    longest = settings.max_seconds if continues else spec.max_seconds_per_segment
    width, height = spec.native_sizes[0]
    return {
        "aspects": aspects,
        "default_size": f"{width}x{height}",
        "min_seconds": round(1 / spec.fps, 3),
        "max_seconds": round(longest, 3),
        "default_seconds": min(float(DEFAULT_SECONDS), round(longest, 3)),
        "durations": [d for d in DURATIONS if d <= longest + 1e-9],
    }


def recent_prompts(
    sessions: sessionmaker[Session], caller: Caller, limit: int = RECENT
) -> list[str]:
    """The caller's last `limit` distinct prompts, newest first."""
    owner = Video.owner.is_(None) if caller.owner is None else Video.owner == caller.owner
    query = (
        select(Video.prompt)
        .where(owner, Video.deleted_at.is_(None), Video.prompt.is_not(None))
        .order_by(Video.seq.desc())
        .limit(_RECENT_SCAN)
    )
    with sessions() as session:
        found: list[str] = []
        for (prompt,) in session.execute(query):
            text = (prompt or "").strip()
            if text and text not in found:
                found.append(text)
            if len(found) == limit:
                break
    return found


def context(
    settings: Settings, sessions: sessionmaker[Session], caller: Caller, models: list[Choice]
) -> dict[str, Any]:
    """The composer's part of a page that shows it (Create, and the home page)."""
    shown = presets.shown(sessions, caller.owner)
    return {
        "model_data": [{**m.as_dict(), **limits(m, settings)} for m in models],
        "examples": EXAMPLES,
        "recent_prompts": recent_prompts(sessions, caller),
        "presets": shown,
        "preset_data": [preset.as_dict() for preset in shown],
        "durations": DURATIONS,
    }
