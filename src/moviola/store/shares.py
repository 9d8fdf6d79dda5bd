"""Share links: rows that say a finished video may be watched by whoever holds its link.

The link itself is the row's id, signed (see `moviola.studio.sharing`); a row is live until it
is revoked or expires, and only while its video is completed and out of the trash.
"""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.errors import ConflictError
from moviola.store import audit
from moviola.store.models import ShareLink, Video, VideoStatus, new_id

MAX_LINKS = 20  # live links per video: enough for every audience, not a table to fill


def create(
    sessions: sessionmaker[Session],
    video_id: str,
    owner: str | None,
    *,
    expires_at: float | None,
    audited: bool = True,
) -> ShareLink:
    """A new link to the owner's video (the caller has checked that it is theirs and
    finished); refused past `MAX_LINKS` live ones."""
    link = ShareLink(id=new_id("share"), video_id=video_id, owner=owner, expires_at=expires_at)
    now = time.time()
    with sessions.begin() as session:
        live = session.execute(
            select(func.count())
            .select_from(ShareLink)
            .where(
                ShareLink.video_id == video_id,
                ShareLink.revoked_at.is_(None),
                ShareLink.expires_at.is_(None) | (ShareLink.expires_at > now),
            )
        ).scalar_one()
        if live >= MAX_LINKS:
            raise ConflictError(
                f"this video already has {live} live share links; revoke one first",
                param="expires",
            )
        session.add(link)
        if audited:
            detail = {"share": link.id, "expires_at": expires_at}
            audit.add(session, actor=owner, action="share", video_id=video_id, detail=detail)
    return link


def of_video(sessions: sessionmaker[Session], video_id: str, owner: str | None) -> list[ShareLink]:
    """A video's links that are not revoked (expired ones too: their owner sees them end),
    newest first."""
    with sessions() as session:
        query = (
            select(ShareLink)
            .where(
                ShareLink.video_id == video_id,
                _owned(owner),
                ShareLink.revoked_at.is_(None),
            )
            .order_by(ShareLink.created_at.desc())
        )
        return list(session.execute(query).scalars())


def revoke(
    sessions: sessionmaker[Session],
    share_id: str,
    video_id: str,
    owner: str | None,
    *,
    audited: bool = True,
) -> bool:
    """False when no live link of the owner's video has that id."""
    with sessions.begin() as session:
        done = session.execute(
            update(ShareLink)
            .where(
                ShareLink.id == share_id,
                ShareLink.video_id == video_id,
                _owned(owner),
                ShareLink.revoked_at.is_(None),
            )
            .values(revoked_at=time.time())
            .returning(ShareLink.id)
        ).scalar()
        if done is not None and audited:
            detail = {"share": share_id}
            audit.add(session, actor=owner, action="unshare", video_id=video_id, detail=detail)
    return done is not None


def shared(sessions: sessionmaker[Session], share_id: str) -> tuple[ShareLink, Video] | None:
    """The link `share_id` and its video, while the link is live and the video is completed
    and not in the trash; None otherwise, whichever the reason."""
    now = time.time()
    with sessions() as session:
        found = session.execute(
            select(ShareLink, Video)
            .join(Video, Video.id == ShareLink.video_id)
            .where(
                ShareLink.id == share_id,
                ShareLink.revoked_at.is_(None),
                (ShareLink.expires_at.is_(None)) | (ShareLink.expires_at > now),
                Video.status == VideoStatus.COMPLETED,
                Video.deleted_at.is_(None),
                # The link's owner still owns the video (a link outlives no change of hands).
                (Video.owner == ShareLink.owner)
                | (Video.owner.is_(None) & ShareLink.owner.is_(None)),
            )
        ).first()
    return (found[0], found[1]) if found is not None else None


def _owned(owner: str | None) -> ColumnElement[bool]:
    return ShareLink.owner.is_(None) if owner is None else ShareLink.owner == owner
