"""What an import did, video by video: for the summary on screen and the `--report` file."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moviola import media
from moviola.importer.library import Outcome
from moviola.importer.metadata import iso


@dataclass
class Report:
    dry_run: bool
    started_at: float
    finished_at: float | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    lineage_linked: int = 0
    lineage_missing: int = 0
    lineage_refused: list[tuple[str, str]] = field(default_factory=list)  # (video id, why)
    cleaned: int = 0  # leftovers of an earlier, interrupted import removed first

    def counts(self) -> dict[str, int]:
        counts = Counter(outcome.status for outcome in self.outcomes)
        return {
            status: counts.get(status, 0)
            for status in ("imported", "would_import", "duplicate", "skipped", "failed")
        }

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def skipped(self) -> list[Outcome]:
        """Nothing to import (a video not completed on its server): not a failure."""
        return [o for o in self.outcomes if o.status == "skipped"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "counts": self.counts(),
            "bytes_imported": sum(o.bytes or 0 for o in self.outcomes if o.status == "imported"),
            "lineage": {
                "linked": self.lineage_linked,
                "parents_missing": self.lineage_missing,
                "refused": [{"video_id": v, "reason": why} for v, why in self.lineage_refused],
            },
            "cleaned_up": self.cleaned,
            "videos": [o.as_dict() for o in self.outcomes],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        media.atomic_write_bytes(path, json.dumps(self.as_dict(), indent=2).encode() + b"\n")
