"""The chat models Moviola runs for its assistant, like the video and soundtrack catalogues.

Weights follow the same rules as video models (`find_weights`): `<models_dir>/<id>/` (a folder
holding the transformers `config.json`), else the Hugging Face cache; `moviola models pull ID`
fetches them; `tiny-chat` is built in code for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moviola.engine.errors import UnknownModelError
from moviola.engine.loading import find_weights

TINY_CHAT_ID = "tiny-chat"


@dataclass(frozen=True)
class ChatModelSpec:
    """One instruct model."""

    id: str
    name: str
    repo_id: str | None  # None: built in code (a test model)
    license: str
    context_tokens: int  # the longest conversation (prompt + reply) Moviola sends it
    size_gb: float  # weights in bf16, roughly: what it takes beside a video model
    # Qwen3's hybrid models think aloud (<think>…</think>) unless the chat template is told
    # not to: the assistant wants the answer alone, streamed at once, and JSON under
    # constrained decoding, where a thinking preamble cannot be.
    hybrid_thinking: bool = False
    description: str = ""
    is_test_model: bool = False


CHAT_MODELS: tuple[ChatModelSpec, ...] = (
    ChatModelSpec(
        id="qwen3-0.6b",
        name="Qwen3 0.6B",
        repo_id="Qwen/Qwen3-0.6B",
        license="Apache-2.0",
        context_tokens=32_768,
        size_gb=1.5,
        hybrid_thinking=True,
        description="The smallest: quick on a CPU, plain prompts",
    ),
    ChatModelSpec(
        id="qwen3-1.7b",
        name="Qwen3 1.7B",
        repo_id="Qwen/Qwen3-1.7B",
        license="Apache-2.0",
        context_tokens=32_768,
        size_gb=4.1,
        hybrid_thinking=True,
        description="The default: good prompts and storyboards beside a video model",
    ),
    ChatModelSpec(
        id="qwen3-4b-instruct",
        name="Qwen3 4B Instruct 2507",
        repo_id="Qwen/Qwen3-4B-Instruct-2507",
        license="Apache-2.0",
        # Natively 256k; 32k keeps the KV cache of a long conversation to a few GB.
        context_tokens=32_768,
        size_gb=8.1,
        description="The best writer of the three, for a card with room to spare",
    ),
)


def _tiny() -> ChatModelSpec:
    from moviola.engine.tiny_chat import TINY_CHAT_CONTEXT

    return ChatModelSpec(
        id=TINY_CHAT_ID,
        name="Tiny test chat model (Qwen3 shape)",
        repo_id=None,
        license="Apache-2.0",
        context_tokens=TINY_CHAT_CONTEXT,
        size_gb=0.0,
        description="A test model with random weights: it writes noise, not words.",
        is_test_model=True,
    )


def chat_models() -> dict[str, ChatModelSpec]:
    """Every chat model Moviola knows, test models first."""
    return {spec.id: spec for spec in (_tiny(), *CHAT_MODELS)}


def find_chat_model(model_id: str) -> ChatModelSpec:
    models = chat_models()
    if model_id not in models:
        known = ", ".join(sorted(models))
        raise UnknownModelError(f"unknown chat model {model_id!r}; known: {known}")
    return models[model_id]


def chat_weights(spec: ChatModelSpec, models_dir: Path | None) -> Path | None:
    """Where the model's weights are: a folder, or None for a test model built in code.
    Raises WeightsNotFoundError (naming `moviola models pull ID`) when they are nowhere."""
    return find_weights(spec, models_dir, marker="config.json")


def is_installed(spec: ChatModelSpec, models_dir: Path | None) -> bool:
    """Whether the model can run here without a download (built-in test models always can)."""
    from moviola.engine.errors import WeightsNotFoundError

    try:
        chat_weights(spec, models_dir)
    except WeightsNotFoundError:
        return False
    return True
