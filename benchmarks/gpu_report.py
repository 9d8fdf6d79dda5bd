"""The GPU benchmark's arithmetic and its two result files.

- `flops_per_forward`: the work of one Wan transformer forward (the count gpu.md §4 states:
  283 TFLOP for Wan 2.1 1.3B at 832×480, 81 frames);
- `figures`: from a row's measured stages to its job estimate, TFLOP/s, MFU and speed-up;
- `write`: `gpu_bench.json` (everything) and `gpu_bench.md` (the table), each replaced whole
  (written aside, then renamed) so that a run stopped at any point leaves both readable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TEXT_TOKENS = 512  # Wan pipelines pad every prompt to 512 tokens; cross-attention sees them all
JOB_STEPS = 50  # the steps the goals are stated for

# Every row has every one of these keys (None where it does not apply or did not run).
ROW_FIELDS = (
    "model",
    "row",
    "status",  # ok | error | timeout | skipped
    "reason",  # why, for any status but ok
    "steps",  # steps run and timed
    "job_steps",  # steps of the whole job the estimate is for
    "forwards_per_step",  # 2 with classifier-free guidance, 1 without
    "s_per_step",
    "encode_s",
    "decode_s",
    "est_job_s",  # encode + job_steps steps + decode
    "est_50_step_s",  # est_job_s where the job is 50 steps
    "peak_gb",
    "planned_peak_gb",  # what Moviola's memory planner expected
    "tflops",
    "mfu",  # of the device's datasheet bf16 peak
    "mfu_vs_probe",  # of the matmul probe's rate
    "speedup_vs_bare",  # bare diffusers' est_job_s over this row's
    "step_speedup_vs_bare",  # bare diffusers' s_per_step over this row's
    "load_s",
    "warmup_s",
    "wall_s",
    "details",
)


def flops_per_forward(
    config: Mapping[str, Any], tokens: int, text_tokens: int = TEXT_TOKENS
) -> float:
    """Multiply-adds × 2 of one `WanTransformer3DModel` forward over `tokens` latent tokens:
    per block, self-attention (q, k, v, o projections and QKᵀ, PV), cross-attention to the text
    (q, o on the video tokens, k, v on the text, QKᵀ, PV) and the feed-forward."""
    width = config["num_attention_heads"] * config["attention_head_dim"]
    ffn = config["ffn_dim"]
    n, t = tokens, text_tokens
    self_attention = 4 * 2 * n * width * width + 2 * 2 * n * n * width
    cross_attention = 2 * 2 * n * width * width + 2 * 2 * t * width * width + 2 * 2 * n * t * width
    feed_forward = 2 * 2 * n * width * ffn
    return float(config["num_layers"] * (self_attention + cross_attention + feed_forward))


def new_row(model: str, row: str) -> dict[str, Any]:
    fresh: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    fresh.update(model=model, row=row, status="running", details={})
    return fresh


def figures(
    row: dict[str, Any],
    *,
    step_times: Sequence[float],
    computed: Sequence[bool] | None,
    computed_in_job: int | None,
    flops_forward: float,
    peak_tflops: float | None,
    probe_tflops: float | None,
) -> None:
    """Fill a row's derived figures from its measured steps (`computed`: which of them ran the
    whole denoiser, for a step cache; `computed_in_job`: how many of the job's steps will)."""
    steps = len(step_times)
    if steps == 0:
        raise ValueError("no denoising step was timed")
    per_step = sum(step_times) / steps
    ran = [True] * steps if computed is None else list(computed)
    full = [t for t, c in zip(step_times, ran, strict=True) if c]
    cheap = [t for t, c in zip(step_times, ran, strict=True) if not c]
    full_step = sum(full) / len(full) if full else per_step
    cheap_step = sum(cheap) / len(cheap) if cheap else 0.0
    job = row["job_steps"]
    job_full = job if computed_in_job is None else computed_in_job
    denoise = job_full * full_step + (job - job_full) * cheap_step
    row["s_per_step"] = round(per_step, 4)
    row["est_job_s"] = round(row["encode_s"] + denoise + row["decode_s"], 2)
    row["est_50_step_s"] = row["est_job_s"] if job == JOB_STEPS else None
    done = len(full) * row["forwards_per_step"] * flops_forward
    rate = done / sum(step_times) / 1e12
    row["tflops"] = _sig(rate)
    row["mfu"] = _sig(rate / peak_tflops) if peak_tflops else None
    row["mfu_vs_probe"] = _sig(rate / probe_tflops) if probe_tflops else None
    if computed is not None:
        row["details"]["computed_steps"] = sum(computed)
        row["details"]["computed_in_job"] = computed_in_job
        row["details"]["s_per_computed_step"] = round(full_step, 4)
        row["details"]["s_per_skipped_step"] = round(cheap_step, 4)


def _sig(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def compare(row: dict[str, Any], bare: dict[str, Any] | None) -> None:
    if bare is None or bare["status"] != "ok" or row["status"] != "ok":
        return
    row["speedup_vs_bare"] = round(bare["est_job_s"] / row["est_job_s"], 3)
    row["step_speedup_vs_bare"] = round(bare["s_per_step"] / row["s_per_step"], 3)


def write(out: Path, doc: Mapping[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / "gpu_bench.json", json.dumps(doc, indent=2, default=str) + "\n")
    _replace(out / "gpu_bench.md", markdown(doc))


def _replace(path: Path, text: str) -> None:
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(text)
    os.replace(aside, path)


# --- The markdown ------------------------------------------------------------------------------


def markdown(doc: Mapping[str, Any]) -> str:
    env = doc.get("environment") or {}
    lines = [f"# Moviola GPU benchmark ({doc['mode']})", ""]
    if doc["mode"] == "tiny":
        lines += [
            "**A structure check, not a performance figure:** the `tiny` test model's "
            "dimensions on a CPU.",
            "",
        ]
    lines += [
        f"- device: {env.get('device_name', '?')} ({env.get('device', '?')}"
        + (f", {env['capability']}, {env['memory_gb']} GB" if env.get("capability") else "")
        + f"); bf16 peak from the datasheet table: {_num(env.get('peak_bf16_tflops'))} TFLOP/s",
        f"- torch {env.get('torch')} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}), "
        f"diffusers {env.get('diffusers')}, transformers {env.get('transformers')}, "
        f"moviola {env.get('moviola')} ({env.get('commit')})",
        f"- {doc['steps']} steps per row after a 2-step warm-up; the job estimate is text "
        f"encoding + {JOB_STEPS} steps (`fast`: its own) at the measured rate + decode",
        f"- started {doc['started']}, budget {doc['budget_s']} s"
        + (f", finished {doc['finished']}" if doc.get("finished") else ", not finished")
        + (" (stopped: the budget ran out)" if doc.get("stopped") else ""),
    ]
    probe = (doc.get("probes") or {}).get("matmul") or {}
    if probe.get("tflops") is not None:
        lines.append(
            f"- matmul probe {'×'.join(map(str, probe['shape']))} {probe['dtype']}: "
            f"{_num(probe['tflops'])} TFLOP/s"
        )
    elif probe.get("error"):
        lines.append(f"- matmul probe: {probe['error']}")
    for model, setup in (doc.get("models") or {}).items():
        lines += ["", f"## {model}", ""]
        lines += _setup_lines(setup)
        rows = [r for r in doc["rows"] if r["model"] == model]
        lines += ["", *_table(rows)]
        goals = setup.get("goals")
        if goals:
            lines += ["", "Goals (H100/H200, 832×480, 81 frames, 50 steps):", ""]
            lines += [f"- {g['goal']}: {g['verdict']}" for g in goals]
    return "\n".join(lines) + "\n"


def _setup_lines(setup: Mapping[str, Any]) -> list[str]:
    width, height = setup["size"]
    lines = [
        f"- {width}×{height}, {setup['frames']} frames: {setup['tokens']:,} tokens, "
        f"{_num(setup['flops_per_forward'] / 1e12)} TFLOP per transformer forward"
    ]
    if setup.get("status") not in (None, "ok"):
        lines.append(f"- setup {setup['status']}: {setup.get('reason')}")
    sdpa = setup.get("sdpa") or {}
    if sdpa.get("default_tflops") is not None:
        forced = ", ".join(
            f"{name.split('_')[0].lower()} {_num(rate) if isinstance(rate, float) else 'n/a'}"
            for name, rate in (sdpa.get("backends") or {}).items()
        )
        picks = sdpa.get("default_picks") or sdpa.get("nearest_forced")
        lines.append(
            f"- SDPA at {tuple(sdpa['shape'])}: default {_num(sdpa['default_tflops'])} TFLOP/s"
            + (f" (picks {picks})" if picks else "")
            + (f"; forced: {forced}" if forced else "")
        )
    unmarked = setup.get("loader_without_marker")
    if unmarked:
        said = unmarked.get("model") or f"no model: {unmarked.get('error', '').split('. ')[0]}"
        lines.append(f"- the loader takes the folder without `moviola.json` for: {said}")
    return lines


_COLUMNS = (
    ("row", "row"),
    ("status", "status"),
    ("s/step", "s_per_step"),
    ("job est. s", "est_job_s"),
    ("encode s", "encode_s"),
    ("decode s", "decode_s"),
    ("peak GB", "peak_gb"),
    ("planned GB", "planned_peak_gb"),
    ("TFLOP/s", "tflops"),
    ("MFU", "mfu"),
    ("MFU (probe)", "mfu_vs_probe"),
    ("× bare", "speedup_vs_bare"),
    ("warm-up s", "warmup_s"),
)


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| " + " | ".join(title for title, _ in _COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    for row in rows:
        cells = []
        for _, key in _COLUMNS:
            value = row.get(key)
            if key == "row" and row.get("job_steps") not in (None, JOB_STEPS):
                value = f"{value} ({row['job_steps']} steps)"
            if key in ("mfu", "mfu_vs_probe") and isinstance(value, float):
                value = f"{value:.1%}"
            cells.append(_num(value))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['row']}: {r['reason']}" for r in rows if r.get("reason")]
    return lines + (["", *notes] if notes else [])


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)
