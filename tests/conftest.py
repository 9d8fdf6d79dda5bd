"""Every test runs offline, against an empty Hugging Face cache and its own data dir.

`make_server` starts real `moviola serve` processes (a subprocess on a free loopback port, the
tiny models behind the `sora-2` aliases) for any test that needs one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from moviola.store import db, keys

_HOME = Path(tempfile.mkdtemp(prefix="moviola-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_HOME / "hf")
os.environ["MOVIOLA_DATA_DIR"] = str(_HOME / "data")
os.environ.pop("MOVIOLA_CONFIG", None)


@pytest.fixture(scope="session")
def engine():
    """One engine for the session: tiny pipelines load once and stay cached, as in a worker."""
    from moviola.engine import Engine

    return Engine(models_dir=_HOME / "data" / "models", max_loaded=4)


MOVIOLA = str(Path(sys.executable).parent / "moviola")
BASE_ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=tiny,sora-2-pro=tiny-ltx",
    "MOVIOLA_SOUNDTRACK_MODEL": "tiny-audio",
    "MOVIOLA_X264_PRESET": "ultrafast",
    "MOVIOLA_POLL_AFTER_MS": "100",  # the SDK's poll helper waits what the server says
    "MOVIOLA_LOG_FORMAT": "text",
    "HF_HUB_OFFLINE": "1",
    # One thread per worker: on a small shared CPU, torch's spinning thread pool otherwise
    # slows tiny renders down tenfold whenever anything else runs.
    "OMP_NUM_THREADS": "1",
}
SMALL = {"size": "160x96", "seconds": "1"}  # a job that renders in a fraction of a second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.env = {**os.environ, **BASE_ENV, "MOVIOLA_DATA_DIR": str(data_dir), **(env or {})}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [MOVIOLA, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not become healthy: {self.log.read_text()[-3000:]}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def client(self, api_key: str = "unused", **kwargs) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **kwargs)

    def sessions(self):
        engine = db.connect(f"sqlite:///{self.data_dir / 'moviola.db'}")
        return db.sessions(engine)

    def create_key(self, name: str = "test") -> str:
        _, secret = keys.create_key(self.sessions(), name)
        return secret


@pytest.fixture
def make_server(tmp_path):
    """Start extra servers; each is stopped at the end of the test."""
    started: list[Server] = []

    def make(data_dir: Path | None = None, env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir or tmp_path / f"data{len(started)}", env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server_class() -> type[Server]:
    """For session-scoped servers: `server_class(data_dir, env).start()`, stopped by the caller."""
    return Server


@pytest.fixture(scope="session")
def small() -> dict[str, str]:
    """Size and length of a job that renders in a fraction of a second."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def tiny_loras(tmp_path_factory) -> dict[str, Path]:
    """LoRA files made with peft for the tiny models, as trainers publish them: one for `tiny`
    in diffusers' layout and the same weights in original Wan (`diffusion_model.…`) and kohya
    (musubi-tuner's `lora_unet_…`, with alphas) keys; another for `tiny` (other weights); one
    for `tiny-ltx`."""
    from diffusers import LTXConditionPipeline, WanPipeline
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    from moviola.engine.tiny import TINY, TINY_LTX, build_tiny_pipeline

    folder = tmp_path_factory.mktemp("loras")
    attention = ["to_q", "to_k", "to_v", "to_out.0"]

    def peft_layers(spec, targets, seed):
        import torch

        transformer = build_tiny_pipeline(spec).transformer
        torch.manual_seed(seed)
        # Random A and B: peft's default (B = 0) would leave the model as it is.
        config = LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights=False)
        transformer.add_adapter(config)
        return {k: v.contiguous() for k, v in get_peft_model_state_dict(transformer).items()}

    wan = [*attention, "ffn.net.0.proj", "ffn.net.2"]
    layers = peft_layers(TINY, wan, seed=11)
    WanPipeline.save_lora_weights(folder, layers, weight_name="tiny-style.safetensors")
    WanPipeline.save_lora_weights(
        folder, peft_layers(TINY, wan, seed=12), weight_name="tiny-other.safetensors"
    )
    ltx = peft_layers(TINY_LTX, attention, seed=13)
    LTXConditionPipeline.save_lora_weights(folder, ltx, weight_name="tiny-ltx-style.safetensors")

    # Wan's own names for diffusers' layers.
    names = {"attn1": "self_attn", "attn2": "cross_attn", "to_q": "q", "to_k": "k", "to_v": "v"}
    names.update({"to_out.0": "o", "ffn.net.0.proj": "ffn.0", "ffn.net.2": "ffn.2"})

    def wan_name(module):  # blocks.0.attn1.to_out.0 → blocks.0.self_attn.o
        for ours, theirs in sorted(names.items(), key=lambda n: -len(n[0])):
            module = module.replace(ours, theirs)
        return module

    original, kohya = {}, {}
    for key, tensor in layers.items():
        module, part = key.rsplit(".lora_", 1)
        original[f"diffusion_model.{wan_name(module)}.lora_{part}"] = tensor
        flat = "lora_unet_" + wan_name(module).replace(".", "_")
        kohya[f"{flat}.{'lora_down' if part.startswith('A') else 'lora_up'}.weight"] = tensor
        if part.startswith("A"):
            kohya[f"{flat}.alpha"] = torch_scalar(tensor.shape[0])  # alpha = rank: scale 1
    save_file(original, folder / "tiny-style-wan.safetensors")
    save_file(kohya, folder / "tiny-style-kohya.safetensors")
    return {
        "diffusers": folder / "tiny-style.safetensors",
        "original-wan": folder / "tiny-style-wan.safetensors",
        "kohya": folder / "tiny-style-kohya.safetensors",
        "other": folder / "tiny-other.safetensors",
        "tiny-ltx": folder / "tiny-ltx-style.safetensors",
    }


def torch_scalar(value: float):
    import torch

    return torch.tensor(float(value))
