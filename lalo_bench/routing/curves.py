"""Cost–quality curves, RouteLLM's APGR and CPT, and bootstrap confidence intervals.

APGR and CPT follow RouteLLM (Ong et al., 2024, and ``routellm/evals/evaluate.py``) on the ladder's
weakest and strongest models: the router's score sweeps ``num_results + 1`` thresholds at the score
quantiles (``pd.qcut`` bin edges; a request goes to the strong model when score ≥ threshold, and above
the last edge none do), giving points (% calls to the strong model, quality).

- APGR = (AUC − AUC_weak) / (AUC_strong − AUC_weak), the trapezoid areas under the router's curve and
  under the weak and strong models' constant qualities over the same x: the average share of the
  quality gap recovered across call percentages (0.5 for a random router in expectation, 1 for perfect).
- CPT(x%) = the smallest % of strong calls at which the piecewise-linear curve reaches
  weak + x·(strong − weak). RouteLLM reads it with ``np.interp`` over the curve; on a rising curve that is
  the same number, and where the curve dips, the first crossing is what "minimum calls" means.

The ladder's own trade-offs (quality against cost, p95 latency and the share of calls above the weakest
rung) are traced by :func:`frontier` over every threshold tuple: the upper-left envelope per axis.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from lalo_bench.routing.calibrate import candidate_thresholds, grid_totals, pareto_front
from lalo_bench.routing.outcomes import Outcomes

NUM_RESULTS = 10
"""RouteLLM's default ``--num-results``: 10 quantile bins, 11 thresholds."""


def pair_curve(
    scores: np.ndarray, q_weak: np.ndarray, q_strong: np.ndarray, num_results: int = NUM_RESULTS
) -> pd.DataFrame:
    """RouteLLM's curve: per quantile threshold, the % of requests sent to the strong model and the mean quality."""
    scores = np.asarray(scores, dtype=float)
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    rows = []
    for i, t in enumerate(thresholds):
        strong = scores >= t if i != len(thresholds) - 1 else scores > t
        quality = np.where(strong, q_strong, q_weak).mean()
        rows.append((float(t), 100.0 * strong.mean(), float(quality)))
    curve = pd.DataFrame(rows, columns=["threshold", "strong_pct", "quality"])
    return curve.sort_values("strong_pct", kind="stable").reset_index(drop=True)


def apgr(curve: pd.DataFrame, weak: float, strong: float) -> float:
    """Average performance gap recovered: area between the curve and the weak line over the strong–weak area."""
    x = curve["strong_pct"].to_numpy() / 100.0
    span = x[-1] - x[0]
    if strong == weak or span <= 0:
        return float("nan")
    auc = np.trapezoid(curve["quality"].to_numpy(), x)
    return float((auc - weak * span) / ((strong - weak) * span))


def cpt(curve: pd.DataFrame, weak: float, strong: float, fraction: float) -> float:
    """Call-performance threshold: the least % strong calls reaching ``fraction`` of the gap (NaN if never)."""
    if strong <= weak:
        return float("nan")
    target = weak + fraction * (strong - weak)
    x, y = curve["strong_pct"].to_numpy(), curve["quality"].to_numpy()
    if y[0] >= target - 1e-12:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] >= target - 1e-12:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float("nan")


def pair_metrics(
    scores: np.ndarray, q_weak: np.ndarray, q_strong: np.ndarray, num_results: int = NUM_RESULTS
) -> dict[str, float]:
    """APGR, CPT(50%) and CPT(80%) of a router's scores routing between a weak and a strong model."""
    weak, strong = float(np.mean(q_weak)), float(np.mean(q_strong))
    curve = pair_curve(scores, q_weak, q_strong, num_results)
    return {
        "apgr": apgr(curve, weak, strong),
        "cpt50": cpt(curve, weak, strong, 0.5),
        "cpt80": cpt(curve, weak, strong, 0.8),
    }


def ladder_pair_metrics(scores: np.ndarray, outcomes: Outcomes) -> dict[str, float]:
    """:func:`pair_metrics` on the ladder's weakest and strongest models."""
    return pair_metrics(scores, outcomes.quality[:, 0], outcomes.quality[:, -1])


def frontier(scores: np.ndarray, outcomes: Outcomes) -> pd.DataFrame:
    """Every threshold tuple's operating point, with flags for the quality-vs-cost / -p95 / -share envelopes."""
    grid = candidate_thresholds(scores, outcomes.k)
    quality, cost, p95, stronger = grid_totals(np.asarray(scores, dtype=float), outcomes, grid)
    frame = pd.DataFrame(
        {
            "thresholds": [tuple(round(float(t), 4) for t in row) for row in grid],
            "quality": quality / outcomes.n,
            "cost": cost / outcomes.n,
            "p95_ms": p95,
            "stronger_share": stronger,
        }
    )
    for axis in ("cost", "p95_ms", "stronger_share"):
        frame[f"on_{axis}_front"] = False
        frame.loc[pareto_front(frame["quality"].to_numpy(), frame[axis].to_numpy()), f"on_{axis}_front"] = True
    return frame


def cost_at_quality(points: pd.DataFrame, quality: float) -> float:
    """The least mean cost among operating points (from :func:`frontier`) whose quality reaches ``quality``."""
    ok = points["quality"] >= quality - 1e-9
    return float(points.loc[ok, "cost"].min()) if ok.any() else float("nan")


def bootstrap(
    stats: Callable[[np.ndarray], dict[str, float]], n: int, resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals of every statistic, resampling the ``n`` test requests with replacement."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for key, value in stats(rng.integers(0, n, n)).items():
            draws.setdefault(key, []).append(value)
    out = {}
    for key, values in draws.items():
        arr = np.asarray(values, dtype=float)
        arr = arr[np.isfinite(arr)]
        out[key] = (float(np.percentile(arr, 2.5)), float(np.percentile(arr, 97.5))) if len(arr) else (np.nan, np.nan)
    return out
