"""The attention backend: chosen per GPU, set on every loaded denoiser, never leaked."""

import logging

import numpy as np
import pytest
import torch
from diffusers.models.attention_dispatch import _AttentionBackendRegistry

from moviola.engine import Engine, GenerationRequest
from moviola.engine.attention import (
    AttentionSettingError,
    Choice,
    apply,
    backend_of,
    choose,
    log_choice,
    resolve,
)
from moviola.engine.speed import SpeedSettings
from moviola.engine.tiny import TINY, build_tiny_pipeline

H100, ADA, AMPERE = (9, 0), (8, 9), (8, 0)


@pytest.mark.parametrize(
    ("gpu", "installed", "backend", "falls_back"),
    [
        (H100, {"_flash_3", "_flash_3_hub", "sage", "flash"}, "_flash_3", False),
        (H100, {"_flash_3_hub", "flash"}, "_flash_3_hub", True),
        (H100, {"sage", "flash"}, "_native_cudnn", True),  # sm90: cuDNN over FA2 or Sage
        (H100, set(), "_native_cudnn", True),
        (ADA, {"sage", "flash"}, "sage", False),
        (ADA, {"flash"}, "flash", True),
        (ADA, set(), "native", True),
        (AMPERE, {"_flash_3"}, "native", True),  # FlashAttention-3 is for sm90 only
        (None, {"sage", "flash", "_flash_3"}, "native", False),  # a CPU
    ],
)
def test_the_backend_is_chosen_per_gpu_from_what_is_installed(gpu, installed, backend, falls_back):
    choice = choose(gpu, installed)
    assert choice.backend == backend
    assert (choice.fallback is not None) == falls_back


def test_a_fallback_says_what_was_wanted_why_not_and_what_is_used(caplog):
    choice = choose(ADA, set())
    with caplog.at_level(logging.INFO, logger="moviola.engine"):
        log_choice(choice, "cuda:0")
    [line] = caplog.records
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "sage wanted on sm89" in message
    assert "sageattention" in message and "not installed" in message
    assert message.endswith("using native")


def test_auto_on_a_cpu_is_native():
    assert resolve("auto", "cpu") == Choice("native")


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("flash_attention", "not an attention backend"),
        ("_native_cudnn", "needs a CUDA GPU"),
        ("sage", "needs a CUDA GPU"),
    ],
)
def test_an_unknown_or_unusable_setting_is_an_error_not_a_fallback(setting, reason):
    with pytest.raises(AttentionSettingError) as refused:
        resolve(setting, "cpu")
    assert reason in refused.value.message
    assert "MOVIOLA_ATTENTION_BACKEND" in refused.value.message


def test_an_engine_refuses_a_bad_setting_before_any_job():
    engine = Engine(speed=SpeedSettings(attention="flash_attention"))
    with pytest.raises(AttentionSettingError):
        engine.check_speed_settings()


def test_the_backend_is_set_on_each_model_and_the_process_default_is_left_alone():
    default = _AttentionBackendRegistry.get_active_backend()[0]
    transformer = build_tiny_pipeline(TINY).transformer
    apply([transformer], "_native_math")
    assert backend_of(transformer) == "_native_math"
    assert _AttentionBackendRegistry.get_active_backend()[0] == default
    # A model loaded after it runs the default, not the other model's kernel.
    assert backend_of(build_tiny_pipeline(TINY).transformer) is None


def test_a_job_runs_its_engine_s_backend_on_the_loaded_denoiser():
    default = _AttentionBackendRegistry.get_active_backend()[0]
    engine = Engine(speed=SpeedSettings(attention="_native_math"))
    seen = []

    def transformer_of(module, args):
        if type(module).__name__ == "WanTransformer3DModel":
            seen.append(backend_of(module))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(transformer_of)
    try:
        math = engine.generate(GenerationRequest("a kite", model="tiny", frames=9, seed=2))
    finally:
        handle.remove()
    assert set(seen) == {"_native_math"}
    assert _AttentionBackendRegistry.get_active_backend()[0] == default
    native = Engine().generate(GenerationRequest("a kite", model="tiny", frames=9, seed=2))
    assert np.abs(math.frames.astype(int) - native.frames.astype(int)).max() <= 2
