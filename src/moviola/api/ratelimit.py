"""Requests per minute per API key: a token bucket per caller, in this process's memory.

A bucket holds up to a minute's allowance and refills continuously, so short bursts pass and a
steady flood is held to the rate; a refusal says when the next request would pass
(`retry-after`), which the `openai` SDK honours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from moviola.errors import TooManyRequestsError


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str | None, tuple[float, float]] = {}  # owner → (tokens, at)
        self._lock = threading.Lock()

    def check(self, owner: str | None) -> None:
        """Take one token for `owner`, or raise `TooManyRequestsError` (no token taken)."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(owner, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[owner] = (tokens, now)
                raise TooManyRequestsError(
                    f"more than {self.per_minute} requests a minute; slow down",
                    retry_after=(1.0 - tokens) / rate,
                )
            self._buckets[owner] = (tokens - 1.0, now)
