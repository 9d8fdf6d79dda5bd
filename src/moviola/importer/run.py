"""One import from start to end: recover, bring each candidate in, link lineage, report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from moviola.importer.library import Library, Outcome
from moviola.importer.report import Report
from moviola.importer.sources import Candidate


def run_import(
    library: Library,
    candidates: Iterable[Candidate],
    *,
    problems: Iterable[tuple[str, str]] = (),
    on_bytes: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Import every candidate; a candidate that fails is reported and the rest goes on."""
    report = Report(dry_run=library.dry_run, started_at=time.time())
    report.cleaned = library.recover()
    for location, reason in problems:
        outcome = Outcome(location, "failed", reason)
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    for candidate in candidates:
        outcome = library.bring_in(candidate, on_bytes)
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    report.lineage_linked, report.lineage_missing = library.link_lineage()
    report.finished_at = time.time()
    return report
