"""The export manifest: `manifest.json` at the top of what `moviola export` writes.

The format is documented in `docs/import-export.md`; this module is its single definition.
Everything a library knows about a video goes in, so `moviola import` of an export rebuilds the
same library: bytes (checked against their SHA-256), prompts, models, lineage, dates, the
render's details, where each video originally came from and its content credentials.
"""

from __future__ import annotations

from typing import Any

from moviola.assistant import ratings
from moviola.importer.metadata import iso, made_at
from moviola.store.models import Video

FORMAT = "moviola.export"
VERSION = 1
NAME = "manifest.json"  # at the top of an export

# Where each file of a video goes inside the export, and the suffix of each variant.
VIDEO_FOLDER = "videos"
PREVIEW_SUFFIX = {"thumbnail": ".thumb", "spritesheet": ".sprite"}


def is_export(parsed: Any) -> bool:
    return isinstance(parsed, dict) and parsed.get("format") == FORMAT


def check_version(parsed: dict[str, Any]) -> str | None:
    """Why this manifest cannot be read, or None."""
    version = parsed.get("version")
    if not isinstance(version, int) or version > VERSION:
        return f"manifest version {version!r} is newer than this Moviola reads ({VERSION})"
    return None


def entry(row: Video, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One video's entry; `files` maps each variant to its `{file, bytes, sha256, mime}` in the
    export."""
    video = files["video"]
    return {
        "id": row.id,
        "file": video["file"],
        "sha256": video["sha256"],
        "bytes": video["bytes"],
        "mime": video["mime"],
        "thumbnail": files.get("thumbnail"),
        "spritesheet": files.get("spritesheet"),
        "prompt": row.prompt,
        "model": row.model,
        "engine_model": row.engine_model,
        "kind": row.kind,
        "seconds": row.seconds,
        "size": row.size,
        "created_at": iso(row.created_at),
        "completed_at": iso(row.completed_at),
        # Exact, for the round trip; the ISO forms above are for people (to the microsecond).
        "created_at_unix": row.created_at,
        "remixed_from_video_id": row.remixed_from_video_id,
        "source_video_id": row.source_video_id,
        "params": row.params or {},
        "result": row.result or {},
        "origin": row.origin,
        "credentials": row.credentials,
        "rating": ratings.word(row.rating),
        "rating_note": row.rating_note,
        "rated_at": row.rated_at,
        "original_prompt": row.original_prompt,
        "prompt_variants": row.prompt_variants,
        "favourited_at": row.favourited_at,
    }


def document(entries: list[dict[str, Any]], exported_at: float, generator: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso(exported_at),
        "generator": generator,
        "count": len(entries),
        "videos": entries,
    }


def restored(entry: dict[str, Any]) -> dict[str, Any]:
    """The row fields an import takes from an export entry, as they were in the library."""
    return {
        "kind": entry.get("kind"),
        "engine_model": entry.get("engine_model"),
        "params": entry.get("params") if isinstance(entry.get("params"), dict) else {},
        "result": entry.get("result") if isinstance(entry.get("result"), dict) else {},
        "completed_at": made_at(entry.get("completed_at")),
        "created_at": made_at(entry.get("created_at_unix")),
        "origin": entry.get("origin") if isinstance(entry.get("origin"), dict) else None,
        **_rating(entry),
        **_prompt_history(entry),
        "favourited_at": made_at(entry.get("favourited_at")),
    }


def _rating(entry: dict[str, Any]) -> dict[str, Any]:
    """The creator's rating, if the entry holds a well-formed one; else none."""
    word = entry.get("rating")
    rating = ratings.RATINGS.get(word) if isinstance(word, str) else None
    note = entry.get("rating_note")
    note = note[: ratings.MAX_NOTE_CHARS] if isinstance(note, str) and note else None
    rated_at = made_at(entry.get("rated_at"))
    if (rating is None and note is None) or rated_at is None:
        return {}
    return {"rating": rating, "rating_note": note, "rated_at": rated_at}


def _prompt_history(entry: dict[str, Any]) -> dict[str, Any]:
    """The prompt as typed before the assistant rewrote it, and the other versions it offered,
    where the entry holds well-formed ones."""
    original = entry.get("original_prompt")
    variants = entry.get("prompt_variants")
    if not (isinstance(variants, list) and all(isinstance(v, str) for v in variants)):
        variants = None
    return {
        "original_prompt": original if isinstance(original, str) and original else None,
        "prompt_variants": variants or None,
    }
