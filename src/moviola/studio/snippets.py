""" "Copy as API call": the `openai` SDK code and the curl command that make the same video."""

from __future__ import annotations

import json
import shlex
from typing import Any

from moviola.store.models import Video

_EXTRA_NAMES = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale", "fps")


def _extras(video: Video) -> dict[str, Any]:
    params = video.params or {}
    return {name: params[name] for name in _EXTRA_NAMES if params.get(name) is not None}


def _py(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def python(video: Video, base_url: str) -> str:
    """The SDK call, with Moviola's extra fields in `extra_body` (the SDK does not know them)."""
    extras = _extras(video)
    head = (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}/v1", api_key="YOUR_MOVIOLA_KEY")\n'
    )
    lines: list[str]
    if video.kind == "remix" and video.remixed_from_video_id:
        extras.pop("seed", None)
        lines = [
            "video = client.videos.remix(",
            f"    {_py(video.remixed_from_video_id)},",
            f"    prompt={_py(video.prompt)},",
        ]
    elif video.kind in ("edit", "extend") and video.source_video_id:
        method = "edit" if video.kind == "edit" else "extend"
        lines = [
            f"video = client.videos.{method}(",
            f"    video={{'id': {_py(video.source_video_id)}}},",
            f"    prompt={_py(video.prompt)},",
        ]
        if video.kind == "extend":
            lines.append(f"    seconds={_py(str((video.params or {}).get('extend_seconds', 4)))},")
    elif video.kind == "storyboard":
        shots = (video.params or {}).get("shots", [])
        lines = ["# A storyboard renders in the Studio; each shot alone would be:"]
        for shot in shots:
            lines.append(
                f"# client.videos.create(model={_py(video.model)}, prompt={_py(shot['prompt'])}, "
                f"seconds={_py(str(shot['seconds']))}, size={_py(video.size)})"
            )
        return head + "\n" + "\n".join(lines) + "\n"
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
    fields: list[tuple[str, str]] = []
    if video.kind == "remix" and video.remixed_from_video_id:
        url = f"{base_url}/v1/videos/{video.remixed_from_video_id}/remix"
        fields.append(("prompt", video.prompt or ""))
    elif video.kind in ("edit", "extend") and video.source_video_id:
        url = f"{base_url}/v1/videos/{'edits' if video.kind == 'edit' else 'extensions'}"
        fields += [("video[id]", video.source_video_id), ("prompt", video.prompt or "")]
        if video.kind == "extend":
            fields.append(("seconds", str((video.params or {}).get("extend_seconds", 4))))
    else:
        url = f"{base_url}/v1/videos"
        fields += [
            ("model", video.model),
            (
                "prompt",
                (video.prompt or "").split("\n")[0]
                if video.kind == "storyboard"
                else video.prompt or "",
            ),
            ("size", video.size),
            ("seconds", video.seconds),
        ]
    extras = _extras(video)
    if video.kind == "remix":
        extras.pop("seed", None)
    fields += [(name, str(value)) for name, value in extras.items()]
    parts = [f"curl {shlex.quote(url)}", '-H "Authorization: Bearer $MOVIOLA_API_KEY"']
    parts += [f"--form-string {shlex.quote(f'{name}={value}')}" for name, value in fields]
    if video.kind == "create" and video.input_path:
        parts.append("-F input_reference=@first-frame.png")
    return " \\\n  ".join(parts) + "\n"
