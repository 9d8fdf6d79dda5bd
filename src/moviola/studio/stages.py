"""What a job is doing, in a creator's words: "loading model", "denoising step 7/30"…

One wording for the page as it is first drawn and for every live update after it (see
`library.job_states`), from the stage and step the worker writes into the row (`live`, see
`moviola.jobs.live`).
"""

from __future__ import annotations

from moviola.store.models import Video, VideoKind, VideoStatus

WORDS = {
    "queued": "starting",  # claimed by a worker, nothing reported yet
    "starting": "starting",
    "loading": "loading model",
    "encoding_prompt": "encoding prompt",
    "denoising": "denoising",
    "decoding": "decoding",
    "sound": "adding sound",
    "writing": "encoding video",
    "done": "finishing",
}


def label(video: Video) -> str:
    """The stage (and step) of a queued or running job; empty once it has ended."""
    if video.status == VideoStatus.QUEUED:
        return "waiting"
    if video.status != VideoStatus.IN_PROGRESS:
        return ""
    live = video.live or {}
    stage = str(live.get("stage") or video.stage or "queued")
    words = WORDS.get(stage, stage.replace("_", " "))
    if stage == "denoising" and live.get("steps"):
        words = f"denoising step {live.get('step') or 0}/{live['steps']}"
    segments = int(live.get("segments") or 1)
    if segments > 1 and stage in ("encoding_prompt", "denoising", "decoding"):
        part = "shot" if video.kind == VideoKind.STORYBOARD else "part"
        words += f" · {part} {int(live.get('segment') or 0) + 1}/{segments}"
    return words


def preview_url(video: Video) -> str | None:
    """The latest preview of a running job's latents (a new address for each new one)."""
    count = (video.live or {}).get("preview") or 0
    if video.status != VideoStatus.IN_PROGRESS or not count:
        return None
    return f"/videos/{video.id}/preview?v={count}"
