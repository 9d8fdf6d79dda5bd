"""The queries behind the Studio's pages: a page of the library, the queue, a video's lineage.

Everything is scoped to the viewer's own videos, as the service scopes them, and never shows a
deleted one. Pages are keyset-paginated on `seq` (the creation order, unique), so a page costs
the same at the end of a long library as at its start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from moviola.assistant import ratings
from moviola.jobs import eta
from moviola.jobs.service import Caller
from moviola.store.models import Project, ProjectItem, Video, VideoStatus
from moviola.studio import stages
from moviola.studio.states import shown_status

PAGE_SIZE = 24
STATUSES = tuple(VideoStatus)
RATINGS = tuple(ratings.FILTERS)  # the library's rating filter: liked, disliked, unrated
SOUNDS = ("with", "without")  # the sound filter: videos with a soundtrack, or silent ones
ACTIVE = (VideoStatus.QUEUED, VideoStatus.IN_PROGRESS)
_MAX_WORDS = 8
_MAX_TREE = 200  # nodes shown in a lineage tree
_MAX_CHILDREN = 5 * _MAX_TREE  # rows read for one level of it


def _mine(query: Select, caller: Caller) -> Select:
    owner = Video.owner.is_(None) if caller.owner is None else Video.owner == caller.owner
    return query.where(owner, Video.deleted_at.is_(None))


@dataclass
class Page:
    videos: list[Video]
    next_before: int | None  # the `before` of the next page, None on the last


def library_page(
    sessions: sessionmaker[Session],
    caller: Caller,
    *,
    status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    rating: str | None = None,
    sound: str | None = None,
    favourites: bool = False,
    collection: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """Newest first; `search` matches videos whose prompt holds every word given."""
    query = page_query(
        caller,
        status=status,
        model=model,
        search=search,
        rating=rating,
        sound=sound,
        favourites=favourites,
        collection=collection,
        before=before,
        limit=limit,
    )
    with sessions() as session:
        rows = list(session.execute(query).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].seq if more and rows else None)


def page_query(
    caller: Caller,
    *,
    status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    rating: str | None = None,
    sound: str | None = None,
    favourites: bool = False,
    collection: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> Select:
    """The query of one page (and one row more, to know whether another follows).

    `owner = ?` (or `IS NULL`) with `ORDER BY seq DESC` walks the `(owner, seq)` index
    backwards and stops after the page: no sort, whatever the library's size."""
    query = _mine(select(Video), caller)
    if status in STATUSES:
        query = query.where(Video.status == status)
    if model:
        query = query.where(Video.model == model)
    if rating in ratings.FILTERS:  # liked, disliked, unrated
        query = query.where(ratings.filter_clause(rating))
    if sound in SOUNDS:
        # A row's `result.audio` describes its soundtrack, and is null (or absent) without one.
        codec = Video.result[("audio", "codec")].as_string()
        query = query.where(codec.is_not(None) if sound == "with" else codec.is_(None))
    if favourites:
        query = query.where(Video.favourited_at.is_not(None))
    if collection:
        query = query.where(Video.id.in_(_in_collection(caller, collection)))
    for word in (search or "").split()[:_MAX_WORDS]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Video.prompt.ilike(f"%{escaped}%", escape="\\"))
    if before is not None:
        query = query.where(Video.seq < before)
    return query.order_by(Video.seq.desc()).limit(limit + 1)


def _in_collection(caller: Caller, project_id: str) -> Select:
    """The ids of the videos in one of the viewer's collections (a project): another
    creator's, or a deleted one, holds none."""
    owner = Project.owner.is_(None) if caller.owner is None else Project.owner == caller.owner
    return (
        select(ProjectItem.item_id)
        .join(Project, Project.id == ProjectItem.project_id)
        .where(ProjectItem.project_id == project_id, ProjectItem.kind == "video")
        .where(owner, Project.deleted_at.is_(None))
    )


MODELS_TTL_S = 30.0
_models_seen: dict[tuple[int, str | None], tuple[list[str], float]] = {}


def models_used(sessions: sessionmaker[Session], caller: Caller) -> list[str]:
    """The model names the viewer's videos were made with, for the library's filter.

    Finding them reads every one of the viewer's rows, so the answer is kept for
    `MODELS_TTL_S`: a library page is asked for far more often than a new model is used."""
    key = (id(sessions), caller.owner)
    now = time.monotonic()
    cached = _models_seen.get(key)
    if cached is not None and now < cached[1]:
        return cached[0]
    with sessions() as session:
        found = sorted(
            session.execute(_mine(select(Video.model).distinct(), caller)).scalars().all()
        )
    if len(_models_seen) > 10_000:
        _models_seen.clear()
    _models_seen[key] = (found, now + MODELS_TTL_S)
    return found


def group_of(sessions: sessionmaker[Session], caller: Caller, video: Video) -> list[Video]:
    """The variations `video` was made with (itself among them), in their order; none for a
    video made alone."""
    if video.group_id is None:
        return []
    with sessions() as session:
        query = _mine(select(Video).where(Video.group_id == video.group_id), caller)
        return list(session.execute(query.order_by(Video.seq)).scalars())


def by_ids(sessions: sessionmaker[Session], caller: Caller, ids: list[str]) -> list[Video]:
    if not ids:
        return []
    with sessions() as session:
        query = _mine(select(Video).where(Video.id.in_(ids[:500])), caller)
        return list(session.execute(query).scalars())


# --- live progress -----------------------------------------------------------------------------


@dataclass
class JobState:
    """A job's live state: one shape for the page as drawn and every update pushed after it,
    so that its badge, stage, bar and estimate are always of one moment (see live.js)."""

    id: str
    status: str  # queued, in_progress, completed, failed, cancelled
    progress: int
    stage: str | None
    label: str  # the stage in words: "denoising step 7/30" (see `stages.label`)
    position: int | None  # 1 = next to start; None unless queued
    eta_s: int | None  # seconds left, where history can tell (see `moviola.jobs.eta`)
    error: str | None
    preview: str | None  # the latest preview of the latents while denoising
    title: str  # the prompt, short, for the "done" notification

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _queue_positions(session: Session, rows: list[Video]) -> dict[str, int]:
    """The place in the shared queue (1 = next) of each queued row, in one query: the queue
    is numbered up to the last of them, every key's jobs counted."""
    queued = [row for row in rows if row.status == VideoStatus.QUEUED]
    if not queued:
        return {}
    numbered = (
        select(
            Video.id.label("id"),
            func.row_number().over(order_by=Video.seq).label("position"),
        )
        .where(
            Video.status == VideoStatus.QUEUED,
            Video.deleted_at.is_(None),
            Video.seq <= max(row.seq for row in queued),
        )
        .subquery()
    )
    wanted = [row.id for row in queued]
    found = session.execute(
        select(numbered.c.id, numbered.c.position).where(numbered.c.id.in_(wanted))
    ).all()
    return {video_id: int(position) for video_id, position in found}


def job_state(row: Video, position: int | None = None, eta_s: int | None = None) -> JobState:
    prompt = " ".join((row.prompt or "").split())
    return JobState(
        row.id,
        shown_status(row),  # "cancelled" is not a failure
        100 if row.status == VideoStatus.COMPLETED else row.progress or 0,
        row.stage,
        stages.label(row),
        position,
        eta_s,
        row.error_message if row.status == VideoStatus.FAILED else None,
        stages.preview_url(row),
        prompt[:60] + ("…" if len(prompt) > 60 else ""),
    )


def job_states(sessions: sessionmaker[Session], caller: Caller, ids: list[str]) -> list[JobState]:
    """Where each job stands, with its place in the queue and an estimate of what is left.

    The queue is shared by every key, so a position counts every waiting job ahead. A fixed
    handful of queries, however many jobs are watched: the rows, the places, and the
    estimates' history and queue."""
    with sessions() as session:
        rows = list(
            session.execute(_mine(select(Video).where(Video.id.in_(ids[:200])), caller)).scalars()
        )
        positions = _queue_positions(session, rows)
        left = {job_id: round(s) for job_id, s in eta.estimates(session, rows).items()}
        return [job_state(row, positions.get(row.id), left.get(row.id)) for row in rows]


def active_ids(sessions: sessionmaker[Session], caller: Caller) -> list[str]:
    with sessions() as session:
        query = _mine(select(Video.id).where(Video.status.in_(ACTIVE)), caller)
        return list(session.execute(query.order_by(Video.seq).limit(200)).scalars())


# --- lineage -----------------------------------------------------------------------------------


@dataclass
class Node:
    video: Video
    relation: str  # "root", "remix", "edit", "extension", "storyboard"
    children: list[Node] = field(default_factory=list)


def parent_id(video: Video) -> str | None:
    return video.remixed_from_video_id or video.source_video_id


def _relation(video: Video) -> str:
    return {"remix": "remix", "edit": "edit", "extend": "extension"}.get(video.kind, video.kind)


def lineage(sessions: sessionmaker[Session], caller: Caller, video: Video) -> Node:
    """The tree `video` belongs to: from its oldest known ancestor down to every descendant."""
    with sessions() as session:
        root = video
        seen = {video.id}
        while (up := parent_id(root)) is not None and up not in seen:
            seen.add(up)
            parent = session.execute(_mine(select(Video).where(Video.id == up), caller)).scalar()
            if parent is None:  # deleted, or not the viewer's: the tree starts below it
                break
            root = parent
        top = Node(root, "root")
        frontier = {root.id: top}
        count = 1
        while frontier and count < _MAX_TREE:
            children = children_of(session, list(frontier))
            next_frontier = {}
            for child in children:
                if child.owner != caller.owner:
                    continue  # not the viewer's: neither it nor what was made from it
                holder = frontier.get(parent_id(child) or "")
                if holder is None or child.id in next_frontier or count >= _MAX_TREE:
                    continue
                node = Node(child, _relation(child))
                holder.children.append(node)
                next_frontier[child.id] = node
                count += 1
            frontier = next_frontier
    return top


def children_of(session: Session, parents: list[str]) -> list[Video]:
    """What was made from `parents` (remixes, edits, extensions), oldest first.

    Found through the indexes on `remixed_from_video_id` and `source_video_id` alone: with the
    owner in the query too, the database may walk the owner's whole library instead (the
    `(owner, seq)` index serves its order), so the caller checks the owner. At most
    `_MAX_CHILDREN` are read for each link, which only a video remixed thousands of times
    reaches."""
    rows: dict[str, Video] = {}
    for query in children_queries(parents, session.get_bind().dialect.name):
        rows.update((row.id, row) for row in session.execute(query).scalars())
    return sorted(rows.values(), key=lambda row: row.seq)


def children_queries(parents: list[str], dialect: str) -> list[Select]:
    """One query per link to a parent, each through its own index.

    Most videos have no parent, and SQLite's statistics (once `ANALYZE` has run) count those
    NULLs as one huge group of equal values, after which it would rather read the whole table
    than the index: `unlikely()` tells it that few rows match. PostgreSQL's statistics know
    about NULLs by themselves."""
    queries = []
    for column in (Video.remixed_from_video_id, Video.source_video_id):
        match: ColumnElement[bool] = column.in_(parents)
        if dialect == "sqlite":
            match = func.unlikely(match)
        queries.append(select(Video).where(match, Video.deleted_at.is_(None)).limit(_MAX_CHILDREN))
    return queries


def tree_size(node: Node) -> int:
    return 1 + sum(tree_size(child) for child in node.children)
