"""Counting tokens with the local chat model's own tokenizer, in the API process.

Only the `tokenizers` library (Rust, no torch): the tokenizer.json beside the weights, or
tiny-chat's built in code. Loaded once per model and kept.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def count_tokens(model_id: str, text: str, models_dir: Path | None) -> int | None:
    """Tokens in `text` for the catalogue model `model_id`; None when its tokenizer is not on
    this machine (the caller estimates instead)."""
    tokenizer = _tokenizer(model_id, models_dir)
    if tokenizer is None:
        return None
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=4)
def _tokenizer(model_id: str, models_dir: Path | None) -> Any:
    from tokenizers import Tokenizer

    from moviola.engine.chat_models import chat_weights, find_chat_model
    from moviola.engine.tiny_chat import tiny_chat_tokenizer_core
    from moviola.errors import MoviolaError

    with _lock:
        try:
            spec = find_chat_model(model_id)
            folder = chat_weights(spec, models_dir)
        except (MoviolaError, ValueError):
            return None
        if folder is None:
            return tiny_chat_tokenizer_core()
        path = folder / "tokenizer.json"
        return Tokenizer.from_file(str(path)) if path.is_file() else None
