"""From a posted form to a service call, and from a refusal back to the field that caused it.

The service names the field at fault (`param`); the Studio shows the message beside the control
of that name, re-rendering the form with everything the creator typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from moviola.errors import InvalidRequestError, MoviolaError, TooLargeError, TooManyRequestsError
from moviola.jobs.fields import EXTRA_FIELDS, ExtraField, ObjectList, fields_for
from moviola.jobs.service import Shot, Upload
from moviola.store.models import VideoKind
from moviola.web import uploads


def control(field: ExtraField) -> str:
    """The name of the form control for one of Moviola's own fields."""
    return field.studio or field.name


def item_control(field: ExtraField, key: str, item: str) -> str:
    """A list field's control for one key of one item: each LoRA's scale is `loras.scale.NAME`
    beside a `loras` checkbox valued NAME."""
    return f"{control(field)}.{key}.{item}"


def _chosen(form: FormData, field: ExtraField) -> list[str]:
    return [v.strip() for v in form.getlist(control(field)) if isinstance(v, str) and v.strip()]


def _item_keys(field: ExtraField) -> list[str]:
    assert isinstance(field.type, ObjectList)
    return [key for key in field.type.keys if key != field.type.key]


def extra_controls(kind: VideoKind) -> tuple[str, ...]:
    return tuple(control(field) for field in fields_for(kind))


# The service's (and engine's) names for fields → the Studio's control names.
FIELD_OF = {
    **{field.name: control(field) for field in EXTRA_FIELDS if field.studio},
    "input_reference": "image",
    **{f"reference_images[{i}]": "reference_images" for i in range(3)},
    "last_image": "last_frame",
    "n": "form",  # the buttons that make 2 or 4
    "frames": "seconds",
    "fps": "seconds",  # no control of its own: with the duration, it makes the frame count
    "video_id": "form",
}
CREATE_FIELDS = ("prompt", "model", "size", "seconds", *extra_controls(VideoKind.CREATE))
STORYBOARD_FIELDS = ("model", "size", *extra_controls(VideoKind.STORYBOARD))
_SHOT = re.compile(r"shots\[(\d+)\]\.(\w+)")


def errors_for(err: MoviolaError) -> dict[str, str]:
    """`{control name: plain message}`; "form" for what belongs to no one control."""
    message = str(err)
    if isinstance(err, TooManyRequestsError):
        message = f"{message} — wait a little, then try again"
    elif isinstance(err, TooLargeError):
        message = f"{message} — choose a smaller file"
    param = err.param or "form"
    shot = _SHOT.fullmatch(param)
    if shot:
        return {f"shot_{int(shot[1]) + 1}_{shot[2]}": message}
    return {FIELD_OF.get(param, param): message}


MAX_PARTS = 1000


class _BoundedParser(MultiPartParser):
    """A multipart form whose files together may hold at most `max_upload_bytes`.

    File bytes past the limit are thrown away as they arrive (nothing is kept), while every
    plain field is still read: the form comes back whole with the refusal for the file that
    went over, so the page can show it beside that file's control with all else as typed."""

    def __init__(self, request: Request, stream: Any, max_upload_bytes: int):
        super().__init__(
            request.headers,
            stream,
            max_files=MAX_PARTS,
            max_fields=MAX_PARTS,
            max_part_size=uploads.FIELDS_ALLOWANCE,
        )
        self.max_upload_bytes = max_upload_bytes
        self.file_bytes = 0
        self.over: str | None = None  # the file control that went over the limit
        self._files_named: dict[str, int] = {}
        self._file_param = ""

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        if self._current_part.file is not None:
            name = self._current_part.field_name
            index = self._files_named.get(name, 0)
            self._files_named[name] = index + 1
            # A storyboard's images are one control per shot: name the shot.
            self._file_param = f"shots[{index}].image" if name == "shot_image" else name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.max_upload_bytes:
                self.over = self.over or self._file_param
                return
        super().on_part_data(data, start, end)


async def read_form(
    request: Request, max_upload_bytes: int
) -> tuple[FormData, MoviolaError | None]:
    """A posted form, read as it streams with the API's upload limit (over all its files
    together), and the refusal of it if any.

    A body a little over the limit is still read, to keep what was typed; one far over it
    (past `uploads.DRAIN_LIMIT` more) is refused unread, and the form comes back empty."""
    kind = uploads.content_type(request)
    limit = uploads.body_limit(max_upload_bytes, kind)
    if kind == "multipart/form-data":
        limit += uploads.DRAIN_LIMIT  # file bytes past the limit are counted, not kept
    try:
        await uploads.refuse_declared(request, limit, max_upload_bytes)
        stream = uploads.limited(request, limit, max_upload_bytes)
        if kind == "multipart/form-data":
            parser = _BoundedParser(request, stream, max_upload_bytes)
            form = await parser.parse()
            if parser.over is not None:
                return form, uploads.too_large(max_upload_bytes, param=parser.over)
            return form, None
        return await FormParser(request.headers, stream).parse(), None  # type: ignore[arg-type]
    except MultiPartException as err:
        return FormData(), InvalidRequestError(f"the form could not be read: {err.message}")
    except MoviolaError as err:
        return FormData(), err


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """What was typed, to put back into the form (the prompt exactly as typed); a list field's
    chosen items comma-separated, each item's other keys under their own controls."""
    out = {name: text(form, name) for name in names}
    for field in EXTRA_FIELDS:
        if isinstance(field.type, ObjectList) and control(field) in names:
            chosen = _chosen(form, field)
            out[control(field)] = ",".join(chosen)
            for item in chosen:
                for key in _item_keys(field):
                    out[item_control(field, key, item)] = text(form, item_control(field, key, item))
    prompt = form.get("prompt")
    if isinstance(prompt, str):
        out["prompt"] = prompt
    return out


def extras(form: FormData, kind: VideoKind) -> dict[str, object]:
    """Moviola's own fields of a `kind` request, by their API names (None: left blank)."""
    found: dict[str, object] = {}
    for field in fields_for(kind):
        if isinstance(field.type, ObjectList):
            items = [
                {
                    field.type.key: item,
                    **{k: text(form, item_control(field, k, item)) for k in _item_keys(field)},
                }
                for item in _chosen(form, field)
            ]
            found[field.name] = items or None
        else:
            found[field.name] = text(form, control(field)) or None
    return found


def extra_values(params: Mapping[str, Any], kind: VideoKind) -> dict[str, str]:
    """A stored request's own fields, as the controls of a `kind` form show them."""
    shown: dict[str, str] = {}
    for field in fields_for(kind):
        value = params.get(field.name)
        if isinstance(field.type, ObjectList):
            items = [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []
            shown[control(field)] = ",".join(str(item.get(field.type.key)) for item in items)
            for item in items:
                for key in _item_keys(field):
                    name = str(item.get(field.type.key))
                    shown[item_control(field, key, name)] = str(item.get(key, ""))
        else:
            shown[control(field)] = "" if value is None else str(value)
    return shown


async def upload(form: FormData, name: str) -> Upload | None:
    """A file part, or None for an empty file control."""
    part = form.get(name)
    return await as_upload(part)


async def as_upload(part: Any) -> Upload | None:
    if not isinstance(part, UploadFile) or not part.filename:
        return None
    data = await part.read()
    return Upload(data, part.filename) if data else None


def prompt_value(form: FormData) -> Any:
    """The prompt as the service wants it: None (missing) when nothing but spaces was typed."""
    prompt = form.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def typed_shots(form: FormData) -> list[dict[str, str]]:
    """The storyboard's shots as typed, in their order on the page, to put back in the form."""
    prompts = form.getlist("shot_prompt")
    seconds = form.getlist("shot_seconds")
    typed = []
    for index, prompt in enumerate(prompts):
        length = seconds[index] if index < len(seconds) else ""
        typed.append(
            {
                "prompt": prompt if isinstance(prompt, str) else "",
                "seconds": length.strip() if isinstance(length, str) else "",
            }
        )
    return typed


async def shots(form: FormData) -> list[Shot]:
    """The storyboard's shots in their order on the page."""
    images = form.getlist("shot_image")
    built = []
    for index, typed in enumerate(typed_shots(form)):
        image = await as_upload(images[index]) if index < len(images) else None
        prompt = typed["prompt"]
        built.append(
            Shot(
                prompt=prompt if prompt.strip() else None,
                seconds=typed["seconds"] or None,
                image=image,
            )
        )
    return built
