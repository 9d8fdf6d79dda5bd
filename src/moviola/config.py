"""One Settings object for the whole of Moviola.

Sources, strongest first: `MOVIOLA_*` environment variables, then a TOML file (the path in
`MOVIOLA_CONFIG`, else `<data dir>/moviola.toml`), then the defaults below.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_ALIASES = {
    # What the OpenAI model names mean here; operators remap them to what their GPUs can run.
    # Each takes text, an image and a video, as Sora did: every operation works with both.
    "sora-2": "wan2.2-ti2v-5b",
    "sora-2-pro": "ltx-2",
}
_DATED = re.compile(r"^(?P<base>.+?)-\d{4}-\d{2}-\d{2}$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "moviola"


def _config_file() -> Path:
    explicit = os.environ.get("MOVIOLA_CONFIG")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("MOVIOLA_DATA_DIR")
    return (Path(data_dir) if data_dir else default_data_dir()) / "moviola.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIOLA_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    models_dir: Path | None = None  # None: <data_dir>/models
    default_model: str = "wan2.2-ti2v-5b"
    model_aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_ALIASES)
    )
    device: str = "auto"
    # How the memory planner trades speed for GPU memory: auto (the fastest placement that
    # fits), speed (everything resident, VAE untiled), low (the leanest placement).
    memory: Literal["auto", "speed", "low"] = "auto"
    vae_tiling: bool | None = None  # None: the planner decides per request
    # GPU memory per device for the insufficient-memory check at submit, where the server cannot
    # see the devices itself (a Ray cluster), or to budget less than a card has; 0: read them.
    gpu_memory_gb: float = 0
    # Speed (docs/speed.md): the attention kernel (auto: chosen per GPU; or a diffusers backend
    # name, checked when a worker starts) and regional compilation (auto: on for CUDA).
    attention_backend: str = "auto"
    compile: Literal["auto", "true", "false"] = "auto"
    max_loaded_models: int = 1
    max_prompt_chars: int = 32_000
    max_seconds: float = 120.0
    max_input_pixels: int = 4096 * 4096
    max_input_seconds: float = 600.0
    max_decode_bytes: int = 2 * 1024**3  # a source decoded whole (T×H×W×3) may take this much
    crf: int = 18
    x264_preset: str = "medium"
    # What makes a soundtrack (`audio=soundtrack`, and "add sound" for a silent model).
    soundtrack_model: str = "stable-audio-open-1.0"

    # Server.
    database_url: str | None = None  # None: SQLite in the data dir
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # worker processes (one per device)
    # Devices each worker splits every job across (context parallel, docs/multi-gpu.md): 1 is
    # one job per GPU, the most videos an hour; more, each video sooner.
    gpus_per_worker: int = Field(default=1, ge=1)
    worker_nice: int = 10  # CPU priority of workers below the API's (0: the same)
    max_attempts: int = 3
    max_upload_bytes: int = 200 * 1024 * 1024
    max_queued_per_key: int = 100
    requests_per_minute: int = 0  # per key; 0: unlimited
    retention_hours: float = 0  # 0: keep videos until deleted
    # A deleted video waits in the trash, restorable, this long; then its files go (0: at the
    # sweeper's next pass).
    trash_days: float = Field(default=7.0, ge=0)
    poll_after_ms: int = 1000
    fetch_private_urls: bool = False  # may image_url point at this machine or a private net?
    image_url_timeout_s: float = 20.0  # the whole fetch of an image_url: connect, redirects, body
    min_free_disk_bytes: int = 512 * 1024**2  # below this at the data dir, no new work starts
    # Model installs (Settings → Models, `moviola models pull`): at most this many bytes a
    # second, to leave a shared connection some room (0: as fast as it goes).
    install_max_bytes_per_s: float = Field(default=0, ge=0)
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_secret: str | None = None  # whsec_… (Standard Webhooks)
    webhook_max_attempts: int = 12  # about a day of retries, then the event is left

    # Trust: content credentials, visible mark, moderation, audit (see docs/trust.md).
    c2pa_cert: Path | None = None  # PEM chain, signer first; None: the development identity
    c2pa_key: Path | None = None  # its PEM private key
    c2pa_trust_anchors: Path | None = None  # PEM CAs whose signers read as "valid"
    c2pa_sign: bool = True
    watermark: str | None = None  # text burned into every frame; None or "": no mark
    blocked_terms: Annotated[list[str], NoDecode] = Field(default_factory=list)
    blocked_patterns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    moderation_url: str | None = None  # an OpenAI-compatible …/v1/moderations endpoint
    moderation_api_key: str | None = None
    moderation_model: str | None = None  # sent as `model` when set
    moderation_timeout_s: float = 10.0
    nsfw_check: bool = False  # NudeNet on input frames and on every finished video
    nsfw_threshold: float = 0.5
    nsfw_sample_frames: int = 8
    audit: bool = True
    audit_retention_days: float = 0  # 0: keep the audit log forever

    # Scale-out: where rendering runs (see docs/scale-out.md).
    executor: Literal["local", "ray"] = "local"  # local: `workers` processes; ray: a cluster
    ray_address: str | None = None  # HOST:PORT of the Ray head (its GCS port, 6379 by default)
    ray_namespace: str = "moviola"  # one per Moviola deployment sharing a Ray cluster
    ray_actors: int = 1  # render actors to keep: one per GPU of the cluster
    ray_gpus_per_actor: float = 1.0  # 0: CPU-only actors
    ray_cpus_per_actor: float = 1.0

    # The creative assistant's chat backend (docs/assistant.md): this server's own chat worker
    # running `assistant_model` from the catalogue, or, with a base URL, any OpenAI-compatible
    # server (Ollama, vLLM, LM Studio, llama.cpp, OpenAI) and the model name it knows.
    assistant_base_url: str | None = None  # e.g. http://127.0.0.1:11434/v1; None: local worker
    # Qwen3 1.7B: about 4 GB in bf16, so it sits beside a video model on a 24 GB card (the 4B
    # takes twice that), and with constrained decoding its JSON is always well-formed.
    assistant_model: str = "qwen3-1.7b"
    assistant_api_key: str | None = None  # sent as the bearer token to assistant_base_url
    assistant_timeout_s: float = 30.0  # first streamed byte, or a whole reply, within this
    assistant_context_tokens: int = 8192  # the remote model's context window
    assistant_device: str = "auto"  # where the local chat model runs: auto, cpu, cuda, cuda:1
    assistant_max_script_chars: int = 100_000  # the longest script → storyboard input

    # Import
    max_import_bytes: int = 4 * 1024**3  # most one file downloaded by `import --from-api` may be

    @model_validator(mode="before")
    @classmethod
    def _no_retired_settings(cls, data: Any) -> Any:
        """`offload` became the memory planner's `memory`: a setting still naming it would
        otherwise be ignored without a word."""
        if os.environ.get("MOVIOLA_OFFLOAD") or (isinstance(data, dict) and "offload" in data):
            raise ValueError(
                "the offload setting is retired: the memory planner places models itself; "
                "use memory = auto | speed | low (MOVIOLA_MEMORY) instead"
            )
        return data

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: Any) -> Any:
        """`"sora-2=wan2.2-ti2v-5b,sora-2-pro=ltx-2"` as well as a TOML table."""
        if isinstance(value, str):
            pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("model_aliases must look like 'name=model,name=model'")
            value = {k.strip(): v.strip() for k, v in pairs}
        return value

    @field_validator("blocked_terms", mode="before")
    @classmethod
    def _parse_terms(cls, value: Any) -> Any:
        """Comma-separated in the environment, a list in TOML."""
        if isinstance(value, str):
            value = [term.strip() for term in value.split(",") if term.strip()]
        return value

    @field_validator("blocked_patterns", mode="before")
    @classmethod
    def _parse_patterns(cls, value: Any) -> Any:
        """One regular expression per line in the environment (commas occur in patterns)."""
        if isinstance(value, str):
            value = [line for line in value.splitlines() if line.strip()]
        for pattern in value or []:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"blocked_patterns: {pattern!r} is not a regex: {err}") from None
        return value

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        """A comma-separated list in the environment, a list in TOML."""
        if isinstance(value, str):
            value = [url.strip() for url in value.split(",") if url.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return init_settings, env_settings, toml

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'moviola.db'}"

    @property
    def blobs_path(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    def resolve_model(self, name: str) -> str:
        """An API or CLI model name → a catalogue id or folder (aliases and dated names)."""
        if name in self.model_aliases:
            return self.model_aliases[name]
        dated = _DATED.match(name)
        if dated and dated["base"] in self.model_aliases:
            return self.model_aliases[dated["base"]]
        return name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
