"""`tiny-chat`: a real transformers chat model (Qwen3's class and chat format), tiny random
weights and a byte-level tokenizer, built in code.

It writes noise, not words. It exists so that every path a real chat model takes — loading,
the chat template, streaming, sampling with a seed, stop strings, constrained decoding,
`moviola models pull` and loading the saved folder back — runs in well under a second on a CPU
with no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# max_position_embeddings: the longest conversation it takes. Its tokenizer spends about a
# token a character, so the storyboard writer's instructions alone take ~1,500 of them.
TINY_CHAT_CONTEXT = 8192

_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # Qwen's ChatML tokens
# A few merges, so that it is a BPE tokenizer in earnest (tokens longer than a byte) while
# every string still encodes: Ġ is the byte-level alphabet's space.
_MERGES = (("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("Ġ", "a"))
# Qwen's ChatML, without the tool calls and thinking blocks tiny-chat has no use for.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_chat_tokenizer_core() -> Any:
    """The `tokenizers.Tokenizer` alone: byte-level BPE over the 256 bytes, a few merges and
    ChatML's special tokens. Cheap to build, and needs neither torch nor transformers."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    for left, right in _MERGES:
        vocab[left + right] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=list(_MERGES)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in _SPECIAL])
    return tokenizer


def build_tiny_chat_tokenizer() -> Any:
    """The tokenizer as transformers uses it, with the chat template."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tiny_chat_tokenizer_core(),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=TINY_CHAT_CONTEXT,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_chat_model(tokenizer: Any) -> Any:
    """A Qwen3 causal LM with two layers 32 wide, the same weights on every call whatever the
    global RNG (seeded in a fork of it)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=TINY_CHAT_CONTEXT,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def build_tiny_chat() -> tuple[Any, Any]:
    """(model, tokenizer) of `tiny-chat`, built in code."""
    tokenizer = build_tiny_chat_tokenizer()
    return build_tiny_chat_model(tokenizer), tokenizer


def save_tiny_chat(folder: Path) -> Path:
    """Write `tiny-chat` as a transformers folder (config.json, safetensors, tokenizer.json and
    its chat template), loadable like downloaded weights."""
    folder = Path(folder)
    model, tokenizer = build_tiny_chat()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
