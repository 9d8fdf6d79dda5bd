"""What a video file really is, from its bytes: container, media type, and its metadata tags.

The name a file arrives with is only a hint (exports and downloads get renamed); the library
stores and serves each video under the type its bytes have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moviola.errors import MediaError

# Demuxers a video may be read through (as in `moviola.media.probe`): none of them reads
# other files named inside the one given.
_OPEN_OPTIONS = {
    "format_whitelist": "mov,matroska,webm,avi,mpegts,mpeg,flv,ogg,asf,gif",
    "protocol_whitelist": "file",
}


@dataclass(frozen=True)
class Container:
    kind: str  # mp4 | mov | webm | mkv | gif | …
    mime: str
    suffix: str
    tags: dict[str, str]


def read_container(path: Path) -> Container:
    import av

    try:
        with av.open(str(path), container_options=_OPEN_OPTIONS) as container:
            names = set(container.format.name.split(","))
            tags = {str(k): str(v) for k, v in (container.metadata or {}).items()}
            codecs = {s.codec_context.name for s in container.streams.video}
    except av.FFmpegError as err:
        raise MediaError(f"{path}: not a readable video ({err})") from err
    if "gif" in names:
        return Container("gif", "image/gif", ".gif", tags)
    if "mov" in names or "mp4" in names:
        brand = tags.get("major_brand", "").strip()
        if brand == "qt":
            return Container("mov", "video/quicktime", ".mov", tags)
        return Container("mp4", "video/mp4", ".mp4", tags)
    if "matroska" in names or "webm" in names:
        if codecs and codecs <= {"vp8", "vp9", "av1"}:
            return Container("webm", "video/webm", ".webm", tags)
        return Container("mkv", "video/x-matroska", ".mkv", tags)
    if "avi" in names:
        return Container("avi", "video/x-msvideo", ".avi", tags)
    first = sorted(names)[0]
    return Container(first, "application/octet-stream", f".{first}", tags)
