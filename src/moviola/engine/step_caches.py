"""Step caches for `speed=balanced`: which one each model gets, switched on for one job only.

MagCache skips a denoiser step when the accumulated change of its residual, predicted from
per-model "magnitude ratios", stays under a threshold. The ratios are calibrated once per model
by MagCache's authors; where they published some (Wan 2.1 and 2.2), a model gets MagCache with
their ratios and the authors' milder preset for it (Wan 2.1: E012K2R02, threshold 0.12, at most
2 steps in a row skipped, the first 20 % never skipped; Wan 2.2: E006K2R0x, as their Wan 2.2
commands). The decision depends on the ratios alone, so the schedule is known
before the job runs. Every other model gets FirstBlockCache, which skips the rest of the
transformer when its first block's output barely changed since the last step.

Traps avoided (diffusers 0.42): FasterCache assumes CFG batched as [uncond, cond] and fails on
Wan, which runs them as two calls; TaylorSeer's default patterns match no Wan module and so do
nothing. Neither is offered.

Each denoiser gets its own cache state, and `disable` removes every hook, so nothing of one job
reaches the next (a cancelled one included).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moviola.engine.catalogue import Capability, ModelSpec, catalogue

# The MagCache ratios of the conditional branch, one per step of the run they were calibrated on
# (step 0's is 1.0, as in the authors' scripts). Wan 2.1: Zehong-Ma/MagCache
# MagCache4Wan2.1/magcache_generate.py (interleaved cond/uncond there; the cond entries here, the
# uncond ones differ in the fourth decimal). Wan 2.2: the MagCache4Wan2.2 calibration as carried
# by deepbeepmeep/Wan2GP models/wan/wan_handler.py.
_WAN21_T2V_1_3B = (
    1.0124, 1.00166, 0.99791, 0.99682, 0.99634, 0.99567, 0.99416, 0.99578, 0.9957, 0.99511,
    0.99535, 0.99552, 0.99541, 0.9954, 0.99489, 0.99518, 0.99484, 0.99481, 0.99415, 0.99419,
    0.99396, 0.99388, 0.99349, 0.99309, 0.9927, 0.99228, 0.99171, 0.99137, 0.99068, 0.99005,
    0.98944, 0.98849, 0.98758, 0.98644, 0.98504, 0.9836, 0.98202, 0.97977, 0.97717, 0.9741,
    0.97003, 0.96538, 0.9593, 0.95086, 0.94013, 0.92402, 0.90241, 0.86821, 0.81838,
)  # fmt: skip
_WAN21_T2V_14B = (
    1.02504, 1.00025, 0.9985, 0.99779, 0.9966, 0.99482, 0.99467, 0.99664, 0.99434, 0.99533,
    0.99468, 0.99438, 0.99516, 0.99384, 0.99404, 0.99517, 0.99409, 0.99428, 0.99347, 0.99418,
    0.99271, 0.99313, 0.99215, 0.99218, 0.99216, 0.99163, 0.99138, 0.98982, 0.98996, 0.9887,
    0.98772, 0.98767, 0.98573, 0.98501, 0.9838, 0.98177, 0.98037, 0.97678, 0.97546, 0.97184,
    0.96711, 0.96349, 0.95629, 0.94926, 0.93964, 0.92511, 0.90693, 0.8796, 0.86111,
)  # fmt: skip
_WAN21_I2V_480P = (
    0.98783, 0.97559, 0.98311, 0.98202, 0.9888, 0.98762, 0.98957, 0.99052, 0.99383, 0.98857,
    0.99065, 0.98845, 0.99057, 0.98957, 0.98601, 0.98823, 0.98756, 0.98808, 0.98721, 0.98571,
    0.98543, 0.98157, 0.98411, 0.97952, 0.98149, 0.9774, 0.97825, 0.97355, 0.97085, 0.97056,
    0.96588, 0.96113, 0.9567, 0.94961, 0.93973, 0.93217, 0.91878, 0.90955, 0.92617,
)  # fmt: skip
_WAN21_I2V_720P = (
    0.99428, 0.98588, 0.98273, 0.99018, 0.98911, 0.98646, 0.99454, 0.9891, 0.99124, 0.99102,
    0.99215, 0.99515, 0.99576, 0.99068, 0.99097, 0.99166, 0.99041, 0.99201, 0.99101, 0.98599,
    0.98845, 0.98848, 0.98862, 0.98718, 0.98497, 0.98264, 0.98389, 0.97938, 0.97535, 0.97498,
    0.973, 0.96827, 0.96261, 0.95335, 0.94649, 0.93397, 0.91636, 0.89088, 0.8679,
)  # fmt: skip
_WAN22_TI2V_5B_T2V = (
    0.99505, 0.99441, 0.99558, 0.99499, 0.99534, 0.99468, 0.99463, 0.9946, 0.99408, 0.9945,
    0.99409, 0.99403, 0.99382, 0.99349, 0.99377, 0.9933, 0.99303, 0.99217, 0.992, 0.99201,
    0.99133, 0.99112, 0.99155, 0.98958, 0.98959, 0.98838, 0.98826, 0.9883, 0.98711, 0.98562,
    0.98511, 0.98414, 0.98284, 0.98104, 0.97981, 0.97849, 0.97557, 0.97398, 0.97171, 0.96917,
    0.96511, 0.96263, 0.95839, 0.95483, 0.94942, 0.9468, 0.94583, 0.94843, 0.96949,
)  # fmt: skip
_WAN22_TI2V_5B_I2V = (
    0.99512, 0.99559, 0.99595, 0.99512, 0.99546, 0.99543, 0.99496, 0.99504, 0.99444, 0.99481,
    0.99435, 0.9943, 0.99411, 0.99373, 0.99413, 0.99363, 0.99335, 0.99244, 0.99229, 0.99239,
    0.99163, 0.99149, 0.99191, 0.9898, 0.9899, 0.98849, 0.98846, 0.98861, 0.9874, 0.98588,
    0.98539, 0.98444, 0.9831, 0.98119, 0.98001, 0.97862, 0.97555, 0.97392, 0.97152, 0.96871,
    0.96435, 0.96129, 0.95639, 0.95176, 0.94446, 0.93972, 0.93575, 0.93537, 0.96655,
)  # fmt: skip
# Wan 2.2 A14B: one run through both experts; the drop near the middle is the switch.
_WAN22_T2V_A14B = (
    1.00124, 0.99822, 0.99696, 0.99703, 0.9966, 0.99602, 0.99578, 0.99484, 0.99633, 0.99659,
    0.99534, 0.99584, 0.99681, 0.99563, 0.9944, 0.99594, 0.99466, 0.99453, 0.99389, 0.99391,
    0.99354, 0.99283, 0.99268, 0.99057, 0.99125, 0.65523, 0.98808, 0.98765, 0.9851, 0.98311,
    0.9805, 0.97776, 0.97278, 0.96731, 0.95857, 0.94385, 0.92118, 0.88108, 0.80263,
)  # fmt: skip
_WAN22_I2V_A14B = (
    0.99191, 0.99356, 0.99326, 0.99251, 0.99393, 0.9943, 0.99276, 0.99389, 0.99274, 0.99316,
    0.99379, 0.99268, 0.99222, 0.99175, 0.91076, 0.98931, 0.99087, 0.98852, 0.98895, 0.98806,
    0.9871, 0.98613, 0.98434, 0.983, 0.98185, 0.98131, 0.9783, 0.97619, 0.97264, 0.97088,
    0.96568, 0.96045, 0.95322, 0.94579, 0.93297, 0.91699, 0.89174, 0.8541, 0.79823,
)  # fmt: skip


@dataclass(frozen=True)
class MagCachePreset:
    """Published MagCache ratios and the preset their authors run them with (E012K2R02 is
    threshold 0.12, K 2, retention 0.2)."""

    ratios: tuple[float, ...]  # one per step of the calibration run, step 0 first
    threshold: float
    max_skip_steps: int
    retention_ratio: float

    def ratios_for(self, steps: int) -> list[float]:
        """The ratios over `steps` steps, by the authors' nearest-neighbour interpolation."""
        calibrated = (1.0, *self.ratios)
        if steps == len(calibrated):
            return list(calibrated)
        if steps == 1:
            return [calibrated[-1]]
        scale = (len(calibrated) - 1) / (steps - 1)
        return [calibrated[round(i * scale)] for i in range(steps)]


def _preset(
    ratios: tuple[float, ...], threshold: float, k: int, retention: float
) -> MagCachePreset:
    return MagCachePreset(ratios, threshold, k, retention)


# Presets as the authors' READMEs run each model (MagCache4Wan2.1, MagCache4Wan2.2).
MAGCACHE: dict[str, dict[Capability | None, MagCachePreset]] = {
    "wan2.1-t2v-1.3b": {None: _preset(_WAN21_T2V_1_3B, 0.12, 2, 0.2)},
    "wan2.1-t2v-14b": {None: _preset(_WAN21_T2V_14B, 0.12, 2, 0.2)},
    "wan2.1-i2v-14b-480p": {None: _preset(_WAN21_I2V_480P, 0.12, 2, 0.2)},
    "wan2.1-i2v-14b-720p": {None: _preset(_WAN21_I2V_720P, 0.12, 2, 0.2)},
    "wan2.2-ti2v-5b": {
        None: _preset(_WAN22_TI2V_5B_T2V, 0.06, 2, 0.2),
        Capability.IMAGE: _preset(_WAN22_TI2V_5B_I2V, 0.06, 2, 0.2),
    },
    "wan2.2-t2v-a14b": {None: _preset(_WAN22_T2V_A14B, 0.06, 2, 0.4)},
    "wan2.2-i2v-a14b": {None: _preset(_WAN22_I2V_A14B, 0.06, 2, 0.1)},
    # The test model has the Wan 2.1 1.3B ratios: the skip schedule depends on them alone, so a
    # tiny 50-step job skips exactly what the real model would.
    "tiny": {None: _preset(_WAN21_T2V_1_3B, 0.12, 2, 0.2)},
}

# Families whose transformer blocks diffusers 0.42's cache hooks know (its block registry):
# LTX-2's and HunyuanVideo 1.5's blocks are not in it, so no step cache can run on them.
CACHE_FAMILIES = frozenset({"wan", "wan-ti2v", "ltx", "cogvideox"})

# FirstBlockCache's threshold on the relative change of the first block's residual: the value
# ParaAttention's and cache-dit's documentation run video and FLUX models with.
FIRST_BLOCK_THRESHOLD = 0.12


def base_id(spec: ModelSpec) -> str:
    """The catalogue id `spec` is an instance of (a folder's spec keeps its entry's name)."""
    if spec.id in catalogue():
        return spec.id
    for entry in catalogue().values():
        if entry.name == spec.name:
            return entry.id
    return spec.id


def why_no_cache(spec: ModelSpec) -> str | None:
    """Why `speed=balanced` cannot run `spec`; None when it can."""
    if spec.family in CACHE_FAMILIES:
        return None
    return (
        f"{spec.id} has no step cache: diffusers' caches do not support its transformer blocks, "
        f"so speed=balanced cannot run it; use quality (or fast where it has a distilled LoRA)"
    )


def magcache_preset(spec: ModelSpec, capability: Capability) -> MagCachePreset | None:
    presets = MAGCACHE.get(base_id(spec))
    if presets is None:
        return None
    return presets.get(capability, presets[None])


def describe(spec: ModelSpec, capability: Capability) -> str:
    """What `balanced` does for `spec`, in a few words (for docs and logs)."""
    preset = magcache_preset(spec, capability)
    if preset is None:
        return f"FirstBlockCache (threshold {FIRST_BLOCK_THRESHOLD:g})"
    return (
        f"MagCache (threshold {preset.threshold:g}, at most {preset.max_skip_steps} steps in a "
        f"row, first {preset.retention_ratio:.0%} kept)"
    )


def enable(
    pipe: Any,
    denoisers: Sequence[Any],
    spec: ModelSpec,
    capability: Capability,
    steps: int,
    strength: float | None = None,
) -> None:
    """Switch the model's cache on for one job of `steps` steps (video input: re-noised to
    `strength`, so only the last steps run)."""
    preset = magcache_preset(spec, capability)
    if preset is None:
        from diffusers import FirstBlockCacheConfig

        for denoiser in denoisers:
            denoiser.enable_cache(FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD))
        return
    from diffusers import MagCacheConfig

    ratios = preset.ratios_for(steps)
    first = _first_step(steps, strength)
    retained = int(preset.retention_ratio * steps + 0.5)
    for denoiser, (start, end) in zip(
        denoisers, _expert_windows(pipe, denoisers, steps, first), strict=True
    ):
        if end <= start:
            continue  # this expert runs no step of this job
        count = end - start
        denoiser.enable_cache(
            MagCacheConfig(
                threshold=preset.threshold,
                max_skip_steps=preset.max_skip_steps,
                # The steps the preset keeps are counted over the whole run, not per expert.
                retention_ratio=max(0, retained - start) / count,
                num_inference_steps=count,
                mag_ratios=ratios[start:end],
            )
        )


def disable(denoisers: Sequence[Any]) -> None:
    """Remove every cache hook: the next job starts with none, and no state."""
    for denoiser in denoisers:
        if getattr(denoiser, "is_cache_enabled", False):
            denoiser.disable_cache()


def _first_step(steps: int, strength: float | None) -> int:
    """The first step a video-to-video job runs (as diffusers' `get_timesteps`)."""
    if strength is None:
        return 0
    return steps - min(int(steps * strength), steps)


def _expert_windows(
    pipe: Any, denoisers: Sequence[Any], steps: int, first: int
) -> list[tuple[int, int]]:
    """The steps each denoiser runs: all of them for one; for Wan 2.2's two experts, the high
    noise one down to the boundary timestep and the low noise one after it."""
    if len(denoisers) == 1:
        return [(first, steps)]
    boundary = pipe.config.boundary_ratio * pipe.scheduler.config.num_train_timesteps
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(steps)
    switch = sum(1 for t in scheduler.timesteps if float(t) >= boundary)
    return [(first, max(first, switch)), (max(first, switch), steps)]


def computed_steps(preset: MagCachePreset, steps: int) -> int:
    """How many of `steps` steps MagCache computes on one branch: diffusers' decision rule
    replayed on the ratios (what `speed=balanced` saves, known before any job runs)."""
    ratios = preset.ratios_for(steps)
    retained = int(preset.retention_ratio * steps + 0.5)
    computed, ratio, err, skipped, have_residual = 0, 1.0, 0.0, 0, False
    for step in range(steps):
        skip = False
        if step >= retained:
            ratio *= ratios[step]
            skipped += 1
            err += abs(1.0 - ratio)
            if have_residual and err <= preset.threshold and skipped <= preset.max_skip_steps:
                skip = True
            else:
                ratio, skipped, err = 1.0, 0, 0.0
        if not skip:
            computed += 1
            have_residual = True
    return computed


__all__ = [
    "CACHE_FAMILIES",
    "FIRST_BLOCK_THRESHOLD",
    "MAGCACHE",
    "MagCachePreset",
    "base_id",
    "computed_steps",
    "describe",
    "disable",
    "enable",
    "magcache_preset",
    "why_no_cache",
]
