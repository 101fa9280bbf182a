"""Leave-one-out error of the calibrated roofline on every measured cell (issue 5: target median <= 15%).

Loads the H200 llama-bench cells and the CPU cells exported from this machine's sweeps
(``benchmarks/results/cpu_cells.json``), calibrates each group (backend family on one device kind) on all its
cells to show the fitted parameters, then projects every cell from a calibration refitted on the *other* cells of
its group. Two models are compared: η with a fixed per-layer overhead (the default) and η alone. A sensitivity run
repeats the CPU group with the GGUF file size as bytes per token instead of the catalog's ``params x bits / 8``.

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


def _medians(results: list[cal.LooResult]) -> dict[str, float | None]:
    return {m: cal.median_abs_error(results, m) for m in METRICS}  # type: ignore[arg-type]


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _params(eff: Any) -> dict[str, Any]:
    return {
        "eta_mem": eff.eta_mem,
        "step_overhead_per_layer_us": eff.step_overhead_per_layer_s * 1e6,
        "eta_prefill": eff.eta_prefill,
        "prefill_overhead_per_layer_us": eff.prefill_overhead_per_layer_s * 1e6,
        "calibration_id": eff.calibration_id,
        "source": eff.source,
    }


def evaluate(groups: dict[str, list[cal.MeasuredCell]]) -> dict[str, Any]:
    """Fit, LOO and medians per group and overall, for the overhead model and for η alone."""
    out: dict[str, Any] = {"groups": {}, "overall": {}}
    pooled: dict[str, list[cal.LooResult]] = {"overhead": [], "eta_only": []}
    for name, cells in groups.items():
        entry: dict[str, Any] = {"cells": len(cells)}
        for variant, fit in (("overhead", True), ("eta_only", False)):
            loo = cal.leave_one_out(cells, fit_overhead=fit)
            pooled[variant].extend(loo)
            entry[variant] = {
                "fit_on_all": _params(cal.calibrate(cells, fit_overhead=fit)),
                "loo": [r.model_dump() for r in loo],
                "median_abs_pct_error": _medians(loo),
            }
        out["groups"][name] = entry
    out["overall"] = {v: _medians(r) for v, r in pooled.items()}
    return out


def print_report(title: str, result: dict[str, Any]) -> None:
    print(f"\n=== {title}")
    for name, entry in result["groups"].items():
        fit = entry["overhead"]["fit_on_all"]
        print(
            f"\n[{name}] {entry['cells']} cells; fit on all: eta_mem {fit['eta_mem']:.3f} + "
            f"{fit['step_overhead_per_layer_us']:.1f} us/layer, eta_prefill {fit['eta_prefill']:.4f} + "
            f"{fit['prefill_overhead_per_layer_us']:.1f} us/layer"
        )
        print(f"{'cell (LOO, overhead model)':58} {'metric':7} {'measured':>10} {'projected':>10} {'abs %':>7}")
        for r in entry["overhead"]["loo"]:
            for m, unit in (("decode", "tok_s"), ("prefill", "tok_s"), ("ttft", "ms")):
                meas, proj = r[f"measured_{m}_{unit}"], r[f"projected_{m}_{unit}"]
                if meas is None:
                    continue
                print(f"{r['cell']:58} {m:7} {meas:10.1f} {proj:10.1f} {_fmt(r[f'{m}_abs_pct_error']):>7}")
        for variant in ("overhead", "eta_only"):
            med = entry[variant]["median_abs_pct_error"]
            print(f"  median abs % error [{variant:8}]: " + ", ".join(f"{m} {_fmt(med[m])}" for m in METRICS))
    for variant, med in result["overall"].items():
        line = ", ".join(f"{m} {_fmt(med[m])}" for m in METRICS)
        print(f"all groups above, pooled: median abs % error [{variant:8}]: {line}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h200", type=Path, default=ROOT / cal.H200_LLAMA_BENCH)
    ap.add_argument("--cpu", type=Path, default=ROOT / cal.CPU_CELLS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/calibration_loo.json")
    args = ap.parse_args()
    cells = cal.cells_from_llama_bench(args.h200)
    cpu_file_bytes: list[cal.MeasuredCell] = []
    if args.cpu.exists():
        cells += cal.cells_from_cpu_json(args.cpu)
        cpu_file_bytes = cal.cells_from_cpu_json(args.cpu, bytes_per_token="file")
    else:
        print(f"no {args.cpu}: CPU group left out", file=sys.stderr)
    groups: dict[str, list[cal.MeasuredCell]] = {}
    for c in cells:
        groups.setdefault(c.group, []).append(c)
    result = evaluate(groups)
    print_report("catalog bytes per token (the projection's rule)", result)
    sensitivity = evaluate({"llamacpp/cpu": cpu_file_bytes}) if cpu_file_bytes else None
    if sensitivity:
        print_report("sensitivity: CPU cells with GGUF file size as bytes per token", sensitivity)
    roofline = {c.label: round(c.roofline_pct, 1) for c in cells}
    listing = ", ".join(f"{k} {v}" for k, v in roofline.items())
    median_pct = statistics.median(roofline.values())
    print(f"\nroofline % (measured decode / bandwidth ceiling), median {median_pct:.1f}: {listing}")
    data = {
        "description": "leave-one-out abs % error of the calibrated roofline per group (benchmarks/calibration_loo.py)",
        "inputs": {"h200": str(cal.H200_LLAMA_BENCH), "cpu": str(cal.CPU_CELLS) if args.cpu.exists() else None},
        "roofline_pct": roofline,
        **result,
        "sensitivity_cpu_file_bytes": sensitivity,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
