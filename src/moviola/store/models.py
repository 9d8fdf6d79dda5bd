"""The database tables. Every change to them comes with an Alembic migration in `migrations/`.

A `Video` row is a job and its result at once: its status moves queued → in_progress →
completed | failed, and it says exactly which files exist (path, size and SHA-256 of each).
"""

from __future__ import annotations

import enum
import secrets
import time
from typing import Any, ClassVar, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Dialect,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def now() -> float:
    return time.time()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


class VideoStatus(str, enum.Enum):
    """A job's state; only `moviola.jobs.queue` moves a row from one to another."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class VideoKind(str, enum.Enum):
    """What made the video: the request it came from, or an import."""

    CREATE = "create"
    REMIX = "remix"
    EDIT = "edit"
    EXTEND = "extend"
    STORYBOARD = "storyboard"
    IMPORT = "import"

    def __str__(self) -> str:
        return self.value


class StoredFile(TypedDict, total=False):
    """One entry of a video's `files`: a whole file in its blob folder (or an import's)."""

    path: str
    bytes: int
    sha256: str
    mime: str  # an imported file's own media type; absent: the variant's usual one
    expired_at: float  # set when retention removed it; the path is kept


class StoredAudio(TypedDict):
    """A video's sound as the API shows it: its stream, and what made it (`model`, `source`,
    `soundtrack`; None where nobody knows)."""

    codec: str
    sample_rate: int
    channels: int
    kind: str | None


class StoredMemory(TypedDict):
    """Where a render's model ran: the memory planner's placement and its estimate."""

    placement: str  # resident, encoder_offload, model_offload, group_offload, sequential
    fp8: bool  # the denoiser stored in FP8
    vae_tiling: bool  # the VAE decoded in tiles
    vae_retried_tiled: bool  # an untiled decode ran out of memory and was done again tiled
    estimated_peak_bytes: int
    device_bytes: int  # the memory the plan was made against


class RenderResult(TypedDict, total=False):
    """A completed render's `result`: what was made and how long each stage took."""

    seed: int
    render_size: list[int]
    frames: int
    fps: float
    duration: float
    segments: int
    steps: int
    guidance: float
    timings: dict[str, float]  # seconds by stage, the device's work waited for at each end
    peak_memory: dict[str, int]  # bytes by stage: the GPU's peak allocation, or the RSS peak
    memory: StoredMemory | None
    worker: str
    shots: list[dict[str, Any]]  # a storyboard's: each shot as asked, with its frame span
    audio: StoredAudio | None  # None: silent


class StoredReference(TypedDict):
    """One of a character's reference frames: a PNG in its folder, and where it came from."""

    path: str
    bytes: int
    sha256: str
    width: int
    height: int
    frame: int  # its index in the character's clip
    face: bool  # cropped to the head and shoulders around a face the detector found


class _StrEnum(TypeDecorator[enum.Enum]):
    """A string column read back as its enum, so a typo in a status fails where it is made."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum_class: type[enum.Enum]):
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> enum.Enum | None:
        return None if value is None else self.enum_class(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON}


class Video(Base):
    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Insertion order: the queue's order and the list endpoint's cursor, unique and monotonic
    # even for rows created in the same second.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # an ApiKey id
    kind: Mapped[VideoKind] = mapped_column(_StrEnum(VideoKind), default=VideoKind.CREATE)

    status: Mapped[VideoStatus] = mapped_column(_StrEnum(VideoStatus), default=VideoStatus.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(32))
    # What a running job is doing now (see `moviola.jobs.live`): its stage and step, when they
    # began, its latest preview; written with its heartbeats, null while it is not running.
    live: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    model: Mapped[str] = mapped_column(String(200))  # as the client named it
    engine_model: Mapped[str] = mapped_column(String(500))  # the catalogue id it resolved to
    prompt: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[str] = mapped_column(String(16))
    size: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # everything else asked for
    remixed_from_video_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source_video_id: Mapped[str | None] = mapped_column(String(64), index=True)  # edit / extend
    input_path: Mapped[str | None] = mapped_column(String(500))  # an uploaded reference
    # Variations made by one request (`n`), or by "vary": the rows of a group share this id.
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)

    created_at: Mapped[float] = mapped_column(default=now)
    started_at: Mapped[float | None]
    completed_at: Mapped[float | None]
    expires_at: Mapped[float | None]

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # In the trash: invisible at once, restorable until `purged_at` (files removed then).
    deleted_at: Mapped[float | None] = mapped_column(index=True)
    purged_at: Mapped[float | None]

    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    # What the render produced; all null until the row is completed.
    result: Mapped[RenderResult | None] = mapped_column(JSON)
    files: Mapped[dict[str, StoredFile] | None] = mapped_column(JSON)  # variant → its file
    # SHA-256 of the video file's bytes: how an import recognises a video it already holds.
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # Where an imported video came from and what was recovered of it, field by field.
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The C2PA content credentials read from or written into the file, and their validation.
    credentials: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The creator's verdict: 1 thumbs up, -1 thumbs down, null not rated.
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_note: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[float | None]
    # When the assistant rewrote the prompt: the prompt as typed, and the other versions offered.
    original_prompt: Mapped[str | None] = mapped_column(Text)
    prompt_variants: Mapped[list[str] | None] = mapped_column(JSON)
    # When the creator starred it; null when it is not a favourite.
    favourited_at: Mapped[float | None] = mapped_column(index=True)

    __table_args__ = (
        Index("ix_videos_status_seq", "status", "seq"),
        Index("ix_videos_owner_seq", "owner", "seq"),
        # A model's recent completed runs: the history time estimates go by (jobs/eta.py).
        Index("ix_videos_engine_model_status_seq", "engine_model", "status", "seq"),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))  # shown in listings; the key is never stored
    secret_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[float] = mapped_column(default=now)
    revoked_at: Mapped[float | None]


class WebhookEvent(Base):
    """The outbox: an event is written with the state change it reports, then delivered."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    video_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(default=now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(default=now, index=True)
    delivered_at: Mapped[float | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class Character(Base):
    __tablename__ = "characters"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    video_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[float] = mapped_column(default=now)
    # The frames picked from the clip that a video including the character is conditioned on;
    # null for a character made before they were kept.
    reference_frames: Mapped[list[StoredReference] | None] = mapped_column(JSON)


class AuditEvent(Base):
    """Append-only: who did what to which video, and moderation decisions with their reasons."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[float] = mapped_column(default=now, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), index=True)  # an ApiKey id; null: local
    action: Mapped[str] = mapped_column(String(32))  # create, remix, download, delete, moderation…
    video_id: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditRetention(Base):
    """One row (id 1): audit entries older than `cutoff` may be removed. The retention prune
    moves it forward before it deletes; the database refuses any other change to an entry."""

    __tablename__ = "audit_retention"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cutoff: Mapped[float] = mapped_column(default=0.0)


class Project(Base):
    """A named collection of a creator's conversations, videos and characters, with notes."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(default=now)
    updated_at: Mapped[float] = mapped_column(default=now)
    deleted_at: Mapped[float | None]


class ProjectItem(Base):
    """One thing in a project: a video, a character or a conversation, by id."""

    __tablename__ = "project_items"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # video, character, conversation
    item_id: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[float] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("project_id", "kind", "item_id", name="uq_project_items"),)


class Conversation(Base):
    """A conversation with the assistant. History too long for the model's context is folded
    into `summary`, which covers every message up to `summary_through` (a message seq)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_through: Mapped[int] = mapped_column(Integer, default=0)  # 0: nothing folded yet
    created_at: Mapped[float] = mapped_column(default=now)
    updated_at: Mapped[float] = mapped_column(default=now)
    deleted_at: Mapped[float | None]


class Message(Base):
    """One message of a conversation, in the order `seq` (1, 2, … per conversation)."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64))  # indexed by (it, seq)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user, assistant, system
    content: Mapped[str] = mapped_column(Text, default="")
    # The page the user was on when they wrote it: page, prompt, video id …
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An action the assistant proposed ({"type": "fill_prompt", "prompt": …}) and its `state`:
    # proposed, confirmed or dismissed.
    action: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(default=now)

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )


class ShareLink(Base):
    """An unlisted link to a finished video's read-only page. The link's token is this id
    signed with the server's share secret (`moviola.studio.share_tokens`), so it is never
    stored and can be shown again to the video's owner."""

    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # the video's owner
    created_at: Mapped[float] = mapped_column(default=now)
    expires_at: Mapped[float | None]  # None: never
    revoked_at: Mapped[float | None]


class Preset(Base):
    """A creator's style or camera preset: a named addition to the prompt and the settings
    that go with it, offered in the composer. The built-in presets live in code
    (`moviola.studio.presets`); a row of the same name shadows one for its owner."""

    __tablename__ = "presets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # style, camera
    name: Mapped[str] = mapped_column(String(80))
    prompt_addition: Mapped[str] = mapped_column(Text, default="")
    # Composer settings it sets (steps, guidance, negative_prompt …), as the form names them.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(default=now)
    updated_at: Mapped[float] = mapped_column(default=now)
    # A built-in preset the owner removed is remembered as a hidden row of its name.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("owner", "kind", "name", name="uq_presets_owner_name"),)
