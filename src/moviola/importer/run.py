"""One import from start to end: recover, bring each candidate in, link lineage, report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from moviola.errors import MoviolaError
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
    """Import every candidate as it comes (a server's listing is not waited for to the end);
    a candidate that fails is reported and the rest goes on. A source that fails while listing
    (a server whose listing loops) is reported too, and what came before it stays imported."""
    report = Report(dry_run=library.dry_run, started_at=time.time())
    report.cleaned = library.recover()

    def add(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    for location, reason in problems:
        add(Outcome(location, "failed", reason))
    listing = iter(candidates)
    while True:
        try:
            candidate = next(listing, None)
        except MoviolaError as err:
            add(Outcome(getattr(err, "location", None) or "listing", "failed", err.message))
            break
        if candidate is None:
            break
        add(library.bring_in(candidate, on_bytes))
    lineage = library.link_lineage()
    report.lineage_linked, report.lineage_missing = lineage.linked, lineage.missing
    report.lineage_refused = lineage.refused
    report.finished_at = time.time()
    return report
