"""Moderation: the operator's policy on prompts, and a nudity check of frames.

Prompt policy (checked by the service before anything is queued): blocked terms (whole words,
any case), blocked regular expressions, and optionally any OpenAI-compatible `/v1/moderations`
endpoint. Frame check (in the worker, on the frames of uploaded inputs and of every finished
video): NudeNet's detector, whose model ships inside the `nudenet` package, on a few frames
sampled evenly; a frame whose best score for an exposed-nudity class reaches the threshold
flags the video.

Everything here is off unless configured; the detector loads once per worker process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx

from moviola.config import Settings
from moviola.errors import ServiceUnavailableError
from moviola.render.frame_check import Decision
from moviola.store.blobs import Blobs

log = logging.getLogger("moviola.moderation")

UNAVAILABLE = "moderation_unavailable"
QUARANTINE = "quarantine"  # under the data dir: a blocked video's files once its owner deletes it
# A moderation answer for one prompt is a few kilobytes; anything near this is not one.
MAX_ANSWER_BYTES = 1 << 20


# --- prompts -----------------------------------------------------------------------------------


class PromptPolicy:
    """Blocked terms and patterns, then the external endpoint: the first that objects wins."""

    def __init__(self, settings: Settings):
        self.terms = [t for t in settings.blocked_terms if t.strip()]
        self.patterns = [re.compile(p, re.IGNORECASE) for p in settings.blocked_patterns]
        self._terms_re = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(t.strip()) for t in self.terms) + r")(?!\w)",
                re.IGNORECASE,
            )
            if self.terms
            else None
        )
        self.url = settings.moderation_url
        self.api_key = settings.moderation_api_key
        self.model = settings.moderation_model
        self.timeout = settings.moderation_timeout_s
        self._endpoint = _Endpoint(self.url, self.timeout) if self.url else None

    @property
    def enabled(self) -> bool:
        return bool(self._terms_re or self.patterns or self.url)

    def check(self, prompt: str) -> Decision | None:
        """A blocking decision, or None when the prompt may go ahead."""
        if self._terms_re is not None:
            match = self._terms_re.search(prompt)
            if match:
                return Decision(True, f"the prompt contains the blocked term {match[0]!r}", "terms")
        for pattern in self.patterns:
            if pattern.search(prompt):
                return Decision(
                    True, f"the prompt matches a blocked pattern ({pattern.pattern})", "patterns"
                )
        if self._endpoint is not None:
            return self._ask_endpoint(prompt)
        return None

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()

    def _ask_endpoint(self, prompt: str) -> Decision | None:
        assert self._endpoint is not None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body: dict[str, Any] = {"input": prompt}
        if self.model:
            body["model"] = self.model
        try:
            result = json.loads(self._endpoint.post(body, headers))["results"][0]
            if not isinstance(result, dict):
                raise TypeError("results[0] is not an object")
        except (
            httpx.HTTPError,
            TimeoutError,
            _TooLarge,
            ValueError,
            LookupError,
            TypeError,
        ) as err:
            # Fail closed: an operator who asked for moderation gets no unmoderated video. The
            # caller did nothing wrong, so it is a 503 the SDK retries, not a 400.
            why = f"no answer within {self.timeout:g} s" if isinstance(err, TimeoutError) else err
            log.warning("the moderation endpoint %s failed: %s", self.url, why)
            raise ServiceUnavailableError(
                "the moderation service did not answer; try again later",
                param="prompt",
                code=UNAVAILABLE,
            ) from None
        if not result.get("flagged"):
            return None
        categories = sorted(k for k, v in (result.get("categories") or {}).items() if v)
        reason = "the moderation service flagged the prompt"
        if categories:
            reason += f" ({', '.join(categories)})"
        return Decision(True, reason, "endpoint", {"categories": categories})


class _TooLarge(Exception):
    pass


class _Endpoint:
    """The moderation endpoint, asked over one pooled client with a deadline for the whole
    exchange: connecting, sending, and every byte of the answer.

    httpx's timeouts bound each read, so an endpoint that trickles a byte at a time could hold
    a request for ever; cancelling the request at the deadline cannot be done from a blocking
    call. The client therefore lives on an event loop of its own (a daemon thread, started on
    first use) where `asyncio.wait_for` cancels the exchange wherever it is.
    """

    def __init__(self, url: str, timeout_s: float):
        self.url = url
        self.timeout = timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        """The answer's body (raising for an error status), or TimeoutError at the deadline."""
        loop = self._started()
        future = asyncio.run_coroutine_threadsafe(self._exchange(body, headers), loop)
        # The coroutine ends itself at the deadline; the margin only covers a stalled loop.
        try:
            return future.result(self.timeout + 5)
        except (TimeoutError, concurrent.futures.TimeoutError):  # one class from Python 3.11
            future.cancel()
            raise TimeoutError(f"no answer within {self.timeout:g} s") from None

    def close(self) -> None:
        with self._lock:
            loop, client, self._loop, self._client = self._loop, self._client, None, None
        if loop is not None and client is not None:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(self.timeout)
            loop.call_soon_threadsafe(loop.stop)

    async def _exchange(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        try:
            return await asyncio.wait_for(self._send(body, headers), self.timeout)
        except asyncio.TimeoutError:  # not yet the builtin TimeoutError on Python 3.10
            raise TimeoutError(f"no answer within {self.timeout:g} s") from None

    async def _send(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        assert self._client is not None
        request = self._client.build_request("POST", self.url, json=body, headers=headers)
        response = await self._client.send(request, stream=True)
        try:
            response.raise_for_status()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise _TooLarge(f"an answer of {int(declared):,} bytes")
            answer = bytearray()
            async for chunk in response.aiter_bytes():
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    raise _TooLarge(f"an answer over {MAX_ANSWER_BYTES:,} bytes")
            return bytes(answer)
        finally:
            await response.aclose()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="moderation", daemon=True)
                thread.start()
                self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
                self._loop = loop
            return self._loop


# --- blocked videos' files ---------------------------------------------------------------------


def quarantine(blobs: Blobs, video_id: str, data_dir: Path) -> Path | None:
    """Move the files kept of a video the output check blocked out of its owner's reach (a
    delete would remove them) and the sweeper's, into `<data dir>/quarantine/<video id>/`,
    readable by the server's user only: they are evidence for the operator. None when the
    video left no files."""
    folder = blobs.folder(video_id)
    if not folder.is_dir():
        return None
    target = Path(data_dir) / QUARANTINE / video_id
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if target.exists():  # a move cut short earlier: keep what got there, bring the rest
        target = target.with_name(f"{video_id}.{int(folder.stat().st_mtime_ns)}")
    shutil.move(folder, target)  # a rename on the same disk; a copy, then removal, across two
    target.chmod(0o700)
    log.warning(
        "the files of blocked video %s were deleted by its owner; kept in %s", video_id, target
    )
    return target
