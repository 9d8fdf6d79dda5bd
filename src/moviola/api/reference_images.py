"""A create's `reference_images` in any of their forms → the images' bytes.

File parts (`reference_images[]`, numbered by the body reader, or one `reference_images`) come
first, then the values of the JSON or form field, each an `{image_url}` or a bare URL fetched
or decoded through the same path as `input_reference` (`moviola.api.references`), each
refusal naming its item: `reference_images[1].image_url`. Whether they decode is the
service's to check, with the rest of the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from moviola.api.forms import Body
from moviola.api.references import reference_image
from moviola.config import Settings
from moviola.errors import InvalidRequestError
from moviola.jobs.references import IMAGES, MAX_IMAGES
from moviola.jobs.service import Upload

FIELD = IMAGES
_PART = re.compile(rf"{FIELD}(?:\[(\d+)\])?")


def take_files(body: Body) -> list[Upload]:
    """The reference images sent as file parts, in their order, taken out of `body`."""
    named = [(name, _PART.fullmatch(name)) for name in body.files]
    found = sorted((int(match[1] or 0), name) for name, match in named if match is not None)
    return [body.files.pop(name) for _, name in found]


async def gather(
    files: list[Upload], values: Sequence[Any] | None, settings: Settings
) -> list[Upload]:
    """The file parts, then each value's image; more than the service takes are refused
    before any URL is fetched."""
    if len(files) + len(values or ()) > MAX_IMAGES:
        raise InvalidRequestError(
            f"give 1 to {MAX_IMAGES} reference images (got {len(files) + len(values or ())})",
            param=FIELD,
        )
    images = list(files)
    for value in values or ():
        image = await reference_image(
            value,
            None,
            settings.max_upload_bytes,
            allow_private=settings.fetch_private_urls,
            timeout_s=settings.image_url_timeout_s,
            field=f"{FIELD}[{len(images)}]",
        )
        if image is not None:
            images.append(image)
    return images
