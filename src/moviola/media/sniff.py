"""What kind of video a file is, from its first bytes: its media type and usual suffix.

A file's name is only a hint (uploads arrive as `blob`, downloads get renamed), and some readers
care: C2PA parses an ingredient by the media type it is told, and an MP4 parser refuses a WebM.
The magic numbers of the containers Moviola reads are enough; nothing is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moviola.media.formats import SUFFIXES

HEAD_BYTES = 512  # enough for every signature below, a WebM's DocType and two MPEG-TS packets


@dataclass(frozen=True)
class Kind:
    media_type: str

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.media_type]


MP4 = Kind("video/mp4")
MOV = Kind("video/quicktime")
WEBM = Kind("video/webm")
MKV = Kind("video/x-matroska")
GIF = Kind("image/gif")
AVI = Kind("video/x-msvideo")
OGG = Kind("video/ogg")
FLV = Kind("video/x-flv")
ASF = Kind("video/x-ms-asf")
MPEG_TS = Kind("video/mp2t")
MPEG_PS = Kind("video/mpeg")

_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_TS_PACKET = 188


def sniff(head: bytes) -> Kind | None:
    """The container of a file whose first bytes are `head` (HEAD_BYTES of them suffice);
    None when it is none that Moviola knows."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[4:8] == b"ftyp":  # ISO base media: the major brand tells QuickTime from MP4
        return MOV if head[8:12] == b"qt  " else MP4
    if head[4:8] in _QUICKTIME_ATOMS:  # QuickTime from before `ftyp` existed
        return MOV
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: the DocType says WebM or Matroska
        return WEBM if b"webm" in head[:64] else MKV
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head[:4] == b"OggS":
        return OGG
    if head[:3] == b"FLV":
        return FLV
    if head[:16] == _ASF_GUID:
        return ASF
    if head[:4] == b"\x00\x00\x01\xba":
        return MPEG_PS
    if head[:1] == b"\x47" and head[_TS_PACKET : _TS_PACKET + 1] == b"\x47":
        return MPEG_TS
    return None


def sniff_file(path: Path) -> Kind | None:
    with open(path, "rb") as fh:
        return sniff(fh.read(HEAD_BYTES))
