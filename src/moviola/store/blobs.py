"""Where a video's files live: one folder per video under the data dir's `blobs/`.

Writers put files here atomically (temporary name, then rename), so a name that exists is a
whole file; the row in the database says which of them belong to a finished video.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_ATTEMPT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

# Each file of a video beside its MP4, by suffix (a CLI render's `heron.mp4` has its
# `heron.thumb.webp`), and its media type; a storyboard's shots are `video.shot1.mp4` …
SUFFIXES = {
    "video": (".mp4", "video/mp4"),
    "thumbnail": (".thumb.webp", "image/webp"),
    "spritesheet": (".sprite.jpg", "image/jpeg"),
}
VARIANTS = {name: (f"video{suffix}", mime) for name, (suffix, mime) in SUFFIXES.items()}


def shot_variant(index: int) -> str:
    """The variant name of a storyboard's shot `index` (from 1)."""
    return f"shot_{index}"


def variant_path(video: Path, variant: str) -> Path:
    """Where `variant` of the video at `video` goes: beside it, named after it."""
    if variant.startswith("shot_"):
        return video.with_name(f"{video.stem}.shot{int(variant[5:])}.mp4")
    return video.with_name(video.stem + SUFFIXES[variant][0])


class Blobs:
    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, video_id: str) -> Path:
        if not video_id.replace("_", "").isalnum():  # ids are ours, but never trust a path part
            raise ValueError(f"not a video id: {video_id!r}")
        return self.root / video_id

    def path(self, video_id: str, variant: str, attempt: str | None = None) -> Path:
        """Where a variant goes. Each render attempt writes into a folder of its own, so a
        worker that lost its job can clean up after itself without touching the files of the
        worker that took the job over."""
        folder = self.attempt_folder(video_id, attempt) if attempt else self.folder(video_id)
        return folder / VARIANTS[variant][0]

    def attempt_folder(self, video_id: str, attempt: str) -> Path:
        if not _ATTEMPT.fullmatch(attempt):  # a worker's name: never a path of its own
            raise ValueError(f"not an attempt name: {attempt!r}")
        return self.folder(video_id) / attempt

    def input_path(self, video_id: str, suffix: str) -> Path:
        return self.folder(video_id) / f"input{suffix}"

    def hide_paths(self, text: str) -> str:
        """`text` with this folder's paths replaced: error messages are shown to API clients,
        who have no business knowing the server's disk."""
        return re.sub(re.escape(str(self.root)) + r"[^\s:]*", "the stored file", text)

    def remove(self, video_id: str) -> None:
        shutil.rmtree(self.folder(video_id), ignore_errors=True)
