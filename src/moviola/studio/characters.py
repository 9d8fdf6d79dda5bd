"""Characters in the Studio: the caller's characters as the pickers and the Characters page show
them, and the reference images a Create form sends.

A character's frames are served to the browser by the Studio's own route
(`/characters/{id}/frame/{variant}`), owner-checked through the same service as the API's.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from moviola.jobs.characters import reference_variant
from moviola.jobs.service import Caller, Upload, VideoService
from moviola.studio.forms import as_upload

PICKED = "characters"  # the checkboxes' name: each one's value is a character's id
REFERENCES = "reference_images"  # the file control (multiple) for reference images


def shown(service: VideoService, caller: Caller) -> list[dict[str, Any]]:
    """The caller's characters, newest first, each with its frames' URLs for the page."""
    return [
        {
            "id": row.id,
            "name": row.name,
            "created_at": row.created_at,
            "frames": [
                {
                    "url": f"/characters/{row.id}/frame/{reference_variant(index)}",
                    "width": frame["width"],
                    "height": frame["height"],
                    "face": frame["face"],
                }
                for index, frame in enumerate(row.reference_frames or [])
            ],
        }
        for row in service.characters.owned_by(caller.owner)
    ]


def picked(form: FormData) -> list[str]:
    """The ids of the characters ticked on a form."""
    return [v for v in form.getlist(PICKED) if isinstance(v, str) and v]


async def reference_uploads(form: FormData) -> list[Upload]:
    """The reference images chosen (or dropped) on the Create form, in their order."""
    found = [await as_upload(part) for part in form.getlist(REFERENCES)]
    return [upload for upload in found if upload is not None]
