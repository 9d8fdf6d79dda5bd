"""From a posted form to a service call, and from a refusal back to the field that caused it.

The service names the field at fault (`param`); the Studio shows the message beside the control
of that name, re-rendering the form with everything the creator typed.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData, UploadFile

from moviola.errors import MoviolaError, TooLargeError, TooManyRequestsError
from moviola.jobs.service import Shot, Upload

# The service's (and engine's) names for fields → the Studio's control names.
FIELD_OF = {
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "input_reference": "image",
    "frames": "seconds",
    "fps": "seconds",
    "video_id": "form",
}
CREATE_FIELDS = (
    "prompt",
    "model",
    "size",
    "seconds",
    "seed",
    "negative_prompt",
    "steps",
    "guidance",
)
_SHOT = re.compile(r"shots\[(\d+)\]\.(\w+)")


def errors_for(err: MoviolaError) -> dict[str, str]:
    """`{control name: plain message}`; "form" for what belongs to no one control."""
    message = str(err)
    if isinstance(err, TooManyRequestsError):
        message = f"{message} — wait for some to finish, then try again"
    elif isinstance(err, TooLargeError):
        message = f"{message} — choose a smaller file"
    param = err.param or "form"
    shot = _SHOT.fullmatch(param)
    if shot:
        return {f"shot_{int(shot[1]) + 1}_{shot[2]}": message}
    return {FIELD_OF.get(param, param): message}


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """What was typed, to put back into the form (the prompt exactly as typed)."""
    out = {name: text(form, name) for name in names}
    if isinstance(form.get("prompt"), str):
        out["prompt"] = form["prompt"]
    return out


def extras(form: FormData) -> dict[str, Any]:
    return {
        "seed": text(form, "seed") or None,
        "negative_prompt": text(form, "negative_prompt") or None,
        "num_inference_steps": text(form, "steps") or None,
        "guidance_scale": text(form, "guidance") or None,
    }


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


async def shots(form: FormData) -> tuple[list[Shot], list[dict[str, str]]]:
    """The storyboard's shots in their order on the page, and their typed values."""
    prompts = form.getlist("shot_prompt")
    seconds = form.getlist("shot_seconds")
    images = form.getlist("shot_image")
    built, typed = [], []
    for index, prompt in enumerate(prompts):
        prompt = prompt if isinstance(prompt, str) else ""
        length = seconds[index] if index < len(seconds) else ""
        length = length.strip() if isinstance(length, str) else ""
        image = await as_upload(images[index]) if index < len(images) else None
        built.append(
            Shot(prompt=prompt if prompt.strip() else None, seconds=length or None, image=image)
        )
        typed.append({"prompt": prompt, "seconds": length})
    return built, typed
