"""Ratings on videos: a thumbs up or down and a note, stored on the video row.

The words the API and the Studio use and the numbers stored are one table here, so every
surface (the API, the library filter, export) spells a rating the same way.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import InvalidRequestError, NotFoundError
from moviola.store import audit
from moviola.store.models import Video, now

RatingWord = Literal["up", "down"]
RATINGS: dict[str, int] = {"up": 1, "down": -1}
MAX_NOTE_CHARS = 2000


def word(rating: int | None) -> RatingWord | None:
    """The stored number as the API shows it: "up", "down", or None (not rated)."""
    if rating is None:
        return None
    return "up" if rating > 0 else "down"


def value(rating: str | None) -> int | None:
    """ "up" / "down" / None as stored; anything else is the caller's mistake."""
    if rating is None:
        return None
    if rating not in RATINGS:
        raise InvalidRequestError("rating must be up, down or null", param="rating")
    return RATINGS[rating]


# The library's filter, by the words the Studio shows.
FILTERS: dict[str, int | None] = {"liked": 1, "disliked": -1, "unrated": None}


def filter_clause(choice: str) -> ColumnElement[bool]:
    """The videos a library filter (a key of `FILTERS`) keeps."""
    wanted = FILTERS[choice]
    return Video.rating.is_(None) if wanted is None else Video.rating == wanted


def owned(owner: str | None) -> ColumnElement[bool]:
    return Video.owner.is_(None) if owner is None else Video.owner == owner


def rate(
    sessions: sessionmaker[Session],
    owner: str | None,
    video_id: str,
    rating: int | None,
    note: str | None,
    *,
    record: bool = True,
) -> None:
    """Set (or with None and no note, clear) the owner's rating of a video, in one transaction
    with its audit entry."""
    if rating not in (1, -1, None):
        raise InvalidRequestError("rating must be 1, -1 or null", param="rating")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidRequestError(f"note is over {MAX_NOTE_CHARS} characters", param="note")
    with sessions.begin() as session:
        video = session.get(Video, video_id, with_for_update=True)
        if video is None or video.deleted_at is not None or video.owner != owner:
            raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
        video.rating = rating
        video.rating_note = note or None
        video.rated_at = None if rating is None and not note else now()
        if record:
            detail = {"rating": word(rating), "note": bool(note)}
            audit.add(session, actor=owner, action="rate", video_id=video_id, detail=detail)


def liked_prompts(sessions: sessionmaker[Session], owner: str | None, limit: int = 10) -> list[str]:
    """The prompts of the owner's thumbs-up videos, most recently rated first, each once."""
    query = (
        select(Video.prompt)
        .where(owned(owner), Video.deleted_at.is_(None), Video.rating == 1)
        .where(Video.prompt.is_not(None), Video.prompt != "")
        .order_by(Video.rated_at.desc(), Video.seq.desc())
    )
    prompts: list[str] = []
    with sessions() as session:
        # Few rows per owner are rated; reading them in order and keeping the first of each
        # prompt is simpler than a DISTINCT that must agree with the ordering on both dialects.
        for prompt in session.execute(query).scalars():
            if prompt is not None and prompt not in prompts:
                prompts.append(prompt)
                if len(prompts) >= limit:
                    break
    return prompts
