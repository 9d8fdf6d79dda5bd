"""Re-linking imported remixes and edits to their parents, once every video is in.

A video arrives knowing its parent by the id it had where it came from; here the parent may
have another id, and may arrive later. Links are only ever made, never changed, and never one
that points a video at itself or closes a loop (a parent that descends from its own child):
lineage is a tree that the Studio and the API walk, and a loop would have them walk forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from moviola.store.models import Video

# Row column → the origin field holding the parent's id where the video came from.
LINKS = (("remixed_from_video_id", "remixed_from"), ("source_video_id", "source_video"))
_BATCH = 500


@dataclass
class Lineage:
    linked: int = 0  # videos pointed at their parents
    missing: int = 0  # links whose parent is not in the library (yet)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (video id, why)


def link(sessions: sessionmaker[Session], mine: Any) -> Lineage:
    """Link every imported video of the library (`mine`: whose) whose parent is now here."""
    done = Lineage()
    with sessions() as session:
        waiting = list(session.execute(select(Video).where(mine, _unresolved())).scalars())
    if not waiting:
        return done
    wanted = {
        str((row.origin or {})[key]) for row in waiting for _, key in LINKS if _wants(row, key)
    }
    by_original = _parents(sessions, mine, wanted)
    for row in waiting:
        updates = {}
        for column, key in LINKS:
            if not _wants(row, key) or getattr(row, column) is not None:
                continue
            target = by_original.get(str((row.origin or {})[key]))
            if target is None:
                done.missing += 1
                continue
            why = _loop(sessions, row.id, target)
            if why is not None:
                done.refused.append((row.id, f"{column} → {target}: {why}"))
                continue
            updates[column] = target
        if updates:
            with sessions.begin() as session:
                current = session.get(Video, row.id)
                for column, value in updates.items():
                    setattr(current, column, value)
            done.linked += 1
    return done


def _unresolved() -> Any:
    return and_(
        Video.kind == "import",
        Video.deleted_at.is_(None),
        or_(
            *(
                and_(
                    getattr(Video, column).is_(None),
                    Video.origin[key].as_string().is_not(None),
                )
                for column, key in LINKS
            )
        ),
    )


def _wants(row: Video, key: str) -> bool:
    return bool((row.origin or {}).get(key))


def _parents(sessions: sessionmaker[Session], mine: Any, wanted: set[str]) -> dict[str, str]:
    """Original id (or id here) → id here, of the live videos that are wanted as parents."""
    found: dict[str, str] = {}
    by_original: dict[str, str] = {}
    with sessions() as session:
        for batch in _batches(sorted(wanted)):
            rows = session.execute(
                select(Video.id, Video.origin["original_id"].as_string()).where(
                    mine,
                    Video.deleted_at.is_(None),
                    or_(Video.id.in_(batch), Video.origin["original_id"].as_string().in_(batch)),
                )
            )
            for video_id, original in rows:
                found.setdefault(video_id, video_id)
                if original:
                    by_original[original] = video_id
    # A video's id where it came from names it before an id that merely looks the same here.
    return {**found, **by_original}


def _loop(sessions: sessionmaker[Session], child: str, parent: str) -> str | None:
    """Why `child` may not be linked to `parent`, or None."""
    if parent == child:
        return "a video cannot be its own parent"
    seen: set[str] = set()
    todo = [parent]
    with sessions() as session:
        while todo:
            current = todo.pop()
            if current == child:
                return "the parent descends from this video (a loop)"
            if current in seen:
                continue
            seen.add(current)
            row = session.get(Video, current)
            if row is not None:
                todo.extend(p for column, _ in LINKS if (p := getattr(row, column)))
    return None


def _batches(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
