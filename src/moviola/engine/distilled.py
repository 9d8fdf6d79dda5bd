"""Step-distilled routes for `speed=fast`: which LoRA makes each model a few-step model.

A step-distilled LoRA (LightX2V, Lightning, FastWan, CausVid, LTX-2's distilled LoRA) turns a
40–50 step model with classifier-free guidance into a 3–8 step model without it: 10–25× fewer
denoiser calls. Each route says the files, and the steps, guidance, flow shift and sampler the
LoRA was distilled for. Plain data: planning a request reads it without torch.

LoRA files are never downloaded while a job runs: `moviola models pull MODEL --fast` fetches
them, and a request whose LoRA is missing is refused when it is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from moviola.engine.catalogue import ModelSpec
from moviola.engine.errors import WeightsNotFoundError
from moviola.engine.step_caches import base_id

if TYPE_CHECKING:
    from moviola.engine.request import Plan

# How a route steps between noise levels:
# - "own": the pipeline's scheduler (with `shift` as its flow shift where given);
# - "euler": flow-matching Euler on the evenly spaced, shifted grid the route was distilled on
#   (LightX2V's denoising_step_list 1000, 750, 500, 250 for four steps);
# - "renoise": the same grid, each step predicting the clean video and noising it afresh to the
#   next level (LightX2V's Wan 2.1 step-distill scheduler); the noise comes from the job's seed.
Sampler = Literal["own", "euler", "renoise"]
LORAS_FOLDER = "loras"


@dataclass(frozen=True)
class LoraFile:
    """One LoRA file: where it is published, and which denoiser it goes into."""

    repo_id: str | None  # None: built in code (the test model's)
    filename: str  # inside the repo
    into: Literal["transformer", "transformer_2"] = "transformer"


@dataclass(frozen=True)
class Route:
    """What `speed=fast` runs for one model."""

    name: str  # what the LoRA is called where it is published
    files: tuple[LoraFile, ...]
    steps: int
    guidance: float  # 1.0: no classifier-free guidance, as distilled
    sampler: Sampler
    shift: float | None = None  # the flow shift it was distilled at; None: the model's own
    sigmas: tuple[float, ...] | None = None  # a pipeline that takes `sigmas`: this schedule
    call_overrides: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({})
    )  # keyword arguments that differ from the model's own for this route
    source: str = ""  # where these settings are documented
    licence: str = ""  # the LoRA's licence where it differs from the model's

    @property
    def adapter(self) -> str:
        return "moviola-fast"


_LIGHTX2V = "lightx2v 4-step LoRA"
_GUIDANCE_OFF_LTX2 = MappingProxyType(
    {
        # As ltx-2.3-distilled: no guidance of any kind (diffusers guides whenever any scale of
        # either modality asks for it).
        "audio_guidance_scale": 1.0,
        "stg_scale": 0.0,
        "audio_stg_scale": 0.0,
        "modality_scale": 1.0,
        "audio_modality_scale": 1.0,
        "guidance_rescale": 0.0,
        "audio_guidance_rescale": 0.0,
    }
)

ROUTES: dict[str, Route] = {
    "wan2.1-t2v-1.3b": Route(
        name="CausVid bidirect2 T2V 1.3B LoRA (rank 32)",
        files=(
            LoraFile(
                "Kijai/WanVideo_comfy", "Wan21_CausVid_bidirect2_T2V_1_3B_lora_rank32.safetensors"
            ),
        ),
        steps=4,
        guidance=1.0,
        sampler="own",
        source="Kijai/WanVideo_comfy; diffusers examples load it into WanPipeline with UniPC at "
        "the model's shift 3.0, 4 steps, guidance 1",
        licence="CC-BY-NC-4.0 (CausVid: non-commercial)",
    ),
    "wan2.1-t2v-14b": Route(
        name=f"Wan2.1 T2V 14B {_LIGHTX2V} (rank 64)",
        files=(
            LoraFile(
                "lightx2v/Wan2.1-T2V-14B-StepDistill-CfgDistill-Lightx2v",
                "loras/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank64.safetensors",
            ),
        ),
        steps=4,
        guidance=1.0,
        sampler="renoise",
        shift=5.0,
        source="ModelTC/LightX2V configs/distill/wan21/wan_t2v_distill_lora_4step_cfg.json: "
        "4 steps (1000, 750, 500, 250), sample_shift 5, enable_cfg false",
    ),
    "wan2.1-i2v-14b-480p": Route(
        name=f"Wan2.1 I2V 14B 480P {_LIGHTX2V} (rank 64)",
        files=(
            LoraFile(
                "Kijai/WanVideo_comfy",
                "Lightx2v/lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors",
            ),
        ),
        steps=4,
        guidance=1.0,
        sampler="renoise",
        shift=5.0,
        source="ModelTC/LightX2V configs/distill/wan21/wan_i2v_distill_lora_4step_cfg.json: "
        "4 steps, sample_shift 5, enable_cfg false",
    ),
    "wan2.2-ti2v-5b": Route(
        name="FastWan 2.2 TI2V 5B full-attention LoRA (rank 128)",
        files=(
            LoraFile(
                "Kijai/WanVideo_comfy",
                "FastWan/Wan2_2_5B_FastWanFullAttn_lora_rank_128_bf16.safetensors",
            ),
        ),
        steps=3,
        guidance=1.0,
        sampler="own",
        shift=3.0,
        source="FastVideo's FastWan2.2-TI2V-5B (3-step DMD); Wan2GP's finetune definition "
        "for this LoRA: 3 steps, guidance 1, flow_shift 3",
    ),
    "wan2.2-t2v-a14b": Route(
        name="Wan2.2-Lightning T2V A14B 4-step LoRAs (Seko V1.1, rank 64)",
        files=(
            LoraFile(
                "lightx2v/Wan2.2-Lightning",
                "Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1/high_noise_model.safetensors",
            ),
            LoraFile(
                "lightx2v/Wan2.2-Lightning",
                "Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1/low_noise_model.safetensors",
                into="transformer_2",
            ),
        ),
        steps=4,
        guidance=1.0,
        sampler="euler",
        shift=5.0,
        call_overrides=MappingProxyType({"guidance_scale_2": 1.0}),
        source="lightx2v/Wan2.2-Lightning; ModelTC/LightX2V Wan22StepDistillScheduler: Euler, "
        "4 steps (2 per expert), shift 5, no CFG",
    ),
    "wan2.2-i2v-a14b": Route(
        name="Wan2.2-Lightning I2V A14B 4-step LoRAs (Seko V1, rank 64)",
        files=(
            LoraFile(
                "lightx2v/Wan2.2-Lightning",
                "Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1/high_noise_model.safetensors",
            ),
            LoraFile(
                "lightx2v/Wan2.2-Lightning",
                "Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1/low_noise_model.safetensors",
                into="transformer_2",
            ),
        ),
        steps=4,
        guidance=1.0,
        sampler="euler",
        shift=5.0,
        call_overrides=MappingProxyType({"guidance_scale_2": 1.0}),
        source="lightx2v/Wan2.2-Lightning; ModelTC/LightX2V Wan22StepDistillScheduler: Euler, "
        "4 steps (2 per expert), shift 5, no CFG",
    ),
    "ltx-2": Route(
        name="LTX-2 19B distilled LoRA (rank 384)",
        files=(LoraFile("Lightricks/LTX-2", "ltx-2-19b-distilled-lora-384.safetensors"),),
        steps=8,
        guidance=1.0,
        sampler="own",
        sigmas=(1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875),
        call_overrides=_GUIDANCE_OFF_LTX2,
        source="Lightricks/LTX-2 (the dev checkpoint plus this LoRA is the distilled model): "
        "8 steps on diffusers' DISTILLED_SIGMA_VALUES, CFG 1",
    ),
    # The test model: a LoRA built in code, with the shape of FastWan's 3-step route.
    "tiny": Route(
        name="tiny distilled LoRA (test model, built in code)",
        files=(LoraFile(None, "tiny_distilled_lora.safetensors"),),
        steps=3,
        guidance=1.0,
        sampler="euler",
        shift=5.0,
        source="test model",
    ),
}

# Models that are step-distilled already: `fast` has nothing left to take away.
DISTILLED_ALREADY = frozenset({"ltx-video", "ltx-2.3-distilled"})


def route_for(spec: ModelSpec) -> Route | None:
    return ROUTES.get(base_id(spec))


def why_no_route(spec: ModelSpec) -> str:
    """Why `speed=fast` cannot run `spec` (a model with no route)."""
    if base_id(spec) in DISTILLED_ALREADY:
        return (
            f"{spec.id} is step-distilled already ({spec.default_steps} steps, no guidance): "
            f"speed=fast would change nothing; use quality or balanced"
        )
    return (
        f"{spec.id} has no step-distilled LoRA that Moviola can load, so speed=fast cannot run "
        f"it; use quality or balanced (or a model with one: {', '.join(fast_models())})"
    )


def fast_models() -> list[str]:
    return sorted(m for m in ROUTES if m != "tiny")


def local_path(models_dir: Path | None, spec: ModelSpec, file: LoraFile) -> Path | None:
    """Where a copy kept under the models folder would be."""
    if models_dir is None:
        return None
    return Path(models_dir) / LORAS_FOLDER / base_id(spec) / file.filename


def find_files(
    spec: ModelSpec, route: Route, models_dir: Path | None
) -> list[tuple[LoraFile, Path | None]]:
    """Each file of `route` and where it is on this machine (None: built in code); a missing one
    is a `WeightsNotFoundError` naming the command that fetches it. Never downloads."""
    found: list[tuple[LoraFile, Path | None]] = []
    for file in route.files:
        local = local_path(models_dir, spec, file)
        if local is not None and local.is_file():
            found.append((file, local))
        elif file.repo_id is None:
            found.append((file, None))
        else:
            found.append((file, _cached(spec, route, file)))
    return found


def check_lora(plan: Plan, models_dir: Path | None) -> None:
    """A `fast` plan's LoRA files (its chain model's too) must be on this machine: a
    `WeightsNotFoundError` naming the command that fetches them otherwise."""
    if plan.speed.value != "fast":
        return
    for spec in (plan.spec, plan.chain_spec):
        route = route_for(spec) if spec is not None else None
        if spec is not None and route is not None:
            find_files(spec, route, models_dir)


def _cached(spec: ModelSpec, route: Route, file: LoraFile) -> Path:
    from huggingface_hub import try_to_load_from_cache

    assert file.repo_id is not None
    hit = try_to_load_from_cache(file.repo_id, file.filename)
    if isinstance(hit, str):
        return Path(hit)
    raise WeightsNotFoundError(
        f"speed=fast on {base_id(spec)} needs the {route.name} ({file.repo_id}: "
        f"{file.filename}), which is not on this machine; fetch it with "
        f"`moviola models pull {base_id(spec)} --fast`",
        param="speed",
    )
