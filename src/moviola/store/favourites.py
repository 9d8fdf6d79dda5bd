"""Favourites: a creator's starred videos, kept as when each was starred on the video row.

Owner-checked as ratings are: another creator's video, or a deleted one, is not found, so a
favourite can neither reveal nor touch what is not the caller's.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import NotFoundError
from moviola.store import audit
from moviola.store.models import Video, now

MAX_AT_ONCE = 500  # videos starred by one request (the library's selection)


def set_favourite(
    sessions: sessionmaker[Session],
    owner: str | None,
    video_ids: list[str],
    on: bool,
    *,
    record: bool = True,
) -> list[str]:
    """Star (`on`) or unstar the owner's videos, in one transaction with their audit entries.

    Starring a starred video keeps when it was first starred. A single id that is not the
    owner's is not found; in a selection of several, those are passed over (deleted in another
    tab meanwhile, say) and the ids changed are returned."""
    ids = list(dict.fromkeys(video_ids))[:MAX_AT_ONCE]
    owned = Video.owner.is_(None) if owner is None else Video.owner == owner
    query = select(Video).where(Video.id.in_(ids), owned, Video.deleted_at.is_(None))
    with sessions.begin() as session:
        rows = list(session.execute(query.with_for_update()).scalars())
        if not rows and len(ids) == 1:
            raise NotFoundError(f"no video with id {ids[0]!r}", param="video_id")
        stamp = now()
        for row in rows:
            if on and row.favourited_at is None:
                row.favourited_at = stamp
            elif not on:
                row.favourited_at = None
            if record:
                detail = {"on": on}
                audit.add(session, actor=owner, action="favourite", video_id=row.id, detail=detail)
        return [row.id for row in rows]
