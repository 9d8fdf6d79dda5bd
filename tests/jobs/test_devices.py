"""The check at submit: what this server's devices can hold, and what its groups can split."""

import pytest

from moviola.config import Settings
from moviola.engine import (
    GenerationRequest,
    InsufficientMemoryError,
    MemoryPreference,
    UnsupportedInputError,
    get_model,
    plan,
)
from moviola.engine.memory import GIB, ram_bytes
from moviola.jobs.devices import Devices, check_fits, devices_of


def resolved(model: str, size=None, seconds=4.0):
    return plan(GenerationRequest("a harbour", model=model, size=size, seconds=seconds))


def test_the_gpu_memory_setting_says_what_each_device_holds(tmp_path):
    settings = Settings(data_dir=tmp_path, gpu_memory_gb=24)
    assert devices_of(settings) == Devices((24 * GIB,), accelerator=True)


def test_a_machine_without_a_gpu_checks_against_its_ram(tmp_path):
    assert devices_of(Settings(data_dir=tmp_path)) == Devices((ram_bytes(),), accelerator=False)


def test_a_ray_clusters_gpus_are_not_guessed(tmp_path, caplog):
    caplog.set_level("INFO", logger="moviola.jobs.devices")
    assert devices_of(Settings(data_dir=tmp_path, executor="ray")) is None
    assert "MOVIOLA_GPU_MEMORY_GB" in caplog.text
    check_fits(resolved("wan2.1-t2v-14b"), None, MemoryPreference.AUTO)  # nothing to check


def test_a_request_is_checked_for_every_model_it_runs():
    # Wan 2.1 1.3B continues its segments with Wan 2.1 I2V 14B, far bigger.
    long = resolved("wan2.1-t2v-1.3b", seconds=10)
    assert long.chain_spec is not None
    small_gpu = Devices((4 * GIB,), accelerator=True)
    check_fits(resolved("wan2.1-t2v-1.3b", seconds=4), small_gpu, MemoryPreference.AUTO)
    with pytest.raises(InsufficientMemoryError, match=r"wan2\.1-i2v-14b-480p"):
        check_fits(long, Devices((4 * GIB,), accelerator=True), MemoryPreference.AUTO)


def test_a_model_a_group_cannot_split_is_refused_when_jobs_are_split():
    big_gpu = Devices((80 * GIB,), accelerator=True)
    ltx = resolved("ltx-2", size=(768, 512))
    check_fits(ltx, big_gpu, MemoryPreference.AUTO, ranks=1)
    with pytest.raises(UnsupportedInputError, match="splits each job across 2 GPUs") as err:
        check_fits(ltx, big_gpu, MemoryPreference.AUTO, ranks=2)
    assert err.value.param == "model"
    check_fits(resolved("wan2.1-t2v-1.3b"), big_gpu, MemoryPreference.AUTO, ranks=2)
    assert get_model("wan2.1-t2v-1.3b").transformer.cls == "WanTransformer3DModel"
