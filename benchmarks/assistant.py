"""What Moviola's chat endpoint costs over calling the same transformers model directly.

Starts a real `moviola serve` whose chat worker runs the model (temporary data dir, no video
workers), and loads the same weights in this process. Both paths write a reply to the same
prompt, decoding greedily (the same tokens on both), interleaved so that they share warm
caches and machine load:

  direct    `model.generate` in this process
  moviola   the `openai` SDK streaming from /v1/chat/completions: the API (auth, moderation,
            audit), the ChatBackend's relay, and the chat worker's own decoding loop

and prints, for each, the median time to the first token and the decoding rate (tokens after
the first, per second), with the ratios; the goal is ≤ 1.15x on both. The first token is
timed as a whole one-token reply (what a client waits for before it has anything), and the rate
from a longer reply less that: waiting for the first *visible* text instead would time when a
byte-level model's bytes first make a whole character, which a random-weights model may not
do for many tokens.

    python benchmarks/assistant.py [--model tiny-chat] [--runs 5] [--tokens 64] [--device auto]

`--model` takes a chat catalogue id whose weights are here (`moviola models pull ID`). With
tiny-chat a token costs a fraction of a millisecond, so the ratios there are the HTTP relay's
fixed cost magnified; a real model on a GPU is the comparison that matters. Without its
weights, `--shape qwen3-0.6b` builds a random-initialised model of that model's published
architecture (28 layers, 1024 wide; the vocabulary is tiny-chat's, so its tokens decode) as
`qwen3-0.6b` in a temporary models folder: what a token of the real model costs, on any machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MOVIOLA = str(Path(sys.executable).parent / "moviola")
MESSAGES = [
    {
        "role": "system",
        "content": "You write prompts for a video model: subject, action, setting, camera, "
        "light and style, in one paragraph.",
    },
    {"role": "user", "content": "A lighthouse keeper finds a message in a bottle at dawn."},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, model: str, device: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "MOVIOLA_DATA_DIR": str(data_dir),
        "MOVIOLA_WORKERS": "0",
        "MOVIOLA_ASSISTANT_MODEL": model,
        "MOVIOLA_ASSISTANT_DEVICE": device,
        "MOVIOLA_LOG_LEVEL": "warning",
    }
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        [MOVIOLA, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_chat(client, model: str, timeout: float = 600) -> None:
    import openai

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=1)
            return
        except (openai.InternalServerError, openai.APIConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def through_moviola(client, model: str, tokens: int) -> tuple[float, int]:
    """(seconds until the reply's last byte, tokens written), streamed as a client reads it."""
    started = time.perf_counter()
    count = 0
    stream = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=tokens,
        temperature=0,  # greedy, as `direct`: both write the same tokens
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
    return time.perf_counter() - started, count


# Published architectures (config.json of the model's repository), for --shape.
SHAPES = {
    "qwen3-0.6b": dict(
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=40_960,
        tie_word_embeddings=True,
    ),
}


def save_shaped(shape: str, models_dir: Path) -> None:
    """A random-initialised model of `shape`'s architecture, saved where the server and
    `load_direct` look for the catalogue id `shape`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from moviola.engine.tiny_chat import build_tiny_chat_tokenizer

    tokenizer = build_tiny_chat_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **SHAPES[shape],
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(models_dir / shape)
    tokenizer.save_pretrained(models_dir / shape)


def load_direct(model_id: str, models_dir: Path | None, device: str):
    """The model and tokenizer as transformers loads them, placed as the chat worker does."""
    import torch

    from moviola.engine.chat_models import chat_weights, find_chat_model

    spec = find_chat_model(model_id)
    folder = chat_weights(spec, models_dir)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if folder is None:
        from moviola.engine.tiny_chat import build_tiny_chat

        model, tokenizer = build_tiny_chat()
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model.to(device=device, dtype=dtype).eval(), tokenizer, spec, device


def direct(model, tokenizer, spec, device: str, tokens: int) -> tuple[float, int]:
    """(seconds, tokens written) of `model.generate` in this process."""
    import torch

    started = time.perf_counter()
    extra = {"enable_thinking": False} if spec.hybrid_thinking else {}
    text = tokenizer.apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True, **extra
    )
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
    out = model.generate(
        **inputs,
        max_new_tokens=tokens,
        do_sample=False,  # greedy on both paths: the same tokens, only the path differs
        temperature=None,
        top_p=None,
        top_k=None,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started, out.shape[1] - inputs["input_ids"].shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-chat")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None)
    args = parser.parse_args()
    shaped = None
    if args.shape is not None:
        shaped = tempfile.TemporaryDirectory()
        args.model, args.models_dir = args.shape, Path(shaped.name)
        save_shaped(args.shape, args.models_dir)

    import torch
    from openai import OpenAI

    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model, tokenizer, spec, device = load_direct(args.model, args.models_dir, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        if args.models_dir is not None:
            os.environ["MOVIOLA_MODELS_DIR"] = str(args.models_dir)
        port = free_port()
        server = start_server(data, port, args.model, device)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the server did not start:\n{(data / 'server.log').read_text()}")
                time.sleep(0.2)
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
            wait_for_chat(client, args.model)
            runs = {
                "direct": lambda n: direct(model, tokenizer, spec, device, n),
                "moviola": lambda n: through_moviola(client, args.model, n),
            }
            for fn in runs.values():  # warm-up: first calls, allocator, caches
                fn(args.tokens)
            firsts: dict[str, list[float]] = {name: [] for name in runs}
            replies: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
            for _ in range(args.runs):
                for name, fn in runs.items():
                    firsts[name].append(fn(1)[0])
                    replies[name].append(fn(args.tokens))
        finally:
            server.terminate()
            server.wait(30)
    if shaped is not None:
        shaped.cleanup()

    def first_token(name: str) -> float:
        return statistics.median(firsts[name])

    def rate(name: str) -> float:
        """Tokens after the first, per second: the reply's time less a one-token reply's."""
        return statistics.median(
            (n - 1) / (t - first_token(name)) for t, n in replies[name] if n > 1
        )

    print(
        f"{args.model}{' (random weights, real shape)' if shaped else ''} on {device}, "
        f"up to {args.tokens} tokens, median of {args.runs} interleaved runs"
    )
    print(f"{'path':<10}{'first token ms':>16}{'tokens/s':>12}{'tokens':>8}")
    for name in runs:
        tokens = statistics.median(n for _, n in replies[name])
        print(f"{name:<10}{first_token(name) * 1000:>16.1f}{rate(name):>12.1f}{tokens:>8.0f}")
    ttft = first_token("moviola") / first_token("direct")
    speed = rate("direct") / rate("moviola")
    extra_ms = (first_token("moviola") - first_token("direct")) * 1000
    print(
        f"first token: {ttft:.2f}x direct ({extra_ms:+.1f} ms); time per token: {speed:.2f}x direct"
    )
    print("goal: ≤ 1.15x on both")


if __name__ == "__main__":
    main()
