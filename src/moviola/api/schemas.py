"""The shapes on the wire: request bodies, the Video object and the other responses.

Responses carry every key the `openai` SDK's types declare, nullable ones as null, and
Moviola's own details under one extra key, `moviola`, which the SDK keeps as an unknown field.
Request models are lenient about how values arrive (form fields are all text; JSON clients
send numbers), and leave the checking of values (sizes, lengths, models) to the service.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from moviola.assistant import ratings
from moviola.jobs.characters import reference_variant
from moviola.jobs.fields import (
    BY_NAME,
    EXTRA_FIELDS,
    ExtraField,
    ObjectList,
    fields_for,
    unknown_field,
)
from moviola.store.models import Character, Video, VideoKind, VideoStatus


def _text(value: Any) -> Any:
    # JSON clients send `"seconds": 8`; forms send "8". Both mean the same.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]


# --- requests ------------------------------------------------------------------------------


class _Request(BaseModel):
    """A request body. Its fields are all it takes: any other name, in JSON, a form or the
    SDK's `extra_body` (which arrive the same way), is a 400 naming it, so that nothing a client
    asks for is silently ignored. A field registered in `moviola.jobs.fields` for the kind of
    request is one of its fields, so this model is the one list of what an endpoint takes."""

    model_config = ConfigDict(extra="ignore")  # never reached: unknown names are refused first
    what: ClassVar[str] = "this request"  # how refusals name the request ("a remix")
    file_parts: ClassVar[tuple[str, ...]] = ()  # the fields that may come as file parts

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            cls.refuse_unknown(data)
            # A form sends an empty field for an unset value; treat it as not given.
            return {k: v for k, v in data.items() if v != "" and v is not None}
        return data

    @classmethod
    def refuse_unknown(cls, fields: dict[str, Any], files: Iterable[str] = ()) -> None:
        """Refuse a field this request does not take, or a key its references do not have
        (`input_reference[foo]`), and a file part where it takes none."""
        for name in fields:
            if name not in cls.model_fields:
                raise unknown_field(name, cls.takes())
        for name in files:
            if name not in cls.file_parts:
                raise unknown_field(name, f"{cls.what} takes files as {_listed(cls.file_parts)}")
        for name, value in fields.items():
            keys = _reference_keys(cls.model_fields[name].annotation)
            items = value if isinstance(value, list) else [value]
            for item in items:
                for key in item if isinstance(item, dict) and keys else ():
                    if key not in keys:
                        raise unknown_field(
                            f"{name}.{key}", f"{name} takes {_listed(sorted(keys))}"
                        )

    @classmethod
    def takes(cls) -> str:
        """What the request takes, as a refusal says it."""
        own = [name for name in cls.model_fields if name not in BY_NAME]
        ours = [name for name in cls.model_fields if name in BY_NAME]
        return f"{cls.what} takes {_listed(own)}" + (
            f"; Moviola's own fields: {_listed(ours)}" if ours else ""
        )


RequestModel = _Request  # the base of every request body, for the routes that parse one


class _Reference(BaseModel):
    """A nested object of a request (`{"image_url"}`, `{"id"}`); its keys are all it takes."""


def _reference_keys(annotation: Any) -> frozenset[str]:
    """The keys of the references a field's annotation holds (`list[X] | None` too)."""
    if isinstance(annotation, type) and issubclass(annotation, _Reference):
        return frozenset(annotation.model_fields)
    return frozenset().union(*(_reference_keys(arg) for arg in get_args(annotation)))


def _listed(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


class MoviolaOptions(_Request):
    """Moviola's extra controls (a Sora client never sends them), as `moviola.jobs.fields`
    lists them for each kind of request."""

    def extras(self) -> dict[str, Any]:
        return self.model_dump(include={f.name for f in EXTRA_FIELDS}, exclude_none=True)


# The request models below derive from these generated ones, which a type checker cannot
# follow (hence their `type: ignore[misc]`); pydantic and the OpenAPI schema see every field.
def _options(kind: VideoKind) -> type[MoviolaOptions]:
    fields: dict[str, Any] = {
        f.name: (_annotation(f, kind) | None, Field(None, description=f.help, **_bounds(f)))
        for f in fields_for(kind)
    }
    options = create_model(f"{kind.value.title()}Options", __base__=MoviolaOptions, **fields)
    options.what = f"a {kind.value}"
    return options


def _bounds(field: ExtraField) -> dict[str, Any]:
    # Documented in the schema; the service checks them, with the message every front end shows.
    if field.bounds is None:
        return {}
    return {"json_schema_extra": {"minimum": field.bounds[0], "maximum": field.bounds[1]}}


def _annotation(field: ExtraField, kind: VideoKind) -> Any:
    # A field with choices is an enum in the OpenAPI schema, as it is to the service.
    if isinstance(field.type, ObjectList):
        return list[_item_model(field.type)]  # type: ignore[misc]
    choices = field.choices_for(kind)
    return Literal[choices] if choices else field.type


_ITEM_MODELS: dict[str, type[BaseModel]] = {}


def _item_model(items: ObjectList) -> type[BaseModel]:
    """One item of a list field (`{"name", "scale"}`) as a model: unknown keys are refused."""
    if items.schema not in _ITEM_MODELS:
        keys: dict[str, Any] = {
            key: (
                Annotated[kind, BeforeValidator(_text)] if kind is str else kind,
                Field(items.defaults[key]) if key in items.defaults else Field(...),
            )
            for key, kind in items.keys.items()
        }
        _ITEM_MODELS[items.schema] = create_model(
            items.schema, __config__=ConfigDict(extra="forbid"), **keys
        )
    return _ITEM_MODELS[items.schema]


class ImageReference(_Reference):
    image_url: str | None = Field(
        default=None, description="A data: URL, or an http(s) URL to fetch."
    )
    file_id: str | None = Field(
        default=None, description="Not supported: Moviola has no Files API."
    )


class VideoReference(_Reference):
    id: Text = Field(description="The id of a completed video.")


class CharacterReference(_Reference):
    id: Text


class CreateVideoRequest(_options(VideoKind.CREATE)):  # type: ignore[misc]
    file_parts: ClassVar[tuple[str, ...]] = ("input_reference", "last_frame", "reference_images")
    prompt: str = Field(description="What the video shows (1–32,000 characters).")
    model: str | None = Field(None, description="sora-2 (default), sora-2-pro or a model id.")
    seconds: Text | None = Field(None, description='Length: "4" (default), "8", "12" …')
    size: str | None = Field(None, description="WIDTHxHEIGHT, any even sides (default 720x1280).")
    input_reference: ImageReference | str | None = Field(
        None,
        description="The first frame: an image file part, or {image_url}. "
        "In multipart, nested fields are bracketed: input_reference[image_url].",
    )
    last_frame: ImageReference | str | None = Field(
        None,
        description="Moviola: the last frame, with input_reference as the first (a model that "
        "makes a video between two frames, such as wan2.1-flf2v-14b-720p): a file part, "
        "{image_url} or a data URL.",
    )
    characters: list[CharacterReference] | None = Field(
        None,
        description="Up to two characters ([{id}]), each named in the prompt: the video is "
        "conditioned on their reference frames (see docs/characters.md).",
    )
    reference_images: list[ImageReference | str] | None = Field(
        None,
        description="Moviola: 1–3 images of a subject or a style the video is conditioned on, "
        "as file parts (reference_images[]), or [{image_url}] / data URLs.",
    )


class RemixVideoRequest(_options(VideoKind.REMIX)):  # type: ignore[misc]
    prompt: str = Field(description="What to change.")


class EditVideoRequest(_options(VideoKind.EDIT)):  # type: ignore[misc]
    file_parts: ClassVar[tuple[str, ...]] = ("video",)
    prompt: str = Field(description="How to edit the source video.")
    video: VideoReference | Text | None = Field(
        None, description="A video file part, or {id} of a completed video (video[id])."
    )
    model: str | None = Field(None, description="For an uploaded video: the model to use.")


class ExtendVideoRequest(_options(VideoKind.EXTEND)):  # type: ignore[misc]
    file_parts: ClassVar[tuple[str, ...]] = ("video",)
    prompt: str = Field(description="What happens next.")
    video: VideoReference | Text | None = Field(
        None, description="A video file part, or {id} of a completed video (video[id])."
    )
    model: str | None = Field(None, description="For an uploaded video: the model to use.")
    seconds: Text | None = Field(None, description='Seconds to add: "4", "8", "12", "16", "20".')


class CreateCharacterRequest(_Request):
    what: ClassVar[str] = "a character"
    file_parts: ClassVar[tuple[str, ...]] = ("video",)
    name: str = Field(description="The character's name (1–80 characters).")


# --- responses -----------------------------------------------------------------------------


class VideoError(BaseModel):
    code: str
    message: str


class AudioDetails(BaseModel):
    """A video's sound: its stream, and what made it."""

    codec: str = Field(description="aac for every video made here; an import's own codec.")
    sample_rate: int
    channels: int
    kind: Literal["model", "source", "soundtrack"] | None = Field(
        None,
        description="model: the video model made it with the picture; source: the source "
        "video's own, kept; soundtrack: a text-to-audio model made it from the prompt.",
    )


class MemoryDetails(BaseModel):
    """Where the model ran: the memory planner's placement (see docs/memory.md)."""

    placement: Literal[
        "resident", "encoder_offload", "model_offload", "group_offload", "sequential"
    ]
    fp8: bool
    vae_tiling: bool
    vae_retried_tiled: bool
    estimated_peak_bytes: int
    device_bytes: int


class RatingDetails(BaseModel):
    value: Literal["up", "down"] | None = Field(description="Thumbs up or down; null: a note only.")
    note: str | None
    at: int = Field(description="When it was rated.")


class MoviolaDetails(BaseModel):
    """What Moviola adds to a Video: how it was made and how long each stage took."""

    kind: str
    stage: str | None
    engine_model: str
    seed: int | None
    source_video_id: str | None
    attempts: int
    render: dict[str, Any] | None
    timings: dict[str, float] | None = Field(
        None, description="Seconds by stage, the GPU's queued work waited for at each end."
    )
    peak_memory: dict[str, int] | None = Field(
        None,
        description="Peak bytes by stage: the most allocated on the GPU (on a CPU, the "
        "worker's resident high-water mark).",
    )
    memory: MemoryDetails | None = None
    # The C2PA content credentials' validation: valid, untrusted (a signer no trust list
    # knows, such as the development identity), invalid; null while there is no video.
    credentials: Literal["valid", "untrusted", "invalid"] | None = None
    # An imported video: where it came from (folder, zip, api, export), its id there, and when
    # it arrived; null for a video made here.
    origin: dict[str, Any] | None = None
    # The sound; null for a silent video (and while there is no video yet).
    audio: AudioDetails | None = None
    group_id: str | None = Field(
        None,
        description="The group of variations this video is one of (a create's `n`); null "
        "for a video made alone.",
    )
    variations: list[str] | None = Field(
        None, description="Every video of the group, in order (this one among them)."
    )
    loras: list[dict[str, Any]] | None = Field(
        None, description='The LoRAs it was made with: [{"name", "scale"}]; null for none.'
    )
    rating: RatingDetails | None = Field(
        None, description="The creator's rating (POST /v1/videos/{id}/rating); null: none."
    )
    original_prompt: str | None = Field(
        None,
        description="With enhance_prompt: the idea as sent; `prompt` is what the assistant "
        "wrote from it. Null otherwise.",
    )
    prompt_variants: list[str] | None = Field(
        None, description="With enhance_prompt: the other prompts the assistant wrote."
    )


class VideoObject(BaseModel):
    id: str
    object: Literal["video"] = "video"
    created_at: int
    completed_at: int | None
    expires_at: int | None
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    model: str
    prompt: str | None
    seconds: str
    size: str
    remixed_from_video_id: str | None
    error: VideoError | None
    moviola: MoviolaDetails


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ReferenceFrame(BaseModel):
    variant: str = Field(description="Its name at the content endpoint: reference_0 …")
    url: str = Field(description="Where to download it (PNG).")
    size: str = Field(description="WIDTHxHEIGHT.")
    cropped_to_face: bool = Field(
        description="Cropped to the head and shoulders around a face the detector found."
    )


class ReferenceFrames(BaseModel):
    count: int
    frames: list[ReferenceFrame]


class CharacterDetails(BaseModel):
    """What Moviola adds to a character: the frames picked from its clip."""

    reference_frames: ReferenceFrames


class CharacterObject(BaseModel):
    id: str
    created_at: int
    name: str
    moviola: CharacterDetails | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


_RenderKey = Literal["render_size", "frames", "fps", "duration", "segments", "steps", "guidance"]
_RENDER_KEYS: tuple[_RenderKey, ...] = (
    "render_size",
    "frames",
    "fps",
    "duration",
    "segments",
    "steps",
    "guidance",
)


def video_object(row: Video, retention_s: float = 0.0) -> dict[str, Any]:
    """A row as the Video object (a plain dict: retrieve is polled hard, so no re-validation).

    With a retention policy, a completed video's expiry is known the moment it completes,
    before the sweeper has written it to the row.
    """
    result = row.result or {}
    failed = row.status == VideoStatus.FAILED
    expires_at = row.expires_at
    if (
        expires_at is None
        and retention_s > 0
        and row.status == VideoStatus.COMPLETED
        and row.completed_at
    ):
        expires_at = row.completed_at + retention_s
    return {
        "id": row.id,
        "object": "video",
        "created_at": int(row.created_at),
        "completed_at": int(row.completed_at) if row.completed_at is not None else None,
        "expires_at": int(expires_at) if expires_at is not None else None,
        "status": row.status,
        "progress": row.progress or 0,
        "model": row.model,
        "prompt": row.prompt,
        "seconds": row.seconds,
        "size": row.size,
        "remixed_from_video_id": row.remixed_from_video_id,
        "error": (
            {
                "code": row.error_code or "generation_failed",
                "message": row.error_message or "the video could not be made",
            }
            if failed
            else None
        ),
        "moviola": {
            "kind": row.kind,
            "stage": row.stage,
            "engine_model": row.engine_model,
            "seed": (row.params or {}).get("seed"),
            "source_video_id": row.source_video_id,
            "attempts": row.attempts or 0,
            "render": {k: result[k] for k in _RENDER_KEYS if k in result} or None,
            "timings": result.get("timings"),
            "peak_memory": result.get("peak_memory"),
            "memory": result.get("memory"),
            "credentials": (row.credentials or {}).get("state"),
            "origin": _origin(row.origin),
            "audio": result.get("audio"),
            "group_id": row.group_id,
            "variations": (row.params or {}).get("variations") if row.group_id else None,
            "loras": (row.params or {}).get("loras") or None,
            "rating": _rating(row),
            "original_prompt": row.original_prompt,
            "prompt_variants": row.prompt_variants,
        },
    }


def _rating(row: Video) -> dict[str, Any] | None:
    if row.rated_at is None:
        return None
    return {"value": ratings.word(row.rating), "note": row.rating_note, "at": int(row.rated_at)}


def _origin(origin: dict[str, Any] | None) -> dict[str, Any] | None:
    # Not the location: a path on the importing machine is nobody else's business.
    if not origin:
        return None
    return {k: origin.get(k) for k in ("source", "original_id", "imported_at") if k in origin}


def character_object(row: Character, base_url: str = "") -> dict[str, Any]:
    """A character as the API shows it; `base_url` (the server's, no trailing slash) makes its
    reference frames' URLs absolute."""
    frames = [
        {
            "variant": reference_variant(index),
            "url": f"{base_url}/v1/videos/characters/{row.id}/content?"
            f"variant={reference_variant(index)}",
            "size": f"{frame['width']}x{frame['height']}",
            "cropped_to_face": frame["face"],
        }
        for index, frame in enumerate(row.reference_frames or [])
    ]
    return {
        "id": row.id,
        "created_at": int(row.created_at),
        "name": row.name,
        "moviola": {"reference_frames": {"count": len(frames), "frames": frames}},
    }


# --- OpenAPI: the bodies of routes that read JSON and multipart alike ---------------------------

# Schemas referenced from request bodies, merged into the document's components.
REQUEST_SCHEMAS: dict[str, Any] = {}


def request_body(model: type[BaseModel], files: dict[str, str] | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as JSON and as a form, `files` as file parts."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        REQUEST_SCHEMAS.setdefault(name, definition)
    REQUEST_SCHEMAS[model.__name__] = schema
    form = copy.deepcopy(schema)
    form["title"] = f"{model.__name__} (form)"
    for name, description in (files or {}).items():
        binary = {"type": "string", "format": "binary", "description": description}
        existing = form["properties"].get(name)
        form["properties"][name] = {"anyOf": [binary, existing]} if existing else binary
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref},
                "multipart/form-data": {"schema": form},
                "application/x-www-form-urlencoded": {"schema": ref},
            },
        }
    }
