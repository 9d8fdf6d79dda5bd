"""Request bodies in every shape clients send: JSON, url-encoded forms and multipart.

The `openai` SDK posts `create`, `edit`, `extend` and `create_character` as multipart even
with no file in them, flattening nested values into bracketed names (`video[id]`,
`input_reference[image_url]`, `characters[][id]`); raw HTTP clients post JSON. All of them
become one `Body`: nested plain fields, plus the file parts by name (a list of files sent as
`reference_images[]` is numbered: `reference_images[0]`, `reference_images[1]` …).

Uploads are bounded while they arrive (`moviola.web.uploads`, shared with the Studio): a
declared `Content-Length` over the limit is refused before a byte is read, and a body without
one is counted as it streams (file parts spool to disk past 1 MiB).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from moviola.errors import InvalidRequestError
from moviola.jobs.service import Upload
from moviola.web.uploads import body_limit, content_type, limited, refuse_declared, too_large

MAX_PARTS = 1000

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


@dataclass
class Body:
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)


async def read_body(request: Request, max_upload_bytes: int) -> Body:
    """Parse a POST body; raises `InvalidRequestError` (400) or `TooLargeError` (413)."""
    body = await _parse(request, max_upload_bytes)
    _refuse_surrogates(body.fields)
    for name, upload in body.files.items():
        if upload.filename and _SURROGATE.search(upload.filename):
            raise _not_text([name], "the file name")
    return body


async def _parse(request: Request, max_upload_bytes: int) -> Body:
    kind = content_type(request)
    limit = body_limit(max_upload_bytes, kind)
    await refuse_declared(request, limit, max_upload_bytes)
    stream = limited(request, limit, max_upload_bytes)

    if kind == "multipart/form-data":
        return await _multipart(request, stream, limit, max_upload_bytes)
    raw = b"".join([chunk async for chunk in stream])
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise InvalidRequestError("the form body is not valid UTF-8") from None
        return Body(fields=unflatten(pairs))
    if not raw.strip():
        return Body()
    if kind not in ("", "application/json") and not kind.endswith("+json"):
        raise InvalidRequestError(
            f"unsupported Content-Type {kind!r}: send application/json, "
            "multipart/form-data or application/x-www-form-urlencoded"
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidRequestError(f"the body is not valid JSON ({err})") from None
    except RecursionError:
        raise InvalidRequestError("the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the JSON body must be an object")
    return Body(fields=data)


MAX_DEPTH = 8


def unflatten(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`[("video[id]", "v"), ("characters[][id]", "c")]` → `{"video": {"id": "v"},
    "characters": [{"id": "c"}]}`.

    `a[]` appends to a list; `a[][k]` starts a new list item when the item being filled
    already has `k` (how the SDK writes a list of objects); `a[0][k]` addresses an item.
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:  # not bracket syntax: keep the name as it came
            result[key] = value
            continue
        path = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        if len(path) > MAX_DEPTH:  # no field of the API nests deeper; _put recurses per level
            raise InvalidRequestError(f"the field name {key[:60]!r} is nested too deeply")
        _put(result, path, value, key)
    return result


# --- internals -------------------------------------------------------------------------------

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_surrogates(data: dict[str, Any]) -> None:
    """Half a character in a string is no text: every later step that encodes it (a log
    line, the database, the reply) would fail. JSON lets one in (a `\\ud800` escape with no
    partner, or its bytes, which `json` decodes too), as does a multipart body that names a
    charset such as UTF-7. Query strings and url-encoded forms are decoded as UTF-8 with
    replacement, which leaves none."""
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    raise _not_text(path, "a field name")
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, str(index)]) for index, item in enumerate(value))
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise _not_text(path, "the value")


def _not_text(path: list[str], what: str) -> InvalidRequestError:
    param = ".".join(path) or None
    return InvalidRequestError(
        f"{what}{f' of {param}' if param else ''} holds half a character (an unpaired UTF-16 "
        "surrogate, such as \\ud800 with no partner), which is not text",
        param=param,
        code="invalid_text",
    )


def _put(container: dict | list, path: list[str], value: Any, key: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(container, list):
        if head == "":
            if not rest:
                container.append(value)
                return
            # A new item when the last one already holds this name (or is not an object).
            if not container or not isinstance(container[-1], dict) or rest[0] in container[-1]:
                container.append({})
            _put(container[-1], rest, value, key)
            return
        if not head.isdigit() or int(head) > len(container) or int(head) > MAX_PARTS:
            raise InvalidRequestError(f"bad list index in field name {key!r}", param=key)
        index = int(head)
        if not rest:
            if index == len(container):
                container.append(value)
            else:
                container[index] = value
            return
        if index == len(container):
            container.append([] if rest[0] == "" or rest[0].isdigit() else {})
        _put(container[index], rest, value, key)
        return

    if not rest:
        container[head] = value
        return
    wants_list = rest[0] == "" or rest[0].isdigit()
    child = container.get(head)
    if child is None or not isinstance(child, (list, dict)):
        child = [] if wants_list else {}
        container[head] = child
    elif isinstance(child, dict) != (not wants_list):
        raise InvalidRequestError(f"field {head!r} is given in two shapes", param=head)
    _put(child, rest, value, key)


async def _multipart(
    request: Request, stream: AsyncIterator[bytes], limit: int, max_upload_bytes: int
) -> Body:
    parser = MultiPartParser(
        request.headers,
        stream,  # type: ignore[arg-type]
        max_files=MAX_PARTS,
        max_fields=MAX_PARTS,
        max_part_size=limit,  # a data URL in a plain field can be as big as a file
    )
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise InvalidRequestError(f"malformed multipart body: {err.message}") from None
    pairs: list[tuple[str, Any]] = []
    files: dict[str, Upload] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if value.size is not None and value.size > max_upload_bytes:
                    raise too_large(max_upload_bytes, param=name)
                data = await value.read()
                if len(data) > max_upload_bytes:
                    raise too_large(max_upload_bytes, param=name)
                if name.endswith("[]"):  # a list of files (`reference_images[]`): numbered
                    listed = name[:-2]
                    name = f"{listed}[{sum(k.startswith(f'{listed}[') for k in files)}]"
                if name in files:
                    raise InvalidRequestError(f"{name} is given twice", param=name)
                files[name] = Upload(data=data, filename=value.filename)
            else:
                pairs.append((name, value))
    finally:
        await form.close()
    return Body(fields=unflatten(pairs), files=files)
