"""A creator's stored style and camera presets: rows keyed by owner, kind and name.

The built-in presets live in code (`moviola.studio.presets`), which merges them with these: a
row of a built-in's kind and name shadows it for its owner, and a `hidden` row removes it.
Checking what a preset may hold is the caller's; here they are only kept.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import ConflictError
from moviola.store.models import Preset, new_id

MAX_PRESETS = 200  # per owner: a palette, not a table to fill


def of_owner(sessions: sessionmaker[Session], owner: str | None) -> list[Preset]:
    """The owner's rows, hidden ones included (the caller drops the built-ins they hide),
    in the order they were made."""
    with sessions() as session:
        query = select(Preset).where(_owned(owner)).order_by(Preset.created_at, Preset.id)
        return list(session.execute(query).scalars())


def save(
    sessions: sessionmaker[Session],
    owner: str | None,
    kind: str,
    name: str,
    prompt_addition: str,
    params: dict[str, Any],
) -> Preset:
    """Store the owner's preset `kind`/`name`, replacing one of that name (and showing it
    again if it was hidden)."""
    with sessions.begin() as session:
        row = _find(session, owner, kind, name)
        if row is None:
            count = len(session.execute(select(Preset.id).where(_owned(owner))).all())
            if count >= MAX_PRESETS:
                raise ConflictError(
                    f"you already have {count} presets; remove one first", param="name"
                )
            row = Preset(id=new_id("preset"), owner=owner, kind=kind, name=name)
            session.add(row)
        row.prompt_addition = prompt_addition
        row.params = dict(params)
        row.hidden = False
        row.updated_at = time.time()
    return row


def hide(sessions: sessionmaker[Session], owner: str | None, kind: str, name: str) -> None:
    """Remember that the owner removed the built-in preset `kind`/`name`."""
    with sessions.begin() as session:
        row = _find(session, owner, kind, name)
        if row is None:
            row = Preset(id=new_id("preset"), owner=owner, kind=kind, name=name)
            session.add(row)
        row.prompt_addition = ""
        row.params = {}
        row.hidden = True
        row.updated_at = time.time()


def remove(sessions: sessionmaker[Session], owner: str | None, kind: str, name: str) -> bool:
    """Delete the owner's row `kind`/`name`; False when there was none."""
    with sessions.begin() as session:
        done = session.execute(
            delete(Preset)
            .where(_owned(owner), Preset.kind == kind, Preset.name == name)
            .returning(Preset.id)
        ).first()
    return done is not None


def _find(session: Session, owner: str | None, kind: str, name: str) -> Preset | None:
    query = select(Preset).where(_owned(owner), Preset.kind == kind, Preset.name == name)
    return session.execute(query).scalar_one_or_none()


def _owned(owner: str | None) -> ColumnElement[bool]:
    return Preset.owner.is_(None) if owner is None else Preset.owner == owner
