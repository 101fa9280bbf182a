"""Export the CPU cells measured on this machine (MLflow sweep runs) to a committable ``cpu_cells.json``.

The MLflow store is git-ignored, so the calibration's CPU cells would otherwise live only on this VM. This reads
every FINISHED cell run (tag ``lalo.kind=cell``) whose model and quant are in the catalog, groups the runs by
(model, quant, backend, tier) across suites, and writes one row per group:

* ``decode_tok_s``, ``prefill_tok_s``: median over the runs of each run's token-weighted figure (the MLflow
  metrics of the same names); the per-run values are kept beside them (``*_runs``).
* ``prompt_tokens``: median over runs of the mean prompt length of the run's items (items.json).
* ``ttft_ms``: median over runs of the mean TTFT of the run's items — the mean, not the p50, so that it matches
  ``prompt_tokens / prefill_tok_s`` of the same run.
* ``decode_context``: median over runs of the decode-token-weighted mean of ``prompt + output / 2``, the average
  KV fill while decoding.
* ``run_ids``, ``suites``, ``dates`` (UTC start date of each run), ``weights_bytes`` (the GGUF file size the runs
  logged; the calibration itself uses the catalog's bytes per token, as the projection does).

A run without decode or prefill metrics (every item failed) is skipped and listed under ``skipped``. Bandwidth is
this machine's STREAM triad, measured once when exporting (``bandwidth``). Nothing is estimated: if the store has
no such runs the script says so and writes nothing.

    MLFLOW_TRACKING_URI=sqlite:////work/main/mlflow/mlflow.db .venv/bin/python benchmarks/export_cpu_cells.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from lalo_bench.config import load_catalog
from lalo_bench.hardware.calibration import CPU_CELLS
from lalo_bench.hardware.stream import measure_triad

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORE = ROOT / "mlflow" / "mlflow.db"
FIELDS = {
    "model, quant, backend, tier": "the cell (catalog ids)",
    "decode_tok_s": "median over runs of the run's decode tok/s (decode tokens / decode time, token-weighted)",
    "prefill_tok_s": "median over runs of the run's prefill tok/s (prompt tokens / TTFT time, token-weighted)",
    "decode_tok_s_runs, prefill_tok_s_runs": "the per-run values behind the medians, in run_ids order",
    "prompt_tokens": "median over runs of the mean prompt length of the run's items",
    "ttft_ms": "median over runs of the mean TTFT of the run's items (ms)",
    "decode_context": "median over runs of the decode-token-weighted mean of prompt + output/2 (KV fill)",
    "run_ids, suites, dates": "MLflow run ids, their suites and UTC start dates",
    "weights_bytes": "GGUF file size logged by the runs (the calibration uses the catalog's bytes per token)",
}


def _run_row(tracker: Any, run: Any) -> dict[str, Any] | None:
    """One run's figures, or None when it measured no decode or prefill speed."""
    m, p = run.data.metrics, run.data.params
    if not m.get("decode_tok_s") or not m.get("prefill_tok_s"):
        return None
    items = tracker.items_frame(run.info.run_id)
    items = items[items["output_tokens"] > 0]
    out = (items["output_tokens"] - 1).clip(lower=0)
    fill = items["prompt_tokens"] + items["output_tokens"] / 2
    return {
        "run_id": run.info.run_id,
        "suite": p.get("suite_label") or p.get("suite"),
        "date": dt.datetime.fromtimestamp(run.info.start_time / 1000, tz=dt.UTC).date().isoformat(),
        "decode_tok_s": float(m["decode_tok_s"]),
        "prefill_tok_s": float(m["prefill_tok_s"]),
        "prompt_tokens": float(items["prompt_tokens"].mean()),
        "ttft_ms": float(items["ttft_ms"].mean()),
        "decode_context": float((out * fill).sum() / out.sum()) if out.sum() > 0 else float(fill.mean()),
        "weights_bytes": int(p["weights_bytes"]) if p.get("weights_bytes") else None,
    }


def collect(experiment: str = "lalo-bench") -> tuple[list[dict[str, Any]], list[str]]:
    """Rows per (model, quant, backend, tier) from the tracking store, and a line per run left out."""
    from lalo_bench.tracking import Tracker

    catalog = load_catalog()
    tracker = Tracker(experiment)
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string="tags.`lalo.kind` = 'cell' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    skipped = []
    for run in runs:
        p = run.data.params
        key = (p.get("model", ""), p.get("quant", ""), p.get("backend", ""), p.get("tier", ""))
        known = {m.id for m in catalog.models}
        if key[0] not in known or key[1] not in catalog.quant_formats:
            skipped.append(f"{run.info.run_id} {key}: model or quant not in the catalog")
            continue
        if catalog.tier(key[3]).kind != "cpu":
            skipped.append(f"{run.info.run_id} {key}: not a CPU tier")
            continue
        row = _run_row(tracker, run)
        if row is None:
            skipped.append(f"{run.info.run_id} {key}: no decode/prefill measured (all items failed)")
            continue
        groups.setdefault(key, []).append(row)
    cells = []
    for (model, quant, backend, tier), rows in sorted(groups.items()):
        med = {k: statistics.median(r[k] for r in rows) for k in ("decode_tok_s", "prefill_tok_s", "ttft_ms")}
        sizes = {r["weights_bytes"] for r in rows if r["weights_bytes"]}
        cells.append(
            {
                "model": model,
                "quant": quant,
                "backend": backend,
                "tier": tier,
                "decode_tok_s": round(med["decode_tok_s"], 3),
                "prefill_tok_s": round(med["prefill_tok_s"], 2),
                "ttft_ms": round(med["ttft_ms"], 1),
                "prompt_tokens": round(statistics.median(r["prompt_tokens"] for r in rows)),
                "decode_context": round(statistics.median(r["decode_context"] for r in rows), 1),
                "decode_tok_s_runs": [round(r["decode_tok_s"], 3) for r in rows],
                "prefill_tok_s_runs": [round(r["prefill_tok_s"], 2) for r in rows],
                "run_ids": [r["run_id"] for r in rows],
                "suites": [r["suite"] for r in rows],
                "dates": sorted({r["date"] for r in rows}),
                "weights_bytes": sizes.pop() if len(sizes) == 1 else None,
            }
        )
    return cells, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / CPU_CELLS)
    ap.add_argument("--experiment", default="lalo-bench")
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{DEFAULT_STORE}")
    cells, skipped = collect(args.experiment)
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if not cells:
        print(f"no finished CPU cell runs in {os.environ['MLFLOW_TRACKING_URI']}; nothing written", file=sys.stderr)
        return 1
    triad = measure_triad()
    data = {
        "description": "CPU cells measured on this machine by in-process llama.cpp sweeps (MLflow), for calibration",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "store": os.environ["MLFLOW_TRACKING_URI"],
        "fields": FIELDS,
        "bandwidth": {
            "triad_gbs": round(triad.gbs, 2),
            "threads": triad.threads,
            "size_mb": triad.size_mb,
            "repeats": triad.repeats,
            "convention": triad.convention,
            "note": "measured once at export time, not during the runs (the VM is shared)",
        },
        "cells": cells,
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cells)} cell(s), triad {triad.gbs:.1f} GB/s -> {args.out}")
    for c in cells:
        print(f"  {c['model']}/{c['quant']}: decode {c['decode_tok_s']} tok/s, prefill {c['prefill_tok_s']} tok/s, "
              f"{len(c['run_ids'])} run(s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
