"""The chat models' part of `moviola models list | info | pull`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from moviola.config import Settings
    from moviola.engine.chat_models import ChatModelSpec


def is_chat_model(model_id: str) -> bool:
    from moviola.engine.chat_models import chat_models

    return model_id in chat_models()


def installed(spec: ChatModelSpec, models_dir: Path) -> str:
    """'built in', 'local', 'cached' or '' — without touching the network."""
    if (models_dir / spec.id / "config.json").is_file():
        return "local"
    if spec.repo_id is None:
        return "built in"
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.repo_id, "config.json")
    return "cached" if isinstance(found, str) else ""


def list_chat_models(settings: Settings) -> None:
    from moviola.engine.chat_models import chat_models

    table = Table(title="Chat models (the assistant)")
    table.add_column("id", no_wrap=True)
    table.add_column("context", justify="right")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("installed", no_wrap=True)
    for spec in chat_models().values():
        used = " (in use)" if _in_use(spec, settings) else ""
        table.add_row(
            spec.id + used,
            f"{spec.context_tokens:,}",
            f"{spec.size_gb:g} GB" if spec.size_gb else "-",
            installed(spec, settings.models_path) or "[dim]no[/]",
        )
    Console().print(table)


def chat_info(model_id: str, settings: Settings) -> dict[str, str]:
    from moviola.engine.chat_models import find_chat_model

    spec = find_chat_model(model_id)
    return {
        "id": spec.id,
        "name": spec.name,
        "about": spec.description,
        "weights": spec.repo_id or "built in code (test model)",
        "installed": installed(spec, settings.models_path) or "no",
        "kind": "chat (the assistant's model)",
        "context": f"{spec.context_tokens:,} tokens",
        "size (bf16)": f"{spec.size_gb:g} GB" if spec.size_gb else "-",
        "thinking": "turned off (hybrid model)" if spec.hybrid_thinking else "none",
        "licence": spec.license,
        "in use": "yes" if _in_use(spec, settings) else "no (MOVIOLA_ASSISTANT_MODEL)",
    }


def pull_built_in(model_id: str, to: Path | None, settings: Settings) -> Path | None:
    """Save a built-in chat model's copy and return its folder; None for a model to fetch."""
    from moviola.engine.chat_models import find_chat_model

    spec = find_chat_model(model_id)
    if spec.repo_id is not None:
        return None
    from moviola.engine.tiny_chat import save_tiny_chat

    return save_tiny_chat(to or settings.models_path / spec.id)


def _in_use(spec: ChatModelSpec, settings: Settings) -> bool:
    return spec.id == settings.assistant_model and not settings.assistant_base_url
