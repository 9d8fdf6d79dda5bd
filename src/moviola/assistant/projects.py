"""Projects, conversations and their messages: the assistant's memory across sessions.

Everything belongs to the key that made it (`owner`; None is the keyless local user), like
videos: a missing id and another owner's answer alike, with `NotFoundError`. Every write is
one transaction, committed before the method returns, so what a caller was told was saved
survives a crash of the server right after.

A project is a named collection: its items point at videos, characters and conversations,
which live on their own (deleting a project leaves them; deleting a conversation takes it out
of its project). A conversation is in at most one project; `Conversation.project_id` and the
project's item are written together. History longer than the model's context is folded into
the conversation's `summary` by the conversation turn (`set_summary`); `get_conversation`
returns that summary and the messages after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from moviola.assistant import ratings
from moviola.errors import ConflictError, InvalidRequestError, NotFoundError
from moviola.store import audit
from moviola.store.models import (
    Character,
    Conversation,
    Message,
    Project,
    ProjectItem,
    Video,
    new_id,
    now,
)

ItemKind = Literal["video", "character", "conversation"]
ITEM_KINDS: tuple[ItemKind, ...] = ("video", "character", "conversation")
ROLES = ("user", "assistant", "system")
ACTION_STATES = ("proposed", "confirmed", "dismissed")
MAX_NAME_CHARS = 200  # the name and title columns' length
MAX_NOTES_CHARS = 100_000
MAX_LIMIT = 1000  # rows one list reads; the API pages by at most 100


@dataclass(frozen=True)
class ProjectItemView:
    kind: ItemKind
    item_id: str
    added_at: float


@dataclass(frozen=True)
class ProjectView:
    id: str
    name: str
    notes: str
    created_at: float
    updated_at: float
    items: tuple[ProjectItemView, ...] = ()


@dataclass(frozen=True)
class MessageView:
    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    context: dict[str, Any] | None
    action: dict[str, Any] | None  # with its "state": proposed, confirmed or dismissed
    created_at: float


@dataclass(frozen=True)
class ConversationView:
    id: str
    project_id: str | None
    title: str
    summary: str  # the messages up to `summary_through`, rolled up
    summary_through: int  # seq of the last message in the summary; 0: none
    created_at: float
    updated_at: float
    messages: tuple[MessageView, ...] = ()  # empty in lists


class Projects:
    """Projects, conversations, messages and ratings, each read and written for one owner."""

    def __init__(self, sessions: sessionmaker[Session], *, record: bool = True):
        self.sessions = sessions
        self.record = record  # write every change to the audit log (settings.audit)

    # --- projects ---------------------------------------------------------------------------

    def create_project(self, owner: str | None, name: str, notes: str = "") -> ProjectView:
        row = Project(id=new_id("proj"), owner=owner, name=_name(name), notes=_notes(notes))
        with self.sessions.begin() as session:
            session.add(row)
            self._audit(session, owner, "project.create", {"project_id": row.id})
        return _project(row, [])

    def list_projects(
        self, owner: str | None, query: str | None = None, limit: int = 50
    ) -> list[ProjectView]:
        """The owner's projects, most recently changed first; `query` matches (case-blind) the
        name, the notes, and the titles and messages of the project's conversations."""
        statement = select(Project).where(
            _owned(Project.owner, owner), Project.deleted_at.is_(None)
        )
        if query:
            pattern = _pattern(query)
            in_conversations = (
                select(Conversation.id)
                .outerjoin(Message, Message.conversation_id == Conversation.id)
                .where(
                    Conversation.project_id == Project.id,
                    Conversation.deleted_at.is_(None),
                    or_(_like(Conversation.title, pattern), _like(Message.content, pattern)),
                )
            )
            statement = statement.where(
                or_(
                    _like(Project.name, pattern),
                    _like(Project.notes, pattern),
                    exists(in_conversations),
                )
            )
        statement = statement.order_by(Project.updated_at.desc(), Project.id).limit(_limit(limit))
        with self.sessions() as session:
            rows = list(session.execute(statement).scalars())
            items = _items_of(session, [row.id for row in rows])
        return [_project(row, items.get(row.id, [])) for row in rows]

    def get_project(self, owner: str | None, project_id: str) -> ProjectView:
        with self.sessions() as session:
            row = _get_project(session, owner, project_id)
            return _project(row, _items_of(session, [row.id]).get(row.id, []))

    def update_project(
        self,
        owner: str | None,
        project_id: str,
        *,
        name: str | None = None,
        notes: str | None = None,
    ) -> ProjectView:
        with self.sessions.begin() as session:
            row = _get_project(session, owner, project_id, lock=True)
            if name is not None:
                row.name = _name(name)
            if notes is not None:
                row.notes = _notes(notes)
            row.updated_at = now()
            changed = [field for field, v in (("name", name), ("notes", notes)) if v is not None]
            self._audit(session, owner, "project.update", {"project_id": row.id, "fields": changed})
            items = _items_of(session, [row.id]).get(row.id, [])
        return _project(row, items)

    def delete_project(self, owner: str | None, project_id: str) -> None:
        """The project and its items go; the videos, characters and conversations stay."""
        with self.sessions.begin() as session:
            row = _get_project(session, owner, project_id, lock=True)
            row.deleted_at = now()
            session.execute(delete(ProjectItem).where(ProjectItem.project_id == row.id))
            session.execute(
                update(Conversation)
                .where(Conversation.project_id == row.id)
                .values(project_id=None)
            )
            self._audit(session, owner, "project.delete", {"project_id": row.id})

    def add_item(self, owner: str | None, project_id: str, kind: str, item_id: str) -> None:
        """Put the owner's video, character or conversation in the project (again: no change).
        A conversation moves out of any other project it was in."""
        kind = _kind(kind)
        with self.sessions.begin() as session:
            project = _get_project(session, owner, project_id, lock=True)
            _check_item(session, owner, kind, item_id)
            if kind == "conversation":
                conversation = _get_conversation(session, owner, item_id)
                if conversation.project_id not in (None, project.id):
                    _unlink(session, conversation.project_id, "conversation", item_id)
                conversation.project_id = project.id
            present = session.execute(
                select(ProjectItem.id).where(_item_is(project.id, kind, item_id))
            ).first()
            if present is None:
                session.add(ProjectItem(project_id=project.id, kind=kind, item_id=item_id))
            project.updated_at = now()
            detail = {"project_id": project.id, "kind": kind, "item_id": item_id}
            self._audit(session, owner, "project.add_item", detail)

    def remove_item(self, owner: str | None, project_id: str, kind: str, item_id: str) -> None:
        kind = _kind(kind)
        with self.sessions.begin() as session:
            project = _get_project(session, owner, project_id, lock=True)
            if not _unlink(session, project.id, kind, item_id):
                raise NotFoundError(
                    f"project {project_id!r} has no {kind} {item_id!r}", param="item_id"
                )
            if kind == "conversation":
                session.execute(
                    update(Conversation)
                    .where(Conversation.id == item_id, Conversation.project_id == project.id)
                    .values(project_id=None)
                )
            project.updated_at = now()
            detail = {"project_id": project.id, "kind": kind, "item_id": item_id}
            self._audit(session, owner, "project.remove_item", detail)

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(
        self, owner: str | None, *, project_id: str | None = None, title: str = ""
    ) -> ConversationView:
        row = Conversation(
            id=new_id("conv"), owner=owner, project_id=project_id, title=_name(title, param="title")
        )
        with self.sessions.begin() as session:
            if project_id is not None:
                project = _get_project(session, owner, project_id, lock=True)
                session.add(ProjectItem(project_id=project.id, kind="conversation", item_id=row.id))
                project.updated_at = now()
            session.add(row)
            detail = {"conversation_id": row.id, "project_id": project_id}
            self._audit(session, owner, "conversation.create", detail)
        return _conversation(row, [])

    def list_conversations(
        self,
        owner: str | None,
        *,
        project_id: str | None = None,
        query: str | None = None,
        limit: int = 50,
    ) -> list[ConversationView]:
        """The owner's conversations (of one project, if named), most recently active first;
        `query` matches (case-blind) the title, the summary and the messages."""
        statement = select(Conversation).where(
            _owned(Conversation.owner, owner), Conversation.deleted_at.is_(None)
        )
        if project_id is not None:
            with self.sessions() as session:
                _get_project(session, owner, project_id)
            statement = statement.where(Conversation.project_id == project_id)
        if query:
            pattern = _pattern(query)
            in_messages = select(Message.id).where(
                Message.conversation_id == Conversation.id, _like(Message.content, pattern)
            )
            statement = statement.where(
                or_(
                    _like(Conversation.title, pattern),
                    _like(Conversation.summary, pattern),
                    exists(in_messages),
                )
            )
        statement = statement.order_by(Conversation.updated_at.desc(), Conversation.id)
        with self.sessions() as session:
            rows = session.execute(statement.limit(_limit(limit))).scalars()
            return [_conversation(row, []) for row in rows]

    def get_conversation(
        self, owner: str | None, conversation_id: str, *, all_messages: bool = False
    ) -> ConversationView:
        """The conversation with its summary and the messages after it (what a model is given);
        with `all_messages`, every message (what a person reads)."""
        with self.sessions() as session:
            row = _get_conversation(session, owner, conversation_id)
            statement = select(Message).where(Message.conversation_id == row.id)
            if not all_messages:
                statement = statement.where(Message.seq > row.summary_through)
            messages = session.execute(statement.order_by(Message.seq)).scalars()
            return _conversation(row, messages)

    def add_message(
        self,
        owner: str | None,
        conversation_id: str,
        role: str,
        content: str,
        *,
        context: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
    ) -> MessageView:
        """Append a message (the next seq). An `action` needs a "type"; its state starts as
        "proposed" unless given."""
        if role not in ROLES:
            raise InvalidRequestError(f"role must be one of {', '.join(ROLES)}", param="role")
        if action is not None:
            if not isinstance(action.get("type"), str):
                raise InvalidRequestError("an action needs a type", param="action")
            action = {**action, "state": action.get("state", "proposed")}
            _state(action["state"])
        with self.sessions.begin() as session:
            # Touching the conversation first takes its lock (SQLite: the write lock), so two
            # messages added at once get consecutive seqs instead of the same one.
            at = now()
            touched = session.execute(
                update(Conversation)
                .where(
                    Conversation.id == conversation_id,
                    _owned(Conversation.owner, owner),
                    Conversation.deleted_at.is_(None),
                )
                .values(updated_at=at)
                .returning(Conversation.project_id)
            ).first()
            if touched is None:
                raise _no_conversation(conversation_id)
            if touched.project_id is not None:
                session.execute(
                    update(Project).where(Project.id == touched.project_id).values(updated_at=at)
                )
            last = session.execute(
                select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
            ).scalar()
            row = Message(
                id=new_id("msg"),
                conversation_id=conversation_id,
                seq=(last or 0) + 1,
                role=role,
                content=content,
                context=context,
                action=action,
                created_at=at,
            )
            session.add(row)
        return _message(row)

    def set_action_state(self, owner: str | None, message_id: str, state: str) -> MessageView:
        """Confirm or dismiss the action a message proposed; once decided it stays decided."""
        _state(state)
        with self.sessions.begin() as session:
            row = session.get(Message, message_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r}", param="message_id")
            try:
                _get_conversation(session, owner, row.conversation_id)
            except NotFoundError:
                raise NotFoundError(
                    f"no message with id {message_id!r}", param="message_id"
                ) from None
            if row.action is None:
                raise ConflictError("the message proposed no action", param="message_id")
            current = row.action.get("state", "proposed")
            if current != state:
                if current != "proposed":
                    raise ConflictError(f"the action was already {current}", param="state")
                row.action = {**row.action, "state": state}  # a new dict: JSON is not mutable
                detail = {
                    "conversation_id": row.conversation_id,
                    "message_id": row.id,
                    "type": row.action.get("type"),
                    "state": state,
                }
                self._audit(session, owner, "conversation.action", detail)
        return _message(row)

    def set_summary(
        self, owner: str | None, conversation_id: str, summary: str, through_seq: int
    ) -> None:
        """Record the rolled-up summary of every message up to `through_seq`."""
        with self.sessions.begin() as session:
            row = _get_conversation(session, owner, conversation_id, lock=True)
            last = session.execute(
                select(func.max(Message.seq)).where(Message.conversation_id == row.id)
            ).scalar()
            if not 0 <= through_seq <= (last or 0):
                raise InvalidRequestError(
                    f"through_seq must be 0–{last or 0}, the conversation's messages",
                    param="through_seq",
                )
            row.summary = summary
            row.summary_through = through_seq

    def delete_conversation(self, owner: str | None, conversation_id: str) -> None:
        """The conversation is gone for every reader, its messages removed, and it leaves its
        project."""
        with self.sessions.begin() as session:
            row = _get_conversation(session, owner, conversation_id, lock=True)
            row.deleted_at = now()
            session.execute(delete(Message).where(Message.conversation_id == row.id))
            session.execute(
                delete(ProjectItem).where(
                    ProjectItem.kind == "conversation", ProjectItem.item_id == row.id
                )
            )
            self._audit(session, owner, "conversation.delete", {"conversation_id": row.id})

    # --- ratings ----------------------------------------------------------------------------

    def rate_video(
        self, owner: str | None, video_id: str, rating: int | None, note: str | None
    ) -> None:
        """Thumbs up (1), down (-1) or neither (None), and a note, on the owner's video."""
        ratings.rate(self.sessions, owner, video_id, rating, note, record=self.record)

    def liked_prompts(self, owner: str | None, limit: int = 10) -> list[str]:
        """The prompts of the owner's most recently liked videos, each once."""
        return ratings.liked_prompts(self.sessions, owner, limit)

    def _audit(
        self, session: Session, owner: str | None, action: str, detail: dict[str, Any]
    ) -> None:
        if self.record:
            audit.add(session, actor=owner, action=action, detail=detail)


# --- rows and checks ------------------------------------------------------------------------


def _owned(column: InstrumentedAttribute[str | None], owner: str | None) -> ColumnElement[bool]:
    return column.is_(None) if owner is None else column == owner


def _get_project(
    session: Session, owner: str | None, project_id: str, *, lock: bool = False
) -> Project:
    row = session.get(Project, project_id, with_for_update=lock)
    if row is None or row.deleted_at is not None or row.owner != owner:
        raise NotFoundError(f"no project with id {project_id!r}", param="project_id")
    return row


def _get_conversation(
    session: Session, owner: str | None, conversation_id: str, *, lock: bool = False
) -> Conversation:
    row = session.get(Conversation, conversation_id, with_for_update=lock)
    if row is None or row.deleted_at is not None or row.owner != owner:
        raise _no_conversation(conversation_id)
    return row


def _no_conversation(conversation_id: str) -> NotFoundError:
    return NotFoundError(f"no conversation with id {conversation_id!r}", param="conversation_id")


def _check_item(session: Session, owner: str | None, kind: ItemKind, item_id: str) -> None:
    """The item exists and is the owner's; otherwise it is not found, whoever's it is."""
    found: Video | Character | Conversation | None
    if kind == "video":
        found = session.get(Video, item_id)
    elif kind == "character":
        found = session.get(Character, item_id)
    else:
        found = session.get(Conversation, item_id)
    gone = found is None or getattr(found, "deleted_at", None) is not None
    if gone or found is None or found.owner != owner:
        raise NotFoundError(f"no {kind} with id {item_id!r}", param="item_id")


def _item_is(project_id: str, kind: str, item_id: str) -> ColumnElement[bool]:
    return and_(
        ProjectItem.project_id == project_id,
        ProjectItem.kind == kind,
        ProjectItem.item_id == item_id,
    )


def _unlink(session: Session, project_id: str, kind: str, item_id: str) -> bool:
    removed = session.execute(
        delete(ProjectItem).where(_item_is(project_id, kind, item_id)).returning(ProjectItem.id)
    ).first()
    return removed is not None


def _items_of(session: Session, project_ids: Sequence[str]) -> dict[str, list[ProjectItem]]:
    if not project_ids:
        return {}
    rows = session.execute(
        select(ProjectItem)
        .where(ProjectItem.project_id.in_(project_ids))
        .order_by(ProjectItem.added_at, ProjectItem.id)
    ).scalars()
    items: dict[str, list[ProjectItem]] = {}
    for row in rows:
        items.setdefault(row.project_id, []).append(row)
    return items


def _kind(kind: str) -> ItemKind:
    for known in ITEM_KINDS:
        if kind == known:
            return known
    raise InvalidRequestError(f"kind must be one of {', '.join(ITEM_KINDS)}", param="kind")


def _state(state: Any) -> None:
    if state not in ACTION_STATES:
        raise InvalidRequestError(f"state must be one of {', '.join(ACTION_STATES)}", param="state")


def _name(name: str, *, param: str = "name") -> str:
    name = name.strip()
    if not name and param == "name":  # a project needs a name; a conversation may be untitled
        raise InvalidRequestError("name must not be empty", param=param)
    if len(name) > MAX_NAME_CHARS:
        raise InvalidRequestError(f"{param} is over {MAX_NAME_CHARS} characters", param=param)
    return name


def _notes(notes: str) -> str:
    if len(notes) > MAX_NOTES_CHARS:
        raise InvalidRequestError(f"notes are over {MAX_NOTES_CHARS} characters", param="notes")
    return notes


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be 1–{MAX_LIMIT}", param="limit")
    return limit


def _pattern(query: str) -> str:
    """A LIKE pattern matching `query` anywhere, its own % and _ taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    return column.ilike(pattern, escape="\\")


def _project(row: Project, items: Iterable[ProjectItem]) -> ProjectView:
    return ProjectView(
        id=row.id,
        name=row.name,
        notes=row.notes,
        created_at=row.created_at,
        updated_at=row.updated_at,
        items=tuple(
            ProjectItemView(kind=_kind(item.kind), item_id=item.item_id, added_at=item.added_at)
            for item in items
        ),
    )


def _conversation(row: Conversation, messages: Iterable[Message]) -> ConversationView:
    return ConversationView(
        id=row.id,
        project_id=row.project_id,
        title=row.title,
        summary=row.summary,
        summary_through=row.summary_through,
        created_at=row.created_at,
        updated_at=row.updated_at,
        messages=tuple(_message(message) for message in messages),
    )


def _message(row: Message) -> MessageView:
    return MessageView(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        role=row.role,
        content=row.content,
        context=row.context,
        action=row.action,
        created_at=row.created_at,
    )
