"""A chat model, loaded once, writing replies token by token.

    engine = ChatEngine("qwen3-1.7b", models_dir)
    reply = engine.generate(messages, ChatParams(max_tokens=200, seed=7))
    for delta in reply:          # text as it is written
        ...
    reply.finish_reason, reply.prompt_tokens, reply.completion_tokens

The loop is our own (a forward pass per token over transformers' KV cache) rather than
`model.generate`: it samples from a seeded generator of its own (the same seed, the same reply,
whatever else ran), stops at stop strings and at a cancel event between any two tokens, and
masks each step's logits with llguidance when a `response_format` asks for JSON, so that the
reply is valid JSON for the schema whatever the model's weights (even tiny-chat's noise).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moviola.engine.chat_models import ChatModelSpec, chat_weights, find_chat_model
from moviola.errors import InvalidRequestError

log = logging.getLogger(__name__)

# JSON the model writes under a schema: compact, so that a model cannot pad it with whitespace
# for ever (a small one would), and every token it spends is content.
_JSON_OPTIONS: Any = {"whitespace_flexible": False}  # llguidance's JsonCompileOptions


def _cache_argument() -> str:
    """What transformers calls the KV cache in a forward pass: `cache` from 5.x on,
    `past_key_values` before (and in the output alike)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    fields = getattr(CausalLMOutputWithPast, "__dataclass_fields__", {})
    return "cache" if "cache" in fields else "past_key_values"


class ContextLengthError(InvalidRequestError):
    code = "context_length_exceeded"


@dataclass(frozen=True)
class ChatParams:
    """How one reply is sampled (the OpenAI request's fields of the same names)."""

    max_tokens: int | None = None  # None: as many as the context leaves
    temperature: float = 1.0  # 0: always the likeliest token
    top_p: float = 1.0
    seed: int | None = None  # None: a fresh one
    stop: tuple[str, ...] = ()
    # {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema":
    # {"name": …, "schema": {…}}}
    response_format: dict[str, Any] | None = None


@dataclass
class Reply:
    """A reply being written: iterate for its text deltas; the counts are final once done."""

    _deltas: Iterator[str]
    prompt_tokens: int
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" or "length"; None while writing or if cancelled

    def __iter__(self) -> Iterator[str]:
        return self._deltas

    def text(self) -> str:
        """The whole reply (writes it, if not written yet)."""
        return "".join(self._deltas)


class ChatEngine:
    """One chat model on one device. `generate` may be called from any thread, one reply at a
    time (a lock keeps them in turn)."""

    def __init__(self, model_id: str, models_dir: Path | None = None, device: str = "auto"):
        import torch

        self.spec: ChatModelSpec = find_chat_model(model_id)
        folder = chat_weights(self.spec, models_dir)
        self.device = _resolve_device(device)
        # Half precision on a GPU (as the models were trained); float32 on a CPU, where
        # bf16 matmuls are slow or missing.
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        if folder is None:
            from moviola.engine.tiny_chat import build_tiny_chat

            model, self.tokenizer = build_tiny_chat()
            model = model.to(dtype)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        self.model = model.to(self.device).eval()
        self.context_tokens = self.spec.context_tokens
        self._eos = _eos_ids(self.model, self.tokenizer)
        self._cache_arg = _cache_argument()
        self._ll_tokenizer: Any = None
        self._ll_lock = threading.Lock()
        self._lock = threading.Lock()
        log.info("chat model %s loaded on %s", self.spec.id, self.device)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The conversation as the model reads it: its chat template, ready for its reply."""
        extra = {"enable_thinking": False} if self.spec.hybrid_thinking else {}
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **extra
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self,
        messages: list[dict[str, str]],
        params: ChatParams | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """A reply to `messages` ({"role", "content"} each). Errors in the request (too long,
        a bad schema) are raised here, before the first token."""
        params = params or ChatParams()
        ids = self.prompt_ids(messages)
        room = self.context_tokens - len(ids)
        if room <= 0:
            raise ContextLengthError(
                f"the conversation takes {len(ids)} tokens and {self.spec.id} reads at most "
                f"{self.context_tokens}: shorten it",
                param="messages",
            )
        budget = room if params.max_tokens is None else min(params.max_tokens, room)
        matcher = self._matcher(params.response_format)
        reply = Reply(iter(()), prompt_tokens=len(ids))
        reply._deltas = self._write(
            reply, ids, budget, params, matcher, cancel or threading.Event()
        )
        return reply

    # --- internals ---------------------------------------------------------------------------

    def _write(
        self,
        reply: Reply,
        ids: list[int],
        budget: int,
        params: ChatParams,
        matcher: Any,
        cancel: threading.Event,
    ) -> Iterator[str]:
        import torch

        with self._lock, torch.inference_mode():
            generator = torch.Generator(device=self.device)
            generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))
            text = _Detokenizer(self.tokenizer)
            stops = _StopStrings(params.stop)
            bitmask = _allocate_bitmask(self._ll_tokenizer) if matcher is not None else None
            cache = None
            step_input = torch.tensor([ids], device=self.device)
            finish = "length"
            while reply.completion_tokens < budget:
                if cancel.is_set():
                    return
                out = self.model(
                    input_ids=step_input,
                    use_cache=True,
                    logits_to_keep=1,
                    **{self._cache_arg: cache},
                )
                cache = getattr(out, self._cache_arg)
                logits = out.logits[0, -1, :].float()
                if matcher is not None:
                    _mask_logits(logits, matcher, bitmask)
                token = _sample(logits, params, generator)
                reply.completion_tokens += 1
                if matcher is not None:
                    matcher.consume_token(token)
                if token in self._eos:
                    finish = "stop"
                    break
                delta = stops.feed(text.add(token))
                if delta:
                    yield delta
                if stops.hit or (matcher is not None and matcher.is_stopped()):
                    finish = "stop"
                    break
                step_input = torch.tensor([[token]], device=self.device)
            reply.finish_reason = finish
            # What was held back: the start of a stop string that did not come, and the
            # bytes of a character the reply ended in the middle of.
            tail = "" if stops.hit else stops.feed(text.flush()) + stops.flush()
            if tail:
                yield tail

    def _matcher(self, response_format: dict[str, Any] | None) -> Any:
        """An llguidance matcher for the requested JSON, or None for free text."""
        if not response_format or response_format.get("type", "text") == "text":
            return None
        kind = response_format.get("type")
        if kind == "json_object":
            schema: dict[str, Any] = {"type": "object"}
        elif kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            found = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(found, dict):
                raise InvalidRequestError(
                    "response_format.json_schema.schema must be a JSON schema object",
                    param="response_format",
                )
            schema = found
        else:
            raise InvalidRequestError(
                f"response_format type {kind!r} is not one of text, json_object, json_schema",
                param="response_format",
            )
        import llguidance
        import llguidance.hf

        with self._ll_lock:
            if self._ll_tokenizer is None:
                # About a second for a real vocabulary: once per model, on first use.
                self._ll_tokenizer = llguidance.hf.from_tokenizer(
                    self.tokenizer,
                    n_vocab=self.model.config.vocab_size,
                    eos_token=sorted(self._eos),
                )
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_OPTIONS)
        matcher = llguidance.LLMatcher(self._ll_tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise InvalidRequestError(
                f"response_format: the JSON schema cannot be used: {matcher.get_error()}",
                param="response_format",
            )
        return matcher


class _Detokenizer:
    """Token ids → text deltas, holding back a character until its last byte has come (a
    byte-level token may carry half of one)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # decode from here: a few tokens of context keep spacing right
        self.read = 0  # text up to this token has been given out

    def add(self, token: int) -> str:
        self.ids.append(token)
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix : self.read], skip_special_tokens=True)
        after = decode(self.ids[self.prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """The text still held back, as it decodes (an unfinished character as U+FFFD)."""
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix : self.read], skip_special_tokens=True)
        after = decode(self.ids[self.prefix :], skip_special_tokens=True)
        self.prefix = self.read = len(self.ids)
        return after[len(before) :]


class _StopStrings:
    """Text deltas cut at the first stop string, which is never given out. The last few
    characters wait until it is clear they do not begin one."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.pending = ""
        self.hit = False

    def feed(self, delta: str) -> str:
        if not self.stops:
            return delta
        self.pending += delta
        found = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            out, self.pending = self.pending[: min(found)], ""
            return out
        cut = max(0, len(self.pending) - self.hold)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.hit else self.pending), ""
        return out


def _sample(logits: Any, params: ChatParams, generator: Any) -> int:
    import torch

    if params.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the likeliest tokens whose mass before them is under top_p (at least one).
        outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs >= params.top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def _allocate_bitmask(ll_tokenizer: Any) -> Any:
    from llguidance.torch import allocate_token_bitmask

    return allocate_token_bitmask(1, ll_tokenizer.vocab_size)


def _mask_logits(logits: Any, matcher: Any, bitmask: Any) -> None:
    """Set every token the grammar forbids next to -inf. (llguidance's own
    `apply_token_bitmask_inplace` is a torch.compile kernel: a C compiler and seconds of
    compiling on the first call, for what these few operations do.)"""
    import torch
    from llguidance.torch import fill_next_token_bitmask

    fill_next_token_bitmask(matcher, bitmask)
    words = bitmask[0].to(logits.device, non_blocking=True)
    bits = torch.arange(32, device=logits.device, dtype=torch.int32)
    allowed = ((words.unsqueeze(-1) >> bits) & 1).flatten().bool()
    vocab = logits.shape[0]
    if allowed.shape[0] < vocab:  # logits past the tokenizer's vocabulary: never allowed
        allowed = torch.cat([allowed, allowed.new_zeros(vocab - allowed.shape[0])])
    logits.masked_fill_(~allowed[:vocab], float("-inf"))


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every token that ends a reply: the generation config's (Qwen3 has two) and the
    tokenizer's."""
    found = model.generation_config.eos_token_id
    ids = set(found if isinstance(found, list) else [found] if found is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(ids)


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
