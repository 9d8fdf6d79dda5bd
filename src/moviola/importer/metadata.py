"""What can be recovered about a video besides its bytes, and where each piece was found.

Metadata comes from several places of differing trust. Each field is taken from the first place
that has it, in the order callers offer them (an export manifest or a Videos-API server first,
then a sidecar `.json`, a manifest listing many videos, a sidecar `.txt`, the container's tags,
and last the file's content credentials), and the place is recorded beside it so a person can
see later why the library says what it says.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

# Fields a video's metadata may carry, and the keys they go by in the wild (community exporters,
# the Videos API, Moviola's own export).
FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "text", "caption", "description"),
    "created_at": ("created_at", "createdAt", "created", "timestamp", "date", "creation_time"),
    "model": ("model", "model_name"),
    "original_id": ("id", "video_id", "generation_id", "gen_id"),
    "remixed_from": ("remixed_from_video_id", "remixed_from", "remix_of", "parent_id"),
    "source_video": ("source_video_id",),
    "title": ("title", "name"),
    "seconds": ("seconds",),
    "size": ("size",),
}
# Keys that name the video file an entry of a manifest describes.
FILE_KEYS = ("file", "path", "filename", "file_name", "video", "video_path", "media", "local_path")
# Lists of videos inside a manifest object.
LIST_KEYS = ("videos", "data", "items", "generations", "entries")

MAX_SIDECAR_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
# Bounds of what a video's metadata may say (its columns are short, and the API shows it).
MAX_SECONDS = 86_400
MAX_ID_CHARS = 200
LATEST_AHEAD_S = 86_400  # clocks differ: a video "made" up to a day ahead is still believed


@dataclass
class Recovered:
    """Field → value, with where each value came from (`found`)."""

    values: dict[str, Any] = field(default_factory=dict)
    found: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # everything else a source said

    def offer(self, name: str, value: Any, where: str) -> None:
        """Take `value` for `name` unless a more trusted source already gave one. A value no
        library could hold (a date in the year 3000, a 20-digit duration) is left out, and
        `found` says so unless a later source gives a good one."""
        if name in self.values or value is None or value == "":
            return
        if name == "created_at":
            value = made_at(value)
            if value is None:
                self._refuse(name, where, "not a date between 1970 and now")
                return
        elif name in ("original_id", "remixed_from", "source_video", "model", "seconds", "size"):
            value = str(value).strip()
            if not value:
                return
            why = _invalid(name, value)
            if why is not None:
                self._refuse(name, where, why)
                return
        elif isinstance(value, str):
            value = value.strip()
            if not value:
                return
        self.values[name] = value
        self.found[name] = where

    def _refuse(self, name: str, where: str, why: str) -> None:
        self.found.setdefault(name, f"ignored: {where} ({why})")

    def offer_mapping(self, data: dict[str, Any], where: str) -> None:
        """Take every known field of a JSON object (a sidecar, a manifest entry, an API row)."""
        for name, keys in FIELDS.items():
            for key in keys:
                value = data.get(key)
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    self.offer(name, value, where)
                    break
        moviola = data.get("moviola")
        if isinstance(moviola, dict):  # a Moviola server's own details
            self.offer("source_video", moviola.get("source_video_id"), where)
            self.offer("engine_model", moviola.get("engine_model"), where)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def made_at(value: Any) -> float | None:
    """When a video was made, as `parse_time` reads it; None unless between 1970 and a day from
    now (a video cannot have been made before or after that, and other times break readers)."""
    seconds = parse_time(value)
    if seconds is None or not 0 <= seconds <= time.time() + LATEST_AHEAD_S:
        return None
    return seconds


def parse_time(value: Any) -> float | None:
    """Unix seconds (or milliseconds) or an ISO 8601 string → Unix seconds; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an integer with hundreds of digits
            return None
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return seconds if math.isfinite(seconds) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    if re.fullmatch(r"\d{1,20}(\.\d{1,9})?", text):
        return parse_time(float(text))
    try:
        when = _fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (ValueError, OverflowError):
        return None


if sys.version_info >= (3, 11):
    _fromisoformat = datetime.fromisoformat
else:
    # What Python 3.11 reads beyond 3.10 (which reads only what `isoformat` writes): any number
    # of fractional digits, a comma before them, basic-format dates and times, offsets of
    # hours alone or without a colon.
    _ISO_8601 = re.compile(
        r"(\d{4})-?(\d{2})-?(\d{2})"
        r"(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?"
        r"(?:([+-])(\d{2})(?::?(\d{2}))?)?)?",
        re.ASCII,
    )

    def _fromisoformat(text: str) -> datetime:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            match = _ISO_8601.fullmatch(text)
            if match is None:
                raise
        year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = match.groups()
        normal = f"{year}-{month}-{day}"
        if hour is not None:
            normal += f"T{hour}:{minute or '00'}:{second or '00'}"
            if fraction:
                normal += "." + fraction[:6].ljust(6, "0")
            if sign:
                normal += f"{sign}{zone_h}:{zone_m or '00'}"
        return datetime.fromisoformat(normal)


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # a row written before dates were checked
        return None


class MetadataError(ValueError):
    """A metadata file that cannot be read; the message says why, for the report."""


def load_json(data: bytes) -> Any:
    """Parsed JSON, or MetadataError: a file nested so deep it would exhaust the stack is as
    unreadable as one that is not JSON at all, and neither may stop an import."""
    try:
        return json.loads(data)
    except RecursionError:
        raise MetadataError("not read: its JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise MetadataError(f"not valid JSON ({err})") from None


def read_sidecar_json(data: bytes, where: str = "sidecar json") -> Recovered:
    """A `<stem>.json` beside a video: one object describing it (MetadataError if unreadable)."""
    recovered = Recovered()
    parsed = load_json(data)
    if isinstance(parsed, dict):
        recovered.offer_mapping(parsed, where)
        recovered.extra = {k: v for k, v in parsed.items() if _small(v)}
    return recovered


def read_sidecar_text(data: bytes) -> str | None:
    """A `<stem>.txt` beside a video: its prompt."""
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        text = data.decode("latin-1").strip()
    return text or None


@dataclass
class ManifestEntries:
    """The entries of a manifest that lists many videos, findable by file path, name or id."""

    by_path: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    exact: bool = False  # by path only (an export manifest names every file it holds)

    def add(self, entry: dict[str, Any], folder: PurePosixPath) -> None:
        for key in FILE_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and value and "://" not in value:
                relative = PurePosixPath(value.replace("\\", "/"))
                self.by_path.setdefault(str(folder / relative), entry)
                self.by_name.setdefault(relative.name, entry)
                break
        for key in FIELDS["original_id"]:
            value = entry.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                self.by_id.setdefault(str(value), entry)
                break

    def find(self, path: PurePosixPath) -> dict[str, Any] | None:
        if self.exact:
            return self.by_path.get(str(path))
        return (
            self.by_path.get(str(path))
            or self.by_name.get(path.name)
            or self.by_id.get(path.stem)
            or self.by_id.get(path.stem.split(".")[0])
        )


def manifest_entries(data: bytes, name: str) -> list[dict[str, Any]] | None:
    """The video entries of a manifest file (`.json` listing many videos, or a `.csv`), or None
    when the file is not one; MetadataError when it cannot be parsed."""
    if name.lower().endswith(".csv"):
        try:
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        except (UnicodeDecodeError, csv.Error) as err:
            raise MetadataError(f"not a readable CSV file ({err})") from None
        return [dict(row) for row in rows] or None
    parsed = load_json(data)
    items = parsed
    if isinstance(parsed, dict):
        items = next((parsed[k] for k in LIST_KEYS if isinstance(parsed.get(k), list)), None)
    if not isinstance(items, list):
        return None
    entries = [item for item in items if isinstance(item, dict)]
    return entries or None


def container_tags(tags: dict[str, str], recovered: Recovered) -> None:
    """MP4/MOV tags: the title, the comment (Moviola and many tools put the prompt there) and the
    creation time."""
    lowered = {key.lower(): value for key, value in tags.items()}
    prompt = lowered.get("comment") or lowered.get("description") or lowered.get("synopsis")
    recovered.offer("prompt", prompt, "mp4 tags")
    recovered.offer("title", lowered.get("title"), "mp4 tags")
    created = lowered.get("creation_time") or lowered.get("date")
    if created and not created.startswith(("1904-01-01", "1970-01-01")):  # unset epoch values
        recovered.offer("created_at", created, "mp4 tags")


def credentials_hints(credentials: dict[str, Any] | None, recovered: Recovered) -> None:
    """What content credentials say about the video's making: when, and by which generator."""
    if not credentials:
        return
    recovered.offer("created_at", credentials.get("signed_at"), "c2pa")
    recovered.offer("model", credentials.get("model"), "c2pa")
    recovered.offer("generator", credentials.get("generator"), "c2pa")


def sidecar_names(name: str) -> tuple[str, ...]:
    """File names a sidecar of `name` may have: `clip.json` and `clip.mp4.json` (and `.txt`)."""
    stem = os.path.splitext(name)[0]
    return (f"{stem}.json", f"{name}.json", f"{stem}.txt", f"{name}.txt")


def _small(value: Any) -> bool:
    try:
        return len(json.dumps(value, default=str)) <= 4096
    except (ValueError, RecursionError):
        return False


def _invalid(name: str, value: str) -> str | None:
    """Why `value` cannot be this field's (its column is short, and the API shows it)."""
    if name == "seconds":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if not (re.fullmatch(r"\d{1,6}(\.\d{1,3})?", value) and 0 < number <= MAX_SECONDS):
            return f"not a duration between 0 and {MAX_SECONDS} seconds"
    elif name == "size" and not re.fullmatch(r"\d{1,5}x\d{1,5}", value):
        return "not WIDTHxHEIGHT"
    elif len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters"
    return None
