"""The tables behind every figure of the report, each row marked measured or projected.

Figures only draw these (:mod:`lalo_bench.report.charts`); what a number means and where it came from is
decided here, once, and tested.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lalo_bench.costs import CostComparison
from lalo_bench.recommend import Evidence, Recommendation, sampling_error
from lalo_bench.report.evidence import ORACLE_BACKENDS
from lalo_bench.routing.policy import RoutingPolicy

LATENCY = "e2e_ms_p50"


def pareto(cells: pd.DataFrame, latency: str = LATENCY) -> pd.DataFrame:
    """Quality against latency per suite, with the cells no other beats on both (higher quality, lower latency).

    A cell without the latency (an oracle, a failed item set) is kept off the front but listed.
    """
    cols = ["suite_label", "model", "quant", "backend", "tier", "quality", "items", latency, "run_id"]
    frame = cells.reindex(columns=cols).rename(columns={latency: "latency_ms"}).copy()
    frame["measured"] = True
    frame["error"] = [
        sampling_error(q, int(n)) if pd.notna(q) and pd.notna(n) and n > 0 else None
        for q, n in zip(frame["quality"], frame["items"], strict=True)
    ]
    frame["on_front"] = False
    for _, group in frame.dropna(subset=["latency_ms", "quality"]).groupby("suite_label"):
        for i, row in group.iterrows():
            beaten = (
                (group["quality"] >= row["quality"])
                & (group["latency_ms"] <= row["latency_ms"])
                & ((group["quality"] > row["quality"]) | (group["latency_ms"] < row["latency_ms"]))
            )
            frame.loc[i, "on_front"] = not beaten.any()
    frame["label"] = frame["model"] + ":" + frame["quant"]
    return frame.sort_values(["suite_label", "latency_ms"]).reset_index(drop=True)


def throughput(cells: pd.DataFrame, evidence: Evidence, load_points: pd.DataFrame | None = None) -> pd.DataFrame:
    """Decode tokens/s per request by model × quant, backend and tier: measured here, and projected per tier.

    Sweep cells decode one request at a time; load points add the measured speed under concurrency; the
    projections are at the profile's peak concurrency (``users``). Oracles (the exact solver) decode nothing.
    """
    rows = [
        {
            "label": f"{c.model}:{c.quant}",
            "quant": c.quant,
            "backend": c.backend,
            "tier": c.tier,
            "users": 1,
            "decode_tok_s": c.decode_tok_s,
            "measured": True,
            "run_id": c.run_id,
        }
        for c in cells.itertuples()
        if pd.notna(getattr(c, "decode_tok_s", None)) and c.decode_tok_s > 0 and c.backend not in ORACLE_BACKENDS
    ]
    if load_points is not None and not load_points.empty and "tpot_ms_p50" in load_points:
        for p in load_points.itertuples():
            model = str(p.model)
            if ":" not in model or pd.isna(p.tpot_ms_p50) or p.tpot_ms_p50 <= 0:
                continue  # imported points without a model:quant name
            rows.append(
                {
                    "label": model,
                    "quant": model.split(":", 1)[1],
                    "backend": str(p.backend).split(" ")[0],
                    "tier": "cpu-local",
                    "users": _users(getattr(p, "concurrency", None)),
                    "decode_tok_s": 1000.0 / float(p.tpot_ms_p50),
                    "measured": True,
                    "run_id": p.run_id,
                }
            )
    rows += [
        {
            "label": f"{s.model}:{s.quant}",
            "quant": s.quant,
            "backend": s.backend,
            "tier": s.tier,
            "users": s.users,
            "decode_tok_s": s.decode_tok_s,
            "measured": s.source == "measured",
            "run_id": s.run_id,
        }
        for s in evidence.speed
        if s.fits and s.decode_tok_s
    ]
    return pd.DataFrame(rows)


def _users(concurrency: float | None) -> int:
    """A load point's mean requests in flight, as a count of at least one (not logged: one)."""
    return max(1, round(concurrency)) if concurrency is not None and pd.notna(concurrency) else 1


def memory_fit(evidence: Evidence, cells: pd.DataFrame) -> pd.DataFrame:
    """Memory each model × quant needs on each tier (computed, at the profile's peak) against what the tier has.

    The bench machine's peak RSS per cell is measured and listed on its own rows (tier ``cpu-local``).
    """
    rows = [
        {
            "label": f"{s.model}:{s.quant}",
            "tier": s.tier,
            "backend": s.backend,
            "required_gb": s.memory_required_gb,
            "available_gb": s.memory_available_gb,
            "fits": s.fits,
            "measured": False,
            "run_id": s.run_id,
        }
        for s in evidence.speed
    ]
    if "peak_rss_mb" in cells:
        models = cells[~cells["backend"].isin(ORACLE_BACKENDS)].dropna(subset=["peak_rss_mb"])
        peak = models.groupby(["model", "quant", "backend"], as_index=False)
        for r in peak.agg(peak_rss_mb=("peak_rss_mb", "max"), run_id=("run_id", "first")).itertuples():
            rows.append(
                {
                    "label": f"{r.model}:{r.quant}",
                    "tier": "cpu-local",
                    "backend": r.backend,
                    "required_gb": r.peak_rss_mb / 1024,
                    "available_gb": None,
                    "fits": True,
                    "measured": True,
                    "run_id": r.run_id,
                }
            )
    return pd.DataFrame(rows)


def routing_curves(policy_file: Path) -> pd.DataFrame:
    """Quality against cost of every router's threshold sweep on the held-out split (measured per item)."""
    path = policy_file.with_name(f"{policy_file.stem}.curves.csv")
    if not path.is_file():
        return pd.DataFrame(columns=["router", "quality", "cost", "thresholds"])
    return pd.read_csv(path)


def routing_comparison(policy_file: Path) -> pd.DataFrame:
    """Every router and single model at the policy's objective, with bootstrap intervals (held-out split)."""
    path = policy_file.with_name(f"{policy_file.stem}.comparison.csv")
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def chosen_point(policy: RoutingPolicy) -> pd.DataFrame:
    """Where the chosen thresholds land, per split: quality, cost per request, share per model."""
    names = [m.name for m in policy.models]
    return pd.DataFrame(
        [
            {
                "split": p.split,
                "requests": p.requests,
                "quality": p.quality,
                "cost": p.cost_per_request,
                "p95_ms": p.p95_ms,
                "thresholds": ", ".join(f"{t:.3f}" for t in policy.thresholds.default),
                **{f"share {n}": s for n, s in zip(names, p.shares, strict=True)},
            }
            for p in policy.expected
        ]
    )


def costed(rec: Recommendation) -> tuple[CostComparison | None, bool]:
    """The cost to show: the choice's, else the stack at the best quality measured's (flagged False: not a fit)."""
    if rec.cost is not None:
        return rec.cost, True
    return rec.at_best_quality_cost, False


def cost_months(rec: Recommendation) -> pd.DataFrame:
    """Cumulative spend per month: the chosen tier (hardware + running) against each cloud price."""
    cost, meets = costed(rec)
    if cost is None:
        return pd.DataFrame(columns=["month", "series", "usd"])
    rows = []
    first = cost.clouds[0].months if cost.clouds else []
    local = f"local: {cost.tier}" + ("" if meets else " (below the quality floors)")
    rows += [{"month": m.month, "series": local, "usd": m.local_usd} for m in first]
    for c in cost.clouds:
        rows += [{"month": m.month, "series": f"cloud: {c.cloud}", "usd": m.cloud_usd} for m in c.months]
    return pd.DataFrame(rows)


def break_even(rec: Recommendation) -> pd.DataFrame:
    """One row per cloud price: monthly bill, local running cost, break-even month (None: not within 36)."""
    cost, meets = costed(rec)
    if cost is None:
        return pd.DataFrame()
    return pd.DataFrame(
        [
            {
                "cloud": c.cloud,
                "tier": cost.tier,
                "meets_the_profile": meets,
                "cloud_monthly_usd": c.cloud_monthly_usd,
                "local_running_monthly_usd": cost.running_monthly_usd,
                "hardware_usd": cost.hardware_usd,
                "break_even_month": c.break_even_month,
                "break_even_months_exact": c.break_even_months_exact,
            }
            for c in cost.clouds
        ]
    )


def deployments(rec: Recommendation) -> pd.DataFrame:
    """The chosen stack's deployments: what each serves, its load, capacity and latency margins."""
    if rec.choice is None:
        return pd.DataFrame()
    rows = []
    for d in rec.choice.deployments:
        row = {
            "deployment": f"{d.model}:{d.quant}@{d.backend}",
            "tasks": ", ".join(d.tasks),
            "request_share": d.request_share,
            "load_rps": d.load_rps,
            "utilisation": d.utilisation,
            "memory_gb": d.memory_required_gb,
            "speed": d.speed_source,
            "expected_error_pct": d.expected_error_pct,
            "run_id": d.run_id,
        }
        row.update({f"{c.metric} (objective {c.objective:g})": c.estimate for c in d.latency})
        rows.append(row)
    return pd.DataFrame(rows)


def latency_checks(rec: Recommendation) -> pd.DataFrame:
    """Each deployment's TTFT, ITL and e2e estimate against its objective (for the margin chart)."""
    if rec.choice is None:
        return pd.DataFrame(columns=["deployment", "metric", "estimate", "objective", "measured"])
    return pd.DataFrame(
        [
            {
                "deployment": f"{d.model}:{d.quant}@{d.backend}",
                "metric": c.metric,
                "estimate": c.estimate,
                "objective": c.objective,
                "share_of_objective": c.estimate / c.objective,
                "measured": d.speed_source == "measured",
            }
            for d in rec.choice.deployments
            for c in d.latency
        ]
    )


def quality_checks(rec: Recommendation) -> pd.DataFrame:
    """Each task's quality against its floor, with the sampling error and the run behind it."""
    if rec.choice is None:
        return pd.DataFrame()
    return pd.DataFrame(
        [
            {
                "task": q.task,
                "share": q.share,
                "served_by": q.served_by,
                "quality": q.quality,
                "floor": q.floor,
                "margin": q.margin,
                "error_95": sampling_error(q.quality, q.items) if q.quality is not None and q.items else None,
                "source": q.source,
                "items": q.items,
                "run_id": q.run_id,
            }
            for q in rec.choice.quality
        ]
    )


def tiers(rec: Recommendation) -> pd.DataFrame:
    """Every candidate tier: price, cost of ownership, whether a stack works there and why not."""
    return pd.DataFrame(
        [
            {
                "tier": t.tier,
                "hardware_usd": t.hardware_usd,
                "ownership_36m_usd": t.ownership_usd,
                "feasible": t.feasible,
                "within_budget": t.within_budget,
                "why not": "; ".join(t.reasons),
            }
            for t in rec.tiers
        ]
    )
