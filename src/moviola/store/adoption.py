"""The keyless library, and a key adopting it.

Before any API key exists, everything is made by the keyless local user: rows whose `owner` is
NULL. Once a key exists every request needs one, so those rows would be out of everyone's
reach; the first key created takes them over instead (its creator says so: the Studio asks,
`moviola keys create` does by default). Every table with an `owner` column is found in the
models' metadata, so a table added later moves with the rest without being listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import CursorResult, Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.store.models import ApiKey, Base


def owned_tables() -> list[Table]:
    """Every table whose rows belong to a key (or to no key)."""
    return [table for table in Base.metadata.sorted_tables if "owner" in table.c]


def keyless(session: Session) -> dict[str, int]:
    """How many rows of each owned table belong to no key, counting only what is shown (a
    deleted row is not); tables with none are left out."""
    counts = {}
    for table in owned_tables():
        query = select(func.count()).select_from(table).where(table.c.owner.is_(None))
        if "deleted_at" in table.c:
            query = query.where(table.c.deleted_at.is_(None))
        found = session.execute(query).scalar_one()
        if found:
            counts[table.name] = found
    return counts


def keyless_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return keyless(session)


def is_first(session: Session, key_id: str) -> bool:
    """Whether `key_id` is the only live key: until it was made, keyless use was allowed."""
    other = session.execute(
        select(ApiKey.id).where(ApiKey.revoked_at.is_(None), ApiKey.id != key_id).limit(1)
    ).first()
    return other is None


def adopt_library(session: Session, key_id: str) -> dict[str, int]:
    """Give every keyless row, deleted ones too (the trash moves with the library), to
    `key_id`, in the caller's transaction; how many of each table moved."""
    moved = {}
    for table in owned_tables():
        done = session.execute(update(table).where(table.c.owner.is_(None)).values(owner=key_id))
        count = cast(CursorResult, done).rowcount
        if count:
            moved[table.name] = count
    return moved


def on_create(adopt: bool | None, moved: dict[str, int]) -> Callable[[Session, ApiKey], None]:
    """What a new key does in its transaction (`keys.create_key`'s `before_commit`): adopt
    the keyless library if `adopt` is True, or, when it is None, if the key is the first live
    one. What moved is put in `moved`."""

    def take_over(session: Session, key: ApiKey) -> None:
        if adopt or (adopt is None and is_first(session, key.id)):
            moved.update(adopt_library(session, key.id))

    return take_over


def adopt_into(sessions: sessionmaker[Session], key_id: str) -> dict[str, int]:
    """Give the keyless library to the existing key `key_id` (one transaction)."""
    with sessions.begin() as session:
        return adopt_library(session, key_id)


def describe(counts: dict[str, int]) -> str:
    """`{"characters": 1, "videos": 3}` as "3 videos and 1 character" (videos first)."""
    parts = [
        f"{n} {(name if n != 1 else name.removesuffix('s')).replace('_', ' ')}"
        for name, n in sorted(counts.items(), key=lambda item: (item[0] != "videos", item[0]))
    ]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else "nothing"
