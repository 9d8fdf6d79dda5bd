"""The GPU benchmark's structure, checked on a CPU: `benchmarks/gpu.py --tiny` runs every row the
GPU run does, at the tiny model's size, and the full-size models it builds are the catalogue's."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from moviola.engine import get_model

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
ROWS = ["bare diffusers", "quality", "balanced", "fast"]


def benchmark_module(name: str) -> ModuleType:
    # The benchmark's modules import each other by name, as they do when it runs as a script.
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def run_bench(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), *args],
        cwd=ROOT,
        env={**os.environ, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-out")
    done = run_bench(out, "--tiny")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "doc": json.loads((out / "gpu_bench.json").read_text())}


@pytest.mark.slow
def test_tiny_run_times_every_row_with_every_field(tiny_run: dict) -> None:
    report = benchmark_module("gpu_report")
    doc = tiny_run["doc"]
    assert doc["mode"] == "tiny" and doc["finished"]
    assert [r["row"] for r in doc["rows"]] == ROWS
    for row in doc["rows"]:
        assert set(report.ROW_FIELDS) <= set(row), row["row"]
        assert row["status"] == "ok", (row["row"], row["reason"], row["details"])
        for field in ("s_per_step", "encode_s", "decode_s", "est_job_s", "peak_gb", "tflops"):
            assert row[field] > 0, (row["row"], field)
        assert row["mfu"] is None  # a CPU has no datasheet bf16 peak
        assert row["mfu_vs_probe"] > 0
    bare, quality, balanced, fast = doc["rows"]
    assert bare["speedup_vs_bare"] is None
    assert quality["speedup_vs_bare"] > 0 and quality["planned_peak_gb"] > 0
    # The dense rows run the steps asked for, with guidance: two forwards a step, 50 in the job.
    for row in (bare, quality, balanced):
        assert (row["steps"], row["forwards_per_step"], row["job_steps"]) == (4, 2, 50)
        assert row["est_50_step_s"] == row["est_job_s"]
    # fast runs the route's own steps (the tiny route: 3) without guidance, from the LoRA file
    # the benchmark wrote where the preset looks for it.
    assert (fast["steps"], fast["forwards_per_step"], fast["job_steps"]) == (3, 1, 3)
    assert fast["est_50_step_s"] is None
    assert fast["details"]["lora"] == ["tiny_distilled_lora.safetensors"]
    assert fast["details"]["guidance"] == 1.0


@pytest.mark.slow
def test_the_balanced_row_skips_what_magcache_schedules(tiny_run: dict) -> None:
    balanced = tiny_run["doc"]["rows"][2]["details"]
    assert balanced["cache"].startswith("MagCache")
    # Counted in the run (the last block ran), and replayed from the published ratios.
    assert balanced["computed_steps"] == balanced["computed_expected"] < 4
    assert balanced["computed_in_job"] == 25  # of 50, with Wan 2.1 1.3B's ratios


@pytest.mark.slow
def test_tiny_run_records_the_machine_and_the_loader(tiny_run: dict) -> None:
    doc = tiny_run["doc"]
    assert doc["environment"]["torch"] and doc["environment"]["diffusers"]
    assert doc["probes"]["matmul"]["tflops"] > 0
    setup = doc["models"]["tiny"]
    assert setup["status"] == "ok"
    assert setup["sdpa"]["default_tflops"] > 0
    # Without its marker the folder is no catalogue model (test models never match a folder).
    assert setup["loader_without_marker"]["model"] is None
    assert "matches no catalogue model" in setup["loader_without_marker"]["error"]
    assert setup["loader_with_marker"]["model"] == "tiny"


@pytest.mark.slow
def test_tiny_run_writes_a_labelled_markdown_table(tiny_run: dict) -> None:
    table = (tiny_run["out"] / "gpu_bench.md").read_text()
    assert "not a performance figure" in table
    assert "| row | status | s/step | job est. s |" in table
    for row in ("| bare diffusers | ok |", "| quality | ok |", "| fast (3 steps) | ok |"):
        assert row in table


def test_a_row_that_no_longer_fits_the_budget_is_skipped_and_recorded(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--tiny", "--budget", "5")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert doc["models"]["tiny"]["status"] == "skipped"
    assert [(r["row"], r["status"]) for r in doc["rows"]] == [(r, "skipped") for r in ROWS]
    assert all(r["reason"] == "setup skipped" for r in doc["rows"])


def test_flops_per_forward_is_the_reference_count_for_wan_1_3b() -> None:
    report = benchmark_module("gpu_report")
    config = get_model("wan2.1-t2v-1.3b").transformer.config
    # 832×480, 81 frames: 21 latent frames of 52×30 patches.
    flops = report.flops_per_forward(config, 21 * 52 * 30)
    assert flops / 1e12 == pytest.approx(283.0, abs=0.5)
    attention_only = report.flops_per_forward({**config, "ffn_dim": 0}, 21 * 52 * 30)
    assert attention_only > 0.8 * flops  # attention and its projections: most of the step


@pytest.mark.parametrize("model", ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b"])
def test_full_size_kits_are_the_catalogue_models(model: str) -> None:
    models = benchmark_module("gpu_models")
    spec = get_model(model)
    pipe = models.build(models.kit(model), "meta", None, None)  # no memory, no weights
    counts = {
        "transformer": sum(p.numel() for p in pipe.transformer.parameters()),
        "text_encoder": sum(p.numel() for p in pipe.text_encoder.parameters()),
        "vae": sum(p.numel() for p in pipe.vae.parameters()),
    }
    assert counts["transformer"] == pytest.approx(spec.transformer.published_params, rel=0.02)
    for name in ("text_encoder", "vae"):
        assert counts[name] == pytest.approx(spec.component_params[name], rel=0.01), name
    assert pipe.scheduler.config.flow_shift == spec.flow_shift


def test_random_lora_has_the_routes_rank_and_lands_where_fast_looks(tmp_path: Path) -> None:
    from safetensors import safe_open

    from moviola.engine.distilled import find_files, route_for

    models = benchmark_module("gpu_models")
    kit = models.kit("wan2.1-t2v-1.3b")
    [path] = models.save_random_lora(kit, tmp_path)
    spec = get_model("wan2.1-t2v-1.3b")
    [(_, found)] = find_files(spec, route_for(spec), tmp_path)
    assert found == path
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        down = f.get_tensor("diffusion_model.blocks.29.self_attn.q.lora_down.weight")
        up = f.get_tensor("diffusion_model.blocks.0.ffn.0.lora_up.weight")
    # 30 blocks × 10 layers (self and cross attention q, k, v, o; the two feed-forward
    # layers), each a down and an up matrix of rank 32.
    assert len(keys) == 30 * 10 * 2
    assert tuple(down.shape) == (32, 1536) and tuple(up.shape) == (8960, 32)
