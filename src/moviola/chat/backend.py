"""The one way Moviola talks to a chat model: an OpenAI-compatible server, local or remote.

    chat = ChatBackend.from_settings(settings, local=chat_process)
    text = await chat.complete([{"role": "user", "content": "a prompt for a corgi"}])
    async for delta in chat.stream(messages):
        ...

The server is `MOVIOLA_ASSISTANT_BASE_URL` when set (Ollama, vLLM, LM Studio, llama.cpp,
OpenAI, or another Moviola), else this server's own chat worker. Both are reached through the
`openai` SDK, so the local and the remote path run the same code. Every way a backend can fail
the caller (not ready, unreachable, a 5xx, past the deadline) is one `AssistantUnavailableError`
naming the backend and why; the API answers it as 503 `assistant_unavailable`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from moviola.config import Settings
from moviola.errors import AssistantUnavailableError, InvalidRequestError

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from moviola.chat.process import ChatProcess

T = TypeVar("T")

# Remote servers' tokenizers are unknown here: about four characters a token for English text.
_CHARS_PER_TOKEN = 4


class ChatBackend:
    """The OpenAI-compatible chat server the assistant talks to: MOVIOLA_ASSISTANT_BASE_URL, or
    this server's own chat worker."""

    def __init__(
        self,
        *,
        model: str,
        context_tokens: int,
        timeout_s: float,
        base_url: str | None = None,
        api_key: str | None = None,
        local: ChatProcess | None = None,
        models_dir: Path | None = None,
    ):
        self.model = model  # the model name sent to the server
        self.context_tokens = context_tokens
        self.timeout_s = timeout_s
        self._base_url = base_url
        self._api_key = api_key
        self._local = local
        self._models_dir = models_dir  # where the local model's tokenizer is looked for
        self._client: AsyncOpenAI | None = None
        self._client_url: str | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, local: ChatProcess | None) -> ChatBackend:
        if settings.assistant_base_url:
            return cls(
                model=settings.assistant_model,
                context_tokens=settings.assistant_context_tokens,
                timeout_s=settings.assistant_timeout_s,
                base_url=settings.assistant_base_url.rstrip("/"),
                api_key=settings.assistant_api_key,
            )
        from moviola.engine.chat_models import find_chat_model

        spec = find_chat_model(settings.assistant_model)
        return cls(
            model=spec.id,
            context_tokens=spec.context_tokens,
            timeout_s=settings.assistant_timeout_s,
            local=local,
            models_dir=settings.models_path,
        )

    @property
    def is_local(self) -> bool:
        return self._base_url is None

    @property
    def serving(self) -> bool:
        """Whether this backend has a model to answer with: a remote server is assumed to;
        the local worker, only if its model can run here."""
        return not self.is_local or (self._local is not None and self._local.installed)

    @property
    def url(self) -> str | None:
        """The server's base URL (…/v1); None while the local worker is not ready."""
        if self._base_url is not None:
            return self._base_url
        return self._local.url if self._local is not None else None

    def health(self) -> dict[str, Any]:
        """The assistant's part of `/healthz`: where its replies come from, and whether it can
        answer now (a remote server is assumed to; the local worker, once its model is loaded)
        or why not."""
        ready = self.url is not None
        return {
            "backend": "local" if self.is_local else "remote",
            "model": self.model,
            "ready": ready,
            "reason": None if ready else self._not_ready_reason(),
        }

    def describe(self) -> str:
        """The backend in words, for messages: where replies come from."""
        if self._base_url is not None:
            return f"the assistant's chat server at {self._base_url} (model {self.model})"
        return f"this server's chat worker (model {self.model})"

    # -- the assistant's calls ------------------------------------------------------------

    async def complete(
        self,
        messages: list[dict],
        *,
        response_format: dict | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> str:
        """The whole reply text."""
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if response_format is not None:
            body["response_format"] = response_format
        if seed is not None:
            body["seed"] = seed
        completion = await self.create(body)
        return completion.choices[0].message.content or ""

    async def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> AsyncIterator[str]:
        """The reply's text deltas, as the model writes them."""
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed
        async for chunk in self.create_stream(body):
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes: the local model's own tokenizer, or an estimate for a
        remote server (whose tokenizer Moviola cannot see)."""
        if self.is_local:
            from moviola.chat.tokens import count_tokens

            counted = count_tokens(self.model, text, self._models_dir)
            if counted is not None:
                return counted
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    # -- the OpenAI request itself (the API's /v1/chat/completions forwards through these) ----

    async def create(self, body: dict[str, Any]) -> ChatCompletion:
        """One non-streamed chat completion: `body` is an OpenAI request without `model` and
        `stream`; the whole reply arrives within the deadline or the backend is unavailable."""
        client = self._connect()
        call = client.chat.completions.create(model=self.model, stream=False, **body)
        return await self._within_deadline(call, "the reply")

    async def create_stream(
        self, body: dict[str, Any]
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """One streamed chat completion, chunk by chunk; the first chunk arrives within the
        deadline (each later one within the same time again) or the backend is unavailable."""
        client = self._connect()
        stream = await self._within_deadline(
            client.chat.completions.create(model=self.model, stream=True, **body),
            "the first byte",
        )
        chunks = stream.__aiter__()
        try:
            while True:
                try:
                    chunk = await self._within_deadline(chunks.__anext__(), "the next chunk")
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            # A caller that stops reading (a client gone) closes the connection, so the server
            # stops generating too.
            await stream.close()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> AsyncOpenAI:
        """The SDK client for the backend's current URL (a restarted local worker has a new
        port)."""
        url = self.url
        if url is None:
            raise AssistantUnavailableError(
                f"{self.describe()} is not ready: {self._not_ready_reason()}"
            )
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_url != url or self._client_loop is not loop:
            from openai import AsyncOpenAI

            # A client's connections belong to the event loop that opened them: one that has
            # ended (a test's, a script's `asyncio.run`) takes its connections with it.
            old = self._client if self._client_loop is loop else None
            self._client = AsyncOpenAI(
                base_url=url,
                # The local worker's per-run token; a remote server without keys ignores ours.
                api_key=self._local.token if self._local is not None else (self._api_key or "-"),
                # The SDK's own timeout backs up ours for a stream's later chunks; retries would
                # only spend the caller's deadline on a server that is not answering.
                timeout=self.timeout_s,
                max_retries=0,
            )
            self._client_url, self._client_loop = url, loop
            if old is not None:
                # Closed in the background; the reference keeps the task from being collected.
                closing = loop.create_task(old.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        return self._client

    def _not_ready_reason(self) -> str:
        if self._local is None:
            return "the chat worker is not running"
        return self._local.not_ready_reason()

    async def _within_deadline(self, call: Awaitable[T], what: str) -> T:
        """`call`'s result, or AssistantUnavailableError saying why there is none."""
        import openai

        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except (asyncio.TimeoutError, openai.APITimeoutError):
            raise AssistantUnavailableError(
                f"{self.describe()} did not send {what} within {self.timeout_s:g} s"
            ) from None
        except openai.APIConnectionError as err:
            raise AssistantUnavailableError(
                f"{self.describe()} cannot be reached at {self._client_url}: {err}"
            ) from None
        except openai.APIStatusError as err:
            raise _status_error(self.describe(), err) from None


def _status_error(backend: str, err: Any) -> Exception:
    """A backend's error answer, as the error Moviola's caller gets."""
    error = _error_of(err)
    message = str(error.get("message") or getattr(err, "message", err))
    if err.status_code in (400, 413, 422):
        # The request itself (a conversation too long, a schema the server refuses): the
        # caller's to fix, in the server's own words, naming the field it does.
        param = error.get("param") if isinstance(error.get("param"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
        return InvalidRequestError(
            f"{backend} refused the request: {message}", param=param, code=code
        )
    # 401/403/404 (a wrong key or model name: the operator's set-up), 429 and 5xx (busy or
    # broken): nothing the caller did, and the assistant cannot answer now.
    return AssistantUnavailableError(f"{backend} answered {err.status_code}: {message}")


def _error_of(err: Any) -> dict[str, Any]:
    """The OpenAI error envelope's `error` object, or what the server sent in its place."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
    return {}
