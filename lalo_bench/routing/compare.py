"""The comparison table: every router at its calibrated thresholds against fixed baselines, on the test split.

Rows: always-<model> for each rung (always-weak … always-strong), random, the plan's keyword heuristic,
the task-type classifier, the learned router (global and per-task-type thresholds), and the oracle.
Each row: quality, cost and p95 latency at the calibrated point, share of calls per rung, saving against
the strongest model, and RouteLLM's APGR, CPT(50%) and CPT(80%) of its score; 95% bootstrap intervals
resample the test requests, the same draws for every row, so differences between rows are paired.
The oracle's APGR is that of its own score (its model's place in the ladder), which falls short of the
two-model optimum where the middle model is the cheapest right answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lalo_bench.routing.calibrate import Calibration, Objective
from lalo_bench.routing.curves import bootstrap, pair_metrics
from lalo_bench.routing.outcomes import Outcomes
from lalo_bench.routing.routers import oracle_scores


@dataclass
class Candidate:
    """One row: the rungs it sends each test request to and, for routers, the scores behind them."""

    name: str
    rungs: np.ndarray
    scores: np.ndarray | None = None
    calibration: Calibration | None = None


@dataclass
class Comparison:
    table: pd.DataFrame  # numbers, one row per candidate (CSV, MLflow)
    display: pd.DataFrame  # the same, formatted for the terminal
    deltas: dict[str, dict[str, float]]  # "learned - keyword" → metric → estimate, lo, hi


def fixed_candidates(test: Outcomes) -> list[Candidate]:
    """Always-<model> per rung and the oracle (cheapest rung that got each request right)."""
    models = [r.model for r in test.rungs]
    labels = [r.model if models.count(r.model) == 1 else f"{r.model}:{r.quant}" for r in test.rungs]
    rows = [Candidate(f"always {label}", np.full(test.n, i)) for i, label in enumerate(labels)]
    oracle = test.oracle_rung()
    rows.append(Candidate("oracle", oracle, oracle_scores(oracle, test.k)))
    return rows


def _row_stats(test: Outcomes, c: Candidate, idx: np.ndarray) -> dict[str, float]:
    rows = np.arange(test.n)[idx]
    rungs = c.rungs[idx]
    out = {
        "quality": float(test.quality[rows, rungs].mean()),
        "cost": float(test.cost[rows, rungs].mean()),
        "p95_ms": float(np.percentile(test.latency_ms[rows, rungs], 95)),
    }
    if c.scores is not None:
        out.update(pair_metrics(c.scores[idx], test.quality[idx, 0], test.quality[idx, -1]))
    return out


def compare(
    test: Outcomes,
    candidates: list[Candidate],
    objective: Objective,
    resamples: int = 1000,
    seed: int = 0,
    pairs: list[tuple[str, str]] | None = None,
) -> Comparison:
    """Point estimates on the whole test split, 95% intervals by bootstrap, and paired differences for ``pairs``."""
    by_name = {c.name: c for c in candidates}
    pairs = [(a, b) for a, b in pairs or [] if a in by_name and b in by_name]
    everything = np.arange(test.n)

    def stats(idx: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        per_row = {c.name: _row_stats(test, c, idx) for c in candidates}
        for name, values in per_row.items():
            out.update({f"{name}|{k}": v for k, v in values.items()})
        for a, b in pairs:
            for metric in ("quality", "cost", "apgr"):
                if metric in per_row[a] and metric in per_row[b]:
                    out[f"{a} - {b}|{metric}"] = per_row[a][metric] - per_row[b][metric]
        return out

    point = stats(everything)
    ci = bootstrap(stats, test.n, resamples, seed) if resamples else {}
    strongest_cost = test.cost[:, -1].mean()
    records = []
    for c in candidates:
        shares = np.bincount(c.rungs, minlength=test.k) / test.n
        row: dict[str, object] = {"router": c.name}
        if c.calibration is not None:
            cal = c.calibration
            row["thresholds"] = "per type" if cal.per_type else ", ".join(f"{t:.2f}" for t in cal.thresholds)
        else:
            row["thresholds"] = ""
        for metric in ("quality", "cost", "p95_ms", "apgr", "cpt50", "cpt80"):
            key = f"{c.name}|{metric}"
            row[metric] = point.get(key, np.nan)
            lo, hi = ci.get(key, (np.nan, np.nan))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = lo, hi
        for i, share in enumerate(shares):
            row[f"share_{i}"] = float(share)
        row["saved_vs_strongest_pct"] = 100.0 * (1.0 - row["cost"] / strongest_cost) if strongest_cost else np.nan
        row["meets_objective"] = _meets(row, objective)
        records.append(row)
    table = pd.DataFrame(records)
    deltas = {}
    for a, b in pairs:
        name = f"{a} - {b}"
        deltas[name] = {
            f"{metric}{suffix}": value
            for metric in ("quality", "cost", "apgr")
            if f"{name}|{metric}" in point
            for suffix, value in (
                ("", point[f"{name}|{metric}"]),
                ("_lo", ci.get(f"{name}|{metric}", (np.nan, np.nan))[0]),
                ("_hi", ci.get(f"{name}|{metric}", (np.nan, np.nan))[1]),
            )
        }
    return Comparison(table, _display(table, test), deltas)


def _meets(row: dict[str, object], objective: Objective) -> bool:
    value = {"target_quality": row["quality"], "max_cost": row["cost"], "max_p95_ms": row["p95_ms"]}[objective.kind]
    if objective.kind == "target_quality":
        return bool(value >= objective.value - 1e-9)  # type: ignore[operator]
    return bool(value <= objective.value + 1e-9)  # type: ignore[operator]


def _ci(value: float, lo: float, hi: float, digits: int = 3) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    return f"{text} ({lo:.2f}–{hi:.2f})" if np.isfinite(lo) else text


def _pct(value: float) -> str:
    return f"{value:.0f}" if np.isfinite(value) else "–"


def _display(table: pd.DataFrame, test: Outcomes) -> pd.DataFrame:
    """Compact columns: a 160-character terminal holds a three-model ladder without wrapping."""
    rows = []
    for _, r in table.iterrows():
        rows.append(
            {
                "router": r["router"],
                "cuts": r["thresholds"],
                "quality (95% CI)": _ci(r["quality"], r["quality_lo"], r["quality_hi"]),
                "cost s (95% CI)": _ci(r["cost"], r["cost_lo"], r["cost_hi"], 2),
                "p95 s": f"{r['p95_ms'] / 1000:.1f}",
                "calls %": "/".join(f"{100 * r[f'share_{i}']:.0f}" for i in range(test.k)),
                "saved": f"{r['saved_vs_strongest_pct']:.0f}%",
                "APGR (95% CI)": _ci(r["apgr"], r["apgr_lo"], r["apgr_hi"]),
                "CPT50/80 %": f"{_pct(r['cpt50'])}/{_pct(r['cpt80'])}" if np.isfinite(r["apgr"]) else "–",
                "meets": "yes" if r["meets_objective"] else "no",
            }
        )
    return pd.DataFrame(rows)
