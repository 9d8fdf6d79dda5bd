""" "Copy as API call": the `openai` SDK code and the curl command that make the same video.

Both read the key from one place, the `MOVIOLA_API_KEY` environment variable, and run as pasted
without it on a server that has no keys (loopback needs none). A storyboard has
no single Videos-API call (the Studio chains its shots in one job), and its snippets say so.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from moviola.jobs.fields import fields_for
from moviola.store.models import Video, VideoKind

KEY_VARIABLE = "MOVIOLA_API_KEY"
NO_KEY = "unused"  # what the SDK sends when the variable is unset: it refuses an empty key
_STORYBOARD_NOTE = (
    "A storyboard has no single Videos-API call: the Studio renders its shots as one job, "
    "each continuing from the last frame of the one before. Each shot alone would be:"
)


def _extras(video: Video) -> dict[str, Any]:
    """Moviola's own fields (the SDK does not know them: they travel in `extra_body`)."""
    params = video.params or {}
    # An imported video is made again by a plain create.
    kind = VideoKind.CREATE if video.kind == VideoKind.IMPORT else video.kind
    extras = {f.name: params[f.name] for f in fields_for(kind) if params.get(f.name) is not None}
    if kind == VideoKind.REMIX:
        extras.pop("seed", None)  # a remix draws a new seed, whatever is sent
    return extras


def _py(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _from_source(video: Video) -> bool:
    return video.kind in ("edit", "extend") and video.source_video_id is not None


def _extend_seconds(video: Video) -> str:
    return str((video.params or {}).get("extend_seconds", 4))


def python(video: Video, base_url: str) -> str:
    """The SDK call, with Moviola's extra fields in `extra_body`."""
    extras = _extras(video)
    head = (
        "import os\n\n"
        f"from openai import OpenAI{', omit' if _from_source(video) else ''}\n\n"
        f'client = OpenAI(\n    base_url="{base_url}/v1",\n'
        f'    api_key=os.environ.get("{KEY_VARIABLE}", "{NO_KEY}"),\n)\n'
    )
    lines: list[str]
    if video.kind == "storyboard":
        lines = [f"# {_STORYBOARD_NOTE}"]
        for shot in (video.params or {}).get("shots", []):
            lines.append(
                f"# client.videos.create(model={_py(video.model)}, prompt={_py(shot['prompt'])}, "
                f"seconds={_py(str(shot['seconds']))}, size={_py(video.size)})"
            )
        return head + "\n" + "\n".join(lines) + "\n"
    if video.kind == "remix" and video.remixed_from_video_id:
        lines = [
            "video = client.videos.remix(",
            f"    {_py(video.remixed_from_video_id)},",
            f"    prompt={_py(video.prompt)},",
        ]
    elif _from_source(video):
        # The SDK's `video` parameter takes a file; a stored video goes by id in the body, with
        # the model that worked on it (an "add sound" edit may name another than the source's).
        extras = {"video": {"id": video.source_video_id}, "model": video.model, **extras}
        lines = [
            f"video = client.videos.{video.kind}(",
            f"    prompt={_py(video.prompt)},",
            "    video=omit,",
        ]
        if video.kind == "extend":
            lines.append(f"    seconds={_py(_extend_seconds(video))},")
    else:
        lines = [
            "video = client.videos.create(",
            f"    model={_py(video.model)},",
            f"    prompt={_py(video.prompt)},",
            f"    size={_py(video.size)},",
            f"    seconds={_py(video.seconds)},",
        ]
        if video.input_path:
            lines.append('    input_reference=open("first-frame.png", "rb"),')
    if extras:
        lines.append(f"    extra_body={extras!r},")
    lines.append(")")
    return head + "\n" + "\n".join(lines) + "\n"


def curl(video: Video, base_url: str) -> str:
    """The same call over plain HTTP, as a multipart form (what the SDK sends)."""
    if video.kind == "storyboard":
        lines = [f"# {_STORYBOARD_NOTE}"]
        for shot in (video.params or {}).get("shots", []):
            shot_fields = [
                ("model", video.model),
                ("prompt", " ".join(str(shot["prompt"]).split())),
                ("size", video.size),
                ("seconds", str(shot["seconds"])),
            ]
            lines.append("# " + _curl_line(f"{base_url}/v1/videos", shot_fields, " "))
        return "\n".join(lines) + "\n"
    fields: list[tuple[str, str]] = []
    if video.kind == "remix" and video.remixed_from_video_id:
        url = f"{base_url}/v1/videos/{video.remixed_from_video_id}/remix"
        fields.append(("prompt", video.prompt or ""))
    elif _from_source(video):
        url = f"{base_url}/v1/videos/{'edits' if video.kind == 'edit' else 'extensions'}"
        fields += [
            ("video[id]", video.source_video_id or ""),
            ("model", video.model),
            ("prompt", video.prompt or ""),
        ]
        if video.kind == "extend":
            fields.append(("seconds", _extend_seconds(video)))
    else:
        url = f"{base_url}/v1/videos"
        fields += [
            ("model", video.model),
            ("prompt", video.prompt or ""),
            ("size", video.size),
            ("seconds", video.seconds),
        ]
    for name, value in _extras(video).items():
        if isinstance(value, list):  # a list of objects, bracketed as the SDK sends one
            fields += [(f"{name}[][{k}]", str(v)) for item in value for k, v in item.items()]
        else:
            fields.append((name, str(value)))
    command = _curl_line(url, fields, " \\\n  ")
    if video.kind == "create" and video.input_path:
        command += " \\\n  -F input_reference=@first-frame.png"
    return command + "\n"


def _curl_line(url: str, fields: list[tuple[str, str]], joiner: str) -> str:
    key = f"${{{KEY_VARIABLE}:-{NO_KEY}}}"
    parts = [f"curl {shlex.quote(url)}", f'-H "Authorization: Bearer {key}"']
    parts += [f"--form-string {shlex.quote(f'{name}={value}')}" for name, value in fields]
    return joiner.join(parts)
