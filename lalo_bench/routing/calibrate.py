"""Thresholds for a ladder: which n−1 cut points on a router's score meet the objective on the train split.

A request with score s goes to rung ``#{j : s ≥ t_j}`` (RouteLLM's ``score ≥ threshold`` → stronger), so
t = (0, …, 0) sends everything to the strongest model and thresholds above 1 (:data:`NEVER`) keep a rung
empty. Calibration searches every non-decreasing tuple drawn from the train scores' quantiles and picks,
for a quality target, the cheapest tuple that meets it; for a cost or p95-latency budget, the best
quality within it. Per task type, the sums of quality and cost over types are merged along each type's
Pareto front, which finds the exact optimum over the same grid (p95 is not a sum, so it stays global).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from math import comb
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lalo_bench.routing.outcomes import Outcomes

NEVER = 1.01
"""A threshold above every score: the rung it opens gets no requests."""

ObjectiveKind = Literal["target_quality", "max_cost", "max_p95_ms"]


class Objective(BaseModel):
    """What calibration optimises: reach a quality at least cost, or the best quality within a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ObjectiveKind
    value: float = Field(ge=0)

    @model_validator(mode="after")
    def _in_range(self) -> Objective:
        if self.kind == "target_quality" and self.value > 1:
            raise ValueError(f"a quality target is a mean score in [0, 1], got {self.value}")
        return self

    def label(self) -> str:
        names = {"target_quality": "quality ≥", "max_cost": "cost ≤", "max_p95_ms": "p95 ms ≤"}
        return f"{names[self.kind]} {self.value:g}"


@dataclass(frozen=True)
class OperatingPoint:
    """Where a routing lands: mean quality, mean cost (device-s), p95 latency (ms), share of requests per rung."""

    quality: float
    cost: float
    p95_ms: float
    shares: tuple[float, ...]


@dataclass
class Calibration:
    thresholds: tuple[float, ...]
    train: OperatingPoint
    met: bool
    per_type: dict[str, tuple[float, ...]] = field(default_factory=dict)


def assign(scores: np.ndarray, thresholds: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Rung per request: how many thresholds its score reaches."""
    return np.searchsorted(np.asarray(thresholds, dtype=float), np.asarray(scores, dtype=float), side="right")


def route(scores: np.ndarray, calibration: Calibration, task_types: np.ndarray | None = None) -> np.ndarray:
    """Rungs under a calibration: per-type thresholds where the request's (predicted) type has them."""
    rungs = assign(scores, calibration.thresholds)
    if calibration.per_type and task_types is not None:
        for task_type, thresholds in calibration.per_type.items():
            mask = np.asarray(task_types) == task_type
            rungs[mask] = assign(np.asarray(scores)[mask], thresholds)
    return rungs


def evaluate(outcomes: Outcomes, rungs: np.ndarray) -> OperatingPoint:
    rows = np.arange(outcomes.n)
    shares = np.bincount(rungs, minlength=outcomes.k) / max(outcomes.n, 1)
    return OperatingPoint(
        quality=float(outcomes.quality[rows, rungs].mean()),
        cost=float(outcomes.cost[rows, rungs].mean()),
        p95_ms=float(np.percentile(outcomes.latency_ms[rows, rungs], 95)),
        shares=tuple(float(s) for s in shares),
    )


SEARCH_CELLS = 5_000_000
"""How many (threshold tuple × request) evaluations one search may cost; sets how fine the grid is."""


def candidate_thresholds(scores: np.ndarray, k: int) -> np.ndarray:
    """Non-decreasing (k−1)-tuples of cut points at the scores' own distinct values, plus 0 and :data:`NEVER`.

    Every distinct value is a candidate while the search stays within :data:`SEARCH_CELLS`; beyond that,
    values at evenly spaced ranks. Cut points sit on real scores, so a gap between two groups is never missed
    by an interpolated quantile.
    """
    values = np.unique(np.asarray(scores, dtype=float))
    n = max(len(scores), 1)
    size = len(values)
    while size > 2 and comb(size + k - 2, k - 1) * n > SEARCH_CELLS:
        size = int(size * 0.8)
    if size < len(values):
        values = values[np.unique(np.linspace(0, len(values) - 1, size).round().astype(int))]
    grid = np.unique(np.concatenate([[0.0], values, [NEVER]]))
    return np.array(list(combinations_with_replacement(grid.tolist(), k - 1)), dtype=float)


def grid_totals(scores: np.ndarray, outcomes: Outcomes, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """For every threshold tuple: summed quality, summed cost, p95 latency, and the share sent above rung 0."""
    scores = np.asarray(scores, dtype=float)
    parts: list[tuple[np.ndarray, ...]] = []
    step = max(1, 2_000_000 // max(outcomes.n * grid.shape[1], 1))
    rows = np.arange(outcomes.n)[None, :]
    for start in range(0, len(grid), step):
        rungs = (scores[None, None, :] >= grid[start : start + step, :, None]).sum(axis=1)
        p95 = np.percentile(outcomes.latency_ms[rows, rungs], 95, axis=1) if outcomes.n else np.zeros(len(rungs))
        parts.append(
            (
                outcomes.quality[rows, rungs].sum(axis=1),
                outcomes.cost[rows, rungs].sum(axis=1),
                p95,
                (rungs > 0).mean(axis=1) if outcomes.n else np.zeros(len(rungs)),
            )
        )
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def _select(quality: np.ndarray, cost: np.ndarray, p95: np.ndarray, n: int, objective: Objective) -> tuple[int, bool]:
    """Index of the best point for the objective, and whether the objective was met (else the nearest point)."""
    q, c = quality / n, cost / n
    eps = 1e-9
    if objective.kind == "target_quality":
        ok = q >= objective.value - eps
        if ok.any():
            return int(np.lexsort((-q, np.where(ok, c, np.inf)))[0]), True
        return int(np.lexsort((c, -q))[0]), False
    budget = c if objective.kind == "max_cost" else p95
    ok = budget <= objective.value + eps
    if ok.any():
        return int(np.lexsort((c, np.where(ok, -q, np.inf)))[0]), True
    return int(np.lexsort((-q, budget))[0]), False


def calibrate(scores: np.ndarray, outcomes: Outcomes, objective: Objective) -> Calibration:
    """One threshold tuple for every request, chosen on these (train) outcomes."""
    scores = np.asarray(scores, dtype=float)
    grid = candidate_thresholds(scores, outcomes.k)
    quality, cost, p95, _ = grid_totals(scores, outcomes, grid)
    best, met = _select(quality, cost, p95, outcomes.n, objective)
    thresholds = tuple(float(t) for t in grid[best])
    return Calibration(thresholds, evaluate(outcomes, assign(scores, thresholds)), met)


def pareto_front(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both summed quality (more) and summed cost (less)."""
    order = np.lexsort((-quality, cost))
    keep, best = [], -np.inf
    for i in order:
        if quality[i] > best + 1e-12:
            keep.append(i)
            best = quality[i]
    return np.array(keep, dtype=int)


def calibrate_per_type(
    scores: np.ndarray, task_types: np.ndarray, outcomes: Outcomes, objective: Objective
) -> Calibration:
    """Thresholds per (predicted) task type that together meet the objective over all requests.

    A p95 budget is not a sum over types, so it falls back to :func:`calibrate`.
    """
    scores = np.asarray(scores, dtype=float)
    types = np.asarray(task_types).astype(str)
    if objective.kind == "max_p95_ms" or len(set(types.tolist())) < 2:
        return calibrate(scores, outcomes, objective)
    fronts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    for task_type in sorted(set(types.tolist())):
        idx = np.flatnonzero(types == task_type)
        sub = outcomes.take(idx)
        grid = candidate_thresholds(scores[idx], outcomes.k)
        quality, cost, _, _ = grid_totals(scores[idx], sub, grid)
        keep = pareto_front(quality, cost)
        fronts.append((task_type, quality[keep], cost[keep], grid[keep]))
    merged_q, merged_c = np.zeros(1), np.zeros(1)
    choice = np.zeros((1, 0), dtype=int)
    for _, quality, cost, _ in fronts:
        q = (merged_q[:, None] + quality[None, :]).ravel()
        c = (merged_c[:, None] + cost[None, :]).ravel()
        pick = np.column_stack(
            [np.repeat(choice, len(quality), axis=0), np.tile(np.arange(len(quality)), len(merged_q))]
        )
        keep = pareto_front(q, c)
        merged_q, merged_c, choice = q[keep], c[keep], pick[keep]
    best, met = _select(merged_q, merged_c, np.zeros_like(merged_q), outcomes.n, objective)
    per_type = {
        task_type: tuple(float(t) for t in grid[choice[best, i]]) for i, (task_type, _, _, grid) in enumerate(fronts)
    }
    global_fit = calibrate(scores, outcomes, objective)
    calibration = Calibration(global_fit.thresholds, global_fit.train, met, per_type)
    calibration.train = evaluate(outcomes, route(scores, calibration, types))
    return calibration


def cross_validated(
    scores: np.ndarray,
    task_types: np.ndarray,
    outcomes: Outcomes,
    objective: Objective,
    fold_ids: np.ndarray,
    per_type: bool,
) -> OperatingPoint:
    """Where thresholds calibrated on the other folds land on each held-out fold, pooled: an honest train estimate."""
    scores, types = np.asarray(scores, dtype=float), np.asarray(task_types).astype(str)
    rungs = np.zeros(outcomes.n, dtype=int)
    for fold in np.unique(fold_ids):
        fit, held = np.flatnonzero(fold_ids != fold), np.flatnonzero(fold_ids == fold)
        if len(fit) == 0:
            continue
        sub = outcomes.take(fit)
        if per_type:
            cal = calibrate_per_type(scores[fit], types[fit], sub, objective)
        else:
            cal = calibrate(scores[fit], sub, objective)
        rungs[held] = route(scores[held], cal, types[held])
    return evaluate(outcomes, rungs)


def meets(point: OperatingPoint, objective: Objective) -> bool:
    if objective.kind == "target_quality":
        return point.quality >= objective.value - 1e-9
    return (point.cost if objective.kind == "max_cost" else point.p95_ms) <= objective.value + 1e-9


def better(a: OperatingPoint, b: OperatingPoint, objective: Objective, margin: float = 0.01) -> bool:
    """Whether ``a`` beats ``b`` for this objective by more than ``margin`` (relative)."""
    if meets(a, objective) != meets(b, objective):
        return meets(a, objective)
    if objective.kind == "target_quality" and meets(a, objective):
        return a.cost < b.cost * (1 - margin)
    return a.quality > b.quality * (1 + margin) + 1e-12
