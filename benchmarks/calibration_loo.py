"""Leave-one-out error of the calibrated roofline on every measured cell (issue 5: target median <= 15%).

Loads every GPU run's llama-bench cells (``benchmarks/results/gpu/*/``: an H200 and an H100) and this machine's
controlled CPU cells (``cpu_bench_cells.json``, from ``benchmarks/cpu_cells_bench.py``; the sweep cells of
``cpu_cells.json`` stand in when it is missing), calibrates each group (backend family on one device kind) on all
its cells to show the fitted parameters, then projects every cell from a calibration refitted on the *other* cells
of its group (a GGUF's cells at other prompt lengths are held out with it). Three models are compared: η per weight
kernel with shared overheads (the default: per layer per step for decode; per layer per prompt and per prompt token
per layer for prefill), one pooled η with the same overheads, and a pooled η alone. A sensitivity run repeats the
CPU group with the GGUF file size as bytes per token instead of the catalog's ``params x bits / 8``, and the sweep's
CPU cells are projected from the controlled calibration as an out-of-sample check (different prompts, times and
load; nothing of them is fitted).

    .venv/bin/python benchmarks/calibration_loo.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from lalo_bench.hardware import calibration as cal

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("decode", "prefill", "ttft")
VARIANTS = {"per_kernel": (True, True), "overhead": (True, False), "eta_only": (False, False)}
"""name: (fit_overhead, per_kernel)"""


def _medians(results: list[cal.LooResult]) -> dict[str, float | None]:
    return {m: cal.median_abs_error(results, m) for m in METRICS}  # type: ignore[arg-type]


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _params(eff: Any) -> dict[str, Any]:
    return {
        "eta_mem": eff.eta_mem,
        "eta_mem_by_kernel": eff.eta_mem_by_kernel,
        "step_overhead_per_layer_us": eff.step_overhead_per_layer_s * 1e6,
        "eta_prefill": eff.eta_prefill,
        "eta_prefill_by_kernel": eff.eta_prefill_by_kernel,
        "prefill_overhead_per_layer_us": eff.prefill_overhead_per_layer_s * 1e6,
        "prefill_overhead_per_token_layer_us": eff.prefill_overhead_per_token_layer_s * 1e6,
        "calibration_id": eff.calibration_id,
        "source": eff.source,
    }


def evaluate(groups: dict[str, list[cal.MeasuredCell]]) -> dict[str, Any]:
    """Fit, LOO and medians per group and overall, for each model variant."""
    out: dict[str, Any] = {"groups": {}, "overall": {}}
    pooled: dict[str, list[cal.LooResult]] = {v: [] for v in VARIANTS}
    for name, cells in groups.items():
        entry: dict[str, Any] = {"cells": len(cells)}
        for variant, (fit, per_kernel) in VARIANTS.items():
            loo = cal.leave_one_out(cells, fit_overhead=fit, per_kernel=per_kernel)
            pooled[variant].extend(loo)
            entry[variant] = {
                "fit_on_all": _params(cal.calibrate(cells, fit_overhead=fit, per_kernel=per_kernel)),
                "loo": [r.model_dump() for r in loo],
                "median_abs_pct_error": _medians(loo),
            }
        out["groups"][name] = entry
    out["overall"] = {v: _medians(r) for v, r in pooled.items()}
    return out


def print_report(title: str, result: dict[str, Any]) -> None:
    print(f"\n=== {title}")
    for name, entry in result["groups"].items():
        fit = entry["per_kernel"]["fit_on_all"]
        print(
            f"\n[{name}] {entry['cells']} cells; fit on all: eta_mem {fit['eta_mem']:.3f} (per kernel: "
            f"{_kernels(fit['eta_mem_by_kernel'])}) + {fit['step_overhead_per_layer_us']:.1f} us/layer, eta_prefill "
            f"{fit['eta_prefill']:.4f} (per kernel: {_kernels(fit['eta_prefill_by_kernel'])}) + "
            f"{fit['prefill_overhead_per_layer_us']:.1f} us/layer + "
            f"{fit['prefill_overhead_per_token_layer_us']:.2f} us/token/layer"
        )
        print(_table(entry["per_kernel"]["loo"], "cell (LOO, per-kernel model)"))
        for variant in VARIANTS:
            med = entry[variant]["median_abs_pct_error"]
            print(f"  median abs % error [{variant:10}]: " + ", ".join(f"{m} {_fmt(med[m])}" for m in METRICS))
    for variant, med in result["overall"].items():
        line = ", ".join(f"{m} {_fmt(med[m])}" for m in METRICS)
        print(f"all groups above, pooled: median abs % error [{variant:10}]: {line}")


def _kernels(etas: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(etas.items())) or "-"


def _table(results: list[dict[str, Any]], title: str) -> str:
    lines = [f"{title:66} {'metric':7} {'measured':>10} {'projected':>10} {'abs %':>7}"]
    for r in results:
        name = r["cell"] + (f" pp{r['prompt_tokens']}" if r["prompt_tokens"] else "")
        for m, unit in (("decode", "tok_s"), ("prefill", "tok_s"), ("ttft", "ms")):
            meas, proj = r[f"measured_{m}_{unit}"], r[f"projected_{m}_{unit}"]
            if meas is not None:
                lines.append(f"{name:66} {m:7} {meas:10.1f} {proj:10.1f} {_fmt(r[f'{m}_abs_pct_error']):>7}")
    return "\n".join(lines)


def out_of_sample(fit_cells: list[cal.MeasuredCell], check_cells: list[cal.MeasuredCell]) -> dict[str, Any]:
    """Project ``check_cells`` with the calibration fitted on all of ``fit_cells`` (none of them fitted)."""
    eff = cal.calibrate(fit_cells)
    results = [cal.project_from(c, eff, len(fit_cells)) for c in check_cells]
    return {
        "fit": _params(eff),
        "results": [r.model_dump() for r in results],
        "median_abs_pct_error": _medians(results),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--gpu", type=Path, action="append", help="llama-bench JSON (default: every benchmarks/results/gpu/*/)"
    )
    ap.add_argument("--cpu-bench", type=Path, default=ROOT / cal.CPU_BENCH_CELLS)
    ap.add_argument("--cpu", type=Path, default=ROOT / cal.CPU_CELLS, help="the sweep's CPU cells")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/calibration_loo.json")
    args = ap.parse_args()
    gpu_files = args.gpu or cal.gpu_llama_bench_files(ROOT)
    cells = [c for path in gpu_files for c in cal.cells_from_llama_bench(path)]
    sweep = cal.cells_from_cpu_json(args.cpu) if args.cpu.exists() else []
    cpu_file_bytes: list[cal.MeasuredCell] = []
    if args.cpu_bench.exists():
        cpu = cal.cells_from_cpu_bench(args.cpu_bench)
        cpu_file_bytes = cal.cells_from_cpu_bench(args.cpu_bench, bytes_per_token="file")
    elif sweep:
        print(f"no {args.cpu_bench}: the CPU group is the sweep's cells", file=sys.stderr)
        cpu, sweep = sweep, []
        cpu_file_bytes = cal.cells_from_cpu_json(args.cpu, bytes_per_token="file")
    else:
        cpu = []
        print(f"no {args.cpu_bench} nor {args.cpu}: CPU group left out", file=sys.stderr)
    cells += cpu
    groups: dict[str, list[cal.MeasuredCell]] = {}
    for c in cells:
        groups.setdefault(c.group, []).append(c)
    result = evaluate(groups)
    print_report("catalog bytes per token (the projection's rule)", result)
    sensitivity = evaluate({"llamacpp/cpu": cpu_file_bytes}) if cpu_file_bytes else None
    if sensitivity:
        print_report("sensitivity: CPU cells with GGUF file size as bytes per token", sensitivity)
    sweep_check = out_of_sample(cpu, sweep) if cpu and sweep else None
    if sweep_check:
        print(f"\n=== out of sample: the sweep's CPU cells ({args.cpu.name}) projected from the controlled calibration")
        print(_table(sweep_check["results"], "cell (not fitted)"))
        med = sweep_check["median_abs_pct_error"]
        print("  median abs % error: " + ", ".join(f"{m} {_fmt(med[m])}" for m in METRICS))
    roofline = {c.label + (f" pp{c.prompt_tokens}" if c.series else ""): round(c.roofline_pct, 1) for c in cells}
    listing = ", ".join(f"{k} {v}" for k, v in roofline.items())
    median_pct = statistics.median(roofline.values())
    print(f"\nroofline % (measured decode / bandwidth ceiling), median {median_pct:.1f}: {listing}")
    data = {
        "description": "leave-one-out abs % error of the calibrated roofline per group (benchmarks/calibration_loo.py)",
        "inputs": {
            "gpu": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in gpu_files],
            "cpu": str(cal.CPU_BENCH_CELLS) if args.cpu_bench.exists() else str(cal.CPU_CELLS) if cpu else None,
            "cpu_out_of_sample": str(cal.CPU_CELLS) if sweep_check else None,
        },
        "roofline_pct": roofline,
        **result,
        "sensitivity_cpu_file_bytes": sensitivity,
        "out_of_sample_cpu_sweep_cells": sweep_check,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
