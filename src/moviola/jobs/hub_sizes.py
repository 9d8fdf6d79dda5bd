"""How much each model's download weighs, from the Hugging Face Hub's metadata.

Asked for in the background (one thread at a time, all the repos asked for in one go) and
kept for a day, so a page that lists models never waits on the network: until a size is
known it says so. With `HF_HUB_OFFLINE` nothing is asked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)

KEEP_S = 24 * 3600
_sizes: dict[str, tuple[int, float]] = {}  # repo → (bytes, when learnt)
_asking: set[str] = set()
_lock = threading.Lock()


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def known(repo_id: str) -> int | None:
    found = _sizes.get(repo_id)
    return found[0] if found and time.time() - found[1] < KEEP_S else None


def look_up(repo_ids: Iterable[str]) -> None:
    """Learn the sizes not known yet, in a thread; returns at once."""
    if offline():
        return
    with _lock:
        wanted = [r for r in repo_ids if known(r) is None and r not in _asking]
        _asking.update(wanted)
    if wanted:
        threading.Thread(target=_ask, args=(wanted,), name="hub-sizes", daemon=True).start()


def _ask(repo_ids: list[str]) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        for repo_id in repo_ids:
            try:
                info = api.model_info(repo_id, files_metadata=True, timeout=10)
            except Exception as err:  # offline, gated, gone: the page says "not known"
                log.info("no download size for %s: %s", repo_id, err)
                continue
            size = sum(s.size or 0 for s in info.siblings or [])
            _sizes[repo_id] = (size, time.time())
    finally:
        with _lock:
            _asking.difference_update(repo_ids)
