"""The library row of an imported video: what the API and the Studio show of it.

Everything recovered about the video goes in, each value where the API expects it (bounded to
what its column holds) and the full story of where it came from in `origin`.
"""

from __future__ import annotations

import time
from typing import Any

from moviola import media
from moviola.engine.request import SoundKind
from moviola.importer import manifest
from moviola.importer.container import Container
from moviola.importer.metadata import iso
from moviola.importer.sources import Candidate
from moviola.render.files import audio_summary
from moviola.store.models import Video, VideoKind, VideoStatus


def build(
    video_id: str,
    candidate: Candidate,
    *,
    owner: str | None,
    files: dict[str, Any],
    sha: str,
    size: int,
    info: media.VideoInfo,
    container: Container,
    credentials: dict[str, Any] | None,
    max_prompt_chars: int,
) -> Video:
    recovered = candidate.metadata
    now = time.time()
    earlier = manifest.restored(candidate.export_entry) if candidate.export_entry else {}
    result = {
        **(earlier.get("result") or {}),
        "render_size": [info.width, info.height],
        "frames": info.frames,
        "fps": float(info.fps),
        "duration": info.duration,
        "container": container.kind,
        "codec": info.codec,
        # The file's own sound, kept as it is (a remix by a silent model keeps it too).
        "audio": audio_summary(info, SoundKind.SOURCE.value),
    }
    found = dict(recovered.found)
    prompt = recovered.get("prompt")
    if prompt is not None and len(prompt) > max_prompt_chars:
        # The API takes no longer prompt: a longer one would break clients that remix it.
        prompt = prompt[:max_prompt_chars]
        found["prompt"] = f"{found.get('prompt')} (cut to {max_prompt_chars} characters)"
    origin = {
        "source": candidate.source,
        "location": candidate.location,
        "original_id": recovered.get("original_id"),
        "remixed_from": recovered.get("remixed_from"),
        "source_video": recovered.get("source_video"),
        "found": found,
        "imported_at": iso(now),
        "bytes": size,
    }
    for name in ("title", "generator"):
        if recovered.get(name):
            origin[name] = recovered.get(name)
    if recovered.extra:
        origin["extra"] = recovered.extra
    key = origin_key(candidate)
    if key:
        origin["key"] = key
    if earlier.get("origin"):
        origin["earlier"] = earlier["origin"]
    if earlier.get("completed_at"):
        origin["completed_at"] = iso(earlier["completed_at"])
    if earlier.get("kind"):
        origin["kind"] = str(earlier["kind"])
    origin = {k: v for k, v in origin.items() if v is not None}
    model = str(recovered.get("model") or "unknown")
    engine_model = str(earlier.get("engine_model") or recovered.get("engine_model") or model)
    return Video(
        id=video_id,
        seq=time.time_ns(),
        owner=owner,
        kind=VideoKind.IMPORT,
        status=VideoStatus.COMPLETED,
        progress=100,
        stage="done",
        model=model[:200],
        engine_model=engine_model[:500],
        prompt=prompt,
        # Both already checked to fit their columns (see `metadata.Recovered.offer`).
        seconds=recovered.get("seconds") or format_seconds(info.duration),
        size=recovered.get("size") or f"{info.width}x{info.height}",
        params=earlier.get("params") or {},
        created_at=earlier.get("created_at") or recovered.get("created_at") or now,
        # When it arrived here, not when it was first made (that is in `origin`): a retention
        # policy counts from this, so an old video is not expired on arrival.
        completed_at=now,
        attempts=0,
        max_attempts=0,
        result=result,
        files=files,
        content_sha256=sha,
        origin=origin,
        credentials=credentials,
        rating=earlier.get("rating"),
        rating_note=earlier.get("rating_note"),
        rated_at=earlier.get("rated_at"),
        original_prompt=earlier.get("original_prompt"),
        prompt_variants=earlier.get("prompt_variants"),
        favourited_at=earlier.get("favourited_at"),
    )


def origin_key(candidate: Candidate) -> str | None:
    """Server and id of a video from another server: recognised before it is downloaded."""
    original = candidate.metadata.get("original_id")
    if candidate.source != "api" or not original:
        return None
    return f"{candidate.location.split('/videos/')[0]}#{original}"


def format_seconds(seconds: float) -> str:
    return str(round(seconds)) if abs(seconds - round(seconds)) < 0.05 else f"{seconds:.2f}"
