"""The audit log: who (which API key) did what to which video, and when — append-only.

Entries are only ever added; the one way any leaves the table is the retention prune, which
removes whole entries older than the retention period. The database enforces it (triggers of
migration 0002): an UPDATE of an entry is refused, and so is a DELETE of any entry not older
than the cutoff the prune records in `audit_retention` first. Updating an entry through the
ORM is refused before it reaches the database, with a clearer message.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO, cast

from sqlalchemy import CursorResult, delete, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.store.models import AuditEvent, AuditRetention

ACTIONS = (
    "create",
    "remix",
    "edit",
    "extend",
    "storyboard",
    "import",
    "download",
    "delete",
    "moderation",
    "rate",
    "favourite",
    "project.create",
    "project.update",
    "project.delete",
    "project.add_item",
    "project.remove_item",
    "conversation.create",
    "conversation.delete",
    "conversation.action",
    "assistant.prompt",
    "assistant.storyboard",
    "assistant.turn",
)
FIELDS = ("id", "at", "time", "actor", "action", "video_id", "detail")
LOCAL = "local"  # how the keyless loopback user (actor None) is shown and filtered


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise RuntimeError("audit entries are append-only")


def add(
    session: Session,
    *,
    actor: str | None,
    action: str,
    video_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an entry inside the caller's transaction: it commits with the change it records."""
    session.add(AuditEvent(actor=actor, action=action, video_id=video_id, detail=detail or {}))


def record(
    sessions: sessionmaker[Session],
    *,
    actor: str | None,
    action: str,
    video_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an entry in a transaction of its own."""
    with sessions.begin() as session:
        add(session, actor=actor, action=action, video_id=video_id, detail=detail)


@dataclass(frozen=True)
class Filter:
    """Which entries to read; None means any. `actor` is a key id, or `LOCAL`."""

    actor: str | None = None
    action: str | None = None
    video_id: str | None = None
    since: float | None = None
    until: float | None = None


def query(
    sessions: sessionmaker[Session],
    where: Filter | None = None,
    *,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Entries as plain dicts, oldest first unless `newest_first`."""
    where = where or Filter()
    statement = select(AuditEvent)
    if where.actor is not None:
        statement = statement.where(
            AuditEvent.actor.is_(None) if where.actor == LOCAL else AuditEvent.actor == where.actor
        )
    if where.action is not None:
        statement = statement.where(AuditEvent.action == where.action)
    if where.video_id is not None:
        statement = statement.where(AuditEvent.video_id == where.video_id)
    if where.since is not None:
        statement = statement.where(AuditEvent.at >= where.since)
    if where.until is not None:
        statement = statement.where(AuditEvent.at < where.until)
    order = AuditEvent.id.desc() if newest_first else AuditEvent.id.asc()
    statement = statement.order_by(order)
    if limit is not None:
        statement = statement.limit(limit)
    with sessions() as session:
        return [as_dict(row) for row in session.execute(statement).scalars()]


def as_dict(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.at)),
        "actor": row.actor,
        "action": row.action,
        "video_id": row.video_id,
        "detail": row.detail or {},
    }


def export(entries: Iterable[dict[str, Any]], out: TextIO, fmt: str = "jsonl") -> int:
    """Write entries as JSON Lines or CSV (`detail` as a JSON cell); returns how many."""
    count = 0
    if fmt == "jsonl":
        for entry in entries:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for entry in entries:
            writer.writerow({**entry, "detail": json.dumps(entry["detail"], sort_keys=True)})
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r}: jsonl or csv")
    return count


def prune(
    sessions: sessionmaker[Session], retention_days: float, *, now: float | None = None
) -> int:
    """Remove entries older than `retention_days` (0 keeps everything); returns how many."""
    if retention_days <= 0:
        return 0
    cutoff = (now if now is not None else time.time()) - retention_days * 86400
    with sessions.begin() as session:
        # First the cutoff the database's trigger lets deletions through below, in the same
        # transaction: concurrent prunes take turns on its row.
        session.execute(update(AuditRetention).where(AuditRetention.id == 1).values(cutoff=cutoff))
        result = cast(
            CursorResult[Any], session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        )
    return result.rowcount or 0
