"""Delivering webhook events (`video.completed`, `video.failed`) from the outbox table.

The queue writes a `WebhookEvent` row in the same transaction as the state change it reports,
so no event is lost to a crash; this outbox sends each one to every configured URL, signed
the Standard Webhooks way (what `client.webhooks.unwrap` in the `openai` SDK verifies).

Delivery is at least once: an event counts as delivered once every URL has answered 2xx.
Which URLs already accepted is remembered only in memory, so after a restart (or when another
process picks the event up) a URL may receive the same event again; `webhook-id` (the event
id) is the idempotency key receivers deduplicate on. A failed attempt is retried with
exponential backoff kept in the row (`attempts`, `next_attempt_at`, `last_error`), so retries
survive restarts; after `webhook_max_attempts` the event stays undelivered with its last error.

With no URLs configured there is no one to tell: due events are marked delivered, so that
adding a URL later does not replay the whole history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from typing import Any, cast

import httpx
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.errors import MoviolaError
from moviola.jobs.periodic import Periodic
from moviola.store.models import WebhookEvent

log = logging.getLogger("moviola.webhooks")

SECRET_PREFIX = "whsec_"
READ_TIMEOUT_S = 10.0
TIMEOUT = httpx.Timeout(READ_TIMEOUT_S, connect=5.0)
# Seconds before retry n (after the n-th failed attempt); the last value repeats. Twelve
# attempts span about a day, long enough to ride out a receiver's outage or redeploy.
BACKOFF_S = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 21600)
JITTER = 0.2  # ±20 %, so that events failed together do not retry in lockstep
BATCH = 100  # events per pass; the rest wait for the next one


def generate_secret() -> str:
    """A new signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one request."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    base = BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


class Outbox(Periodic):
    name = "webhooks"

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        poll_s: float = 1.0,
        client: httpx.Client | None = None,
    ):
        self.urls = list(settings.webhook_urls)
        self.max_attempts = settings.webhook_max_attempts
        self.sessions = sessions
        super().__init__(interval_s=poll_s)
        self.key = _key(settings.webhook_secret) if self.urls else b""
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise MoviolaError(
                    f"webhook URL {endpoint_name(url)!r} is not an http(s) URL", code="config"
                )
        self._client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self._accepted: dict[str, set[str]] = {}  # event id → URLs that answered 2xx

    def run_pass(self) -> int:
        return self.deliver_due()

    def deliver_due(self) -> int:
        """One pass over the events that are due; returns how many were delivered."""
        now = time.time()
        if not self.urls:
            with self.sessions.begin() as session:
                done = cast(
                    CursorResult[Any],
                    session.execute(
                        update(WebhookEvent)
                        .where(
                            WebhookEvent.delivered_at.is_(None),
                            WebhookEvent.next_attempt_at <= now,
                        )
                        .values(delivered_at=now)
                    ),
                )
            return done.rowcount or 0
        with self.sessions() as session:
            due = list(
                session.execute(
                    select(WebhookEvent)
                    .where(
                        WebhookEvent.delivered_at.is_(None),
                        WebhookEvent.next_attempt_at <= now,
                        WebhookEvent.attempts < self.max_attempts,
                    )
                    .order_by(WebhookEvent.next_attempt_at)
                    .limit(BATCH)
                ).scalars()
            )
        delivered = 0
        for event in due:
            if self.stopping:
                break
            if self._claim(event):
                delivered += self._deliver(event)
        return delivered

    # --- internals ---------------------------------------------------------------------------

    def _claim(self, event: WebhookEvent) -> bool:
        """Take the event for this attempt, so that two dispatchers never send it at once.

        The claim pushes `next_attempt_at` past the time the attempt can take: if this process
        dies mid-send, the event simply becomes due again.
        """
        now = time.time()
        hold = 60 + READ_TIMEOUT_S * len(self.urls)
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.id == event.id,
                    WebhookEvent.delivered_at.is_(None),
                    WebhookEvent.next_attempt_at <= now,
                )
                .values(attempts=WebhookEvent.attempts + 1, next_attempt_at=now + hold)
                .returning(WebhookEvent.attempts)
            ).scalar()
        if claimed is None:
            return False
        event.attempts = claimed
        return True

    def _deliver(self, event: WebhookEvent) -> int:
        body = json.dumps(
            {
                "id": event.id,
                "object": "event",
                "created_at": int(event.created_at),
                "type": event.type,
                "data": {"id": event.video_id},
            },
            separators=(",", ":"),
        ).encode()
        accepted = self._accepted.setdefault(event.id, set())
        errors = []
        for url in self.urls:
            if url in accepted:
                continue
            error = self._post(url, event.id, body)
            if error is None:
                accepted.add(url)
            else:
                errors.append(f"{endpoint_name(url)}: {error}")

        now = time.time()
        values: dict = {"last_error": "; ".join(errors) or None}
        if not errors:
            values["delivered_at"] = now
            log.info("delivered %s (%s for %s)", event.id, event.type, event.video_id)
        elif event.attempts >= self.max_attempts:
            values["last_error"] += f" (gave up after {event.attempts} attempts)"
            log.error("gave up on webhook %s: %s", event.id, values["last_error"])
        else:
            values["next_attempt_at"] = now + backoff(event.attempts)
            log.warning("webhook %s failed (attempt %d): %s", event.id, event.attempts, errors)
        if not errors or event.attempts >= self.max_attempts:
            self._accepted.pop(event.id, None)
        with self.sessions.begin() as session:
            session.execute(update(WebhookEvent).where(WebhookEvent.id == event.id).values(values))
        return 0 if errors else 1

    def _post(self, url: str, event_id: str, body: bytes) -> str | None:
        """Send one request; None on a 2xx answer, else why it failed (one line)."""
        timestamp = int(time.time())  # per attempt: receivers reject stale timestamps
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, event_id, timestamp, body),
            "user-agent": "moviola-webhooks",
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except Exception as err:  # refused, timed out, a bad URL: all are this URL's failure
            return f"{type(err).__name__}: {err}".strip()
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code} {' '.join(response.text[:200].split())}".strip()


def _key(secret: str | None) -> bytes:
    """The HMAC key inside a `whsec_…` secret; refuses to run without one."""
    if not secret:
        raise MoviolaError(
            "webhook URLs are configured but MOVIOLA_WEBHOOK_SECRET is not set: receivers "
            f"could not verify unsigned events (generate one, e.g. {generate_secret()})",
            code="config",
        )
    if not secret.startswith(SECRET_PREFIX):
        raise MoviolaError("the webhook secret must start with 'whsec_'", code="config")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise MoviolaError(
            "the webhook secret is not valid base64 after 'whsec_'", code="config"
        ) from None
    if len(key) < 16:
        raise MoviolaError("the webhook secret is too short (at least 16 bytes)", code="config")
    return key


def endpoint_name(url: str) -> str:
    """A webhook URL as logs and stored errors show it: scheme and host only. Endpoints often
    carry their secret in the path or query (chat and automation hooks do), and logs travel."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return (
        f"{parts.scheme or '?'}://{host}{port}/…"
        if parts.path.strip("/")
        else f"{parts.scheme}://{host}{port}"
    )
