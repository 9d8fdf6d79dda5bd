"""What a video file really is, from its bytes: container, media type, and its metadata tags.

The name a file arrives with is only a hint (exports and downloads get renamed); the library
stores and serves each video under the type its bytes have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moviola.errors import MediaError
from moviola.media.formats import suffix_for
from moviola.media.probe import OPEN_OPTIONS


@dataclass(frozen=True)
class Container:
    kind: str  # mp4 | mov | webm | mkv | gif | …
    mime: str
    suffix: str
    tags: dict[str, str]


def read_container(path: Path) -> Container:
    import av

    try:
        with av.open(str(path), container_options=OPEN_OPTIONS) as container:
            names = set(container.format.name.split(","))
            tags = {str(k): str(v) for k, v in (container.metadata or {}).items()}
            codecs = {s.codec_context.name for s in container.streams.video}
    except av.FFmpegError as err:
        raise MediaError(f"{path}: not a readable video ({err})") from err
    kind, mime = _kind(names, tags, codecs)
    return Container(kind, mime, suffix_for(mime, f".{kind}"), tags)


def _kind(names: set[str], tags: dict[str, str], codecs: set[str]) -> tuple[str, str]:
    if "gif" in names:
        return "gif", "image/gif"
    if "mov" in names or "mp4" in names:
        if tags.get("major_brand", "").strip() == "qt":
            return "mov", "video/quicktime"
        return "mp4", "video/mp4"
    if "matroska" in names or "webm" in names:
        if codecs and codecs <= {"vp8", "vp9", "av1"}:
            return "webm", "video/webm"
        return "mkv", "video/x-matroska"
    if "avi" in names:
        return "avi", "video/x-msvideo"
    return sorted(names)[0], "application/octet-stream"
