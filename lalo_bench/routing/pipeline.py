"""``lalo-bench route calibrate`` as a library call: sweep outcomes in, policy file and comparison out.

Outcomes of the ladder are read back from MLflow, split by request into train and test, every router is
fitted and calibrated on train only, and everything reported is measured on test. The routing run is
logged to MLflow as a child of the sweep, and the policy names that run and the sweep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lalo_bench import __version__
from lalo_bench.errors import LaloError
from lalo_bench.routing.calibrate import (
    Calibration,
    Objective,
    better,
    calibrate,
    calibrate_per_type,
    cross_validated,
    route,
)
from lalo_bench.routing.compare import Candidate, Comparison, compare, fixed_candidates
from lalo_bench.routing.cost import COST_UNIT
from lalo_bench.routing.curves import cost_at_quality, frontier
from lalo_bench.routing.features import (
    EMBEDDING_DIR,
    EMBEDDING_FILE,
    EMBEDDING_PACKAGE,
    EMBEDDING_SHA256,
    FeatureKind,
    Featurizer,
)
from lalo_bench.routing.outcomes import Outcomes, TextSource, build_outcomes, drop_dominated, folds, split
from lalo_bench.routing.policy import (
    EmbeddingModel,
    ExpectedPoint,
    PolicyModel,
    PolicySource,
    RouterSpec,
    RoutingPolicy,
    Thresholds,
    WeightsFile,
    default_fallbacks,
    load_policy,
    save_weights,
    write_policy,
)
from lalo_bench.routing.routers import KeywordRouter, LearnedRouter, RandomRouter, RouterKind, TaskTypeRouter
from lalo_bench.tracking import Tracker, portable_uri


class CalibrateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep_id: str
    objective: Objective
    ladder: list[str] | None = Field(default=None, description="MODEL[:QUANT][@BACKEND], cheapest first")
    router: RouterKind = "learned"
    features: list[FeatureKind] = Field(default_factory=lambda: ["tfidf", "embed"])
    per_task_type: Literal["auto", "on", "off"] = "auto"
    test_fraction: float = 0.3
    seed: int = 0
    resamples: int = 1000
    out: Path = Path("routing_policy.json")


@dataclass
class RoutingResult:
    policy: RoutingPolicy
    files: dict[str, Path]
    comparison: Comparison
    run_id: str
    train_requests: int
    test_requests: int
    notes: list[str] = field(default_factory=list)
    equal_quality: dict[str, Any] = field(default_factory=dict)


ROUTER_ROWS = ("random", "keyword", "task_type", "learned")
FOLDS = 5


def _make(name: str, train: Outcomes, features: list[FeatureKind], seed: int) -> Any:
    """A router trained on ``train`` only."""
    if name == "random":
        return RandomRouter(seed)
    if name == "keyword":
        return KeywordRouter()
    if name == "task_type":
        return TaskTypeRouter().fit(train.texts, train.task_types, train.need())
    return LearnedRouter(Featurizer(features)).fit(train.texts, train.oracle_rung(), train.k)


def _train_scores(name: str, train: Outcomes, fold_ids: np.ndarray, features: list[FeatureKind], seed: int) -> Any:
    """Out-of-fold scores for trained routers: thresholds calibrated on in-sample scores would not transfer."""
    if name in ("random", "keyword"):
        return _make(name, train, features, seed).score(train.texts)
    scores = np.zeros(train.n)
    for fold in np.unique(fold_ids):
        fit, held = np.flatnonzero(fold_ids != fold), np.flatnonzero(fold_ids == fold)
        router = _make(name, train.take(fit), features, seed)
        scores[held] = router.score([train.texts[i] for i in held])
    return scores


def _ladder_notes(outcomes: Outcomes, train_idx: np.ndarray) -> None:
    cost = outcomes.cost[train_idx].mean(axis=0)
    for i in range(outcomes.k - 1):
        if cost[i] > cost[i + 1]:
            a, b = outcomes.rungs[i], outcomes.rungs[i + 1]
            outcomes.notes.append(
                f"{a.model} costs more per request than {b.model} on the train split ({cost[i]:.2f} vs "
                f"{cost[i + 1]:.2f} {COST_UNIT}): it answers at greater length; the oracle and the learned router "
                "use per-request costs"
            )


def calibrate_sweep(tracker: Tracker, settings: CalibrateSettings, texts: TextSource | None = None) -> RoutingResult:
    frame = tracker.sweep_items_frame(settings.sweep_id)
    if frame.empty:
        raise LaloError(f"sweep {settings.sweep_id} has no finished cells with per-item results")
    outcomes = build_outcomes(frame, settings.ladder, texts)
    train_idx, test_idx = split(outcomes.items, settings.test_fraction, settings.seed)
    if not settings.ladder:
        outcomes = drop_dominated(outcomes, train_idx)
        if outcomes.k < 2:
            raise LaloError("no model of the sweep beats the cheapest one on the train split: nothing to route")
    _ladder_notes(outcomes, train_idx)
    train, test = outcomes.take(train_idx), outcomes.take(test_idx)
    fold_ids = folds(train.items, min(FOLDS, train.items["group"].nunique()), settings.seed)
    classifier = _make("task_type", train, settings.features, settings.seed).classifier
    types_train, types_test = classifier.predict(train.texts), classifier.predict(test.texts)

    objective = settings.objective
    candidates: list[Candidate] = []
    routers: dict[str, Any] = {}
    chosen: tuple[Candidate, Calibration] | None = None
    for name in ROUTER_ROWS:
        routers[name] = _make(name, train, settings.features, settings.seed)
        s_train = _train_scores(name, train, fold_ids, settings.features, settings.seed)
        s_test = routers[name].score(test.texts)
        cal = calibrate(s_train, train, objective)
        row = Candidate(name, route(s_test, cal), s_test, cal)
        candidates.append(row)
        if name != settings.router:
            continue
        chosen = (row, cal)
        if settings.per_task_type != "off" and len(set(types_train.tolist())) > 1:
            per_type = calibrate_per_type(s_train, types_train, train, objective)
            if per_type.per_type:
                typed_rungs = route(s_test, per_type, types_test)
                typed = Candidate(f"{name}, per-type cuts", typed_rungs, s_test, per_type)
                candidates.append(typed)
                cv_typed = cross_validated(s_train, types_train, train, objective, fold_ids, per_type=True)
                cv_global = cross_validated(s_train, types_train, train, objective, fold_ids, per_type=False)
                helps = better(cv_typed, cv_global, objective)
                outcomes.notes.append(
                    f"per-task-type thresholds {'help' if helps else 'do not help'} in {len(set(fold_ids))}-fold "
                    f"cross-validation on train (quality {cv_typed.quality:.3f} at {cv_typed.cost:.2f} {COST_UNIT} "
                    f"vs global {cv_global.quality:.3f} at {cv_global.cost:.2f})"
                )
                if settings.per_task_type == "on" or helps:
                    chosen = (typed, per_type)
    assert chosen is not None
    fixed = fixed_candidates(test)
    candidates = fixed[:-1] + candidates + fixed[-1:]
    comparison = compare(
        test, candidates, objective, settings.resamples, settings.seed,
        pairs=[(chosen[0].name, "keyword"), ("learned", "keyword"), (chosen[0].name, "random")],
    )  # fmt: skip

    params = {
        "sweep_run_id": settings.sweep_id,
        "ladder": " → ".join(r.name for r in outcomes.rungs),
        "router": settings.router,
        "features": ",".join(settings.features),
        "objective": objective.kind,
        "objective_value": str(objective.value),
        "thresholds": "per task type" if chosen[1].per_type else "global",
        "test_fraction": str(settings.test_fraction),
        "seed": str(settings.seed),
        "train_requests": str(train.n),
        "test_requests": str(test.n),
        "bootstrap_resamples": str(settings.resamples),
    }
    run_id = tracker.start_routing(settings.sweep_id, f"routing-{settings.router}", params)
    try:
        curves = {c.name: frontier(c.scores, test) for c in candidates if c.scores is not None}
        equal = equal_quality_costs(curves, comparison.table.set_index("router").loc["keyword", "quality"])
        files = _write(settings, outcomes, train, test, routers, chosen, comparison, run_id, classifier, equal)
        _write_curves(files["curves"], curves)
        tracker.finish_routing(run_id, _metrics(comparison), list(files.values()))
    except BaseException as exc:
        tracker.fail_routing(run_id, str(exc))
        raise
    policy = load_policy(files["policy"])  # what a gateway will read, validated the way it will be
    return RoutingResult(policy, files, comparison, run_id, train.n, test.n, outcomes.notes, equal)


def _write(
    settings: CalibrateSettings,
    outcomes: Outcomes,
    train: Outcomes,
    test: Outcomes,
    routers: dict[str, Any],
    chosen: tuple[Candidate, Calibration],
    comparison: Comparison,
    run_id: str,
    classifier: Any,
    equal_quality: dict[str, object],
) -> dict[str, Path]:
    out = settings.out
    stem = out.name.removesuffix(".json")
    files = {
        "policy": out,
        "comparison": out.with_name(f"{stem}.comparison.csv"),
        "curves": out.with_name(f"{stem}.curves.csv"),
        "report": out.with_name(f"{stem}.report.json"),
    }
    row, cal = chosen
    router = routers[settings.router]
    arrays = {} if settings.router == "keyword" else dict(router.arrays())
    task_types: list[str] = []
    if cal.per_type:
        arrays.update(classifier.arrays())
        task_types = list(classifier.classes)
    weights = None
    if arrays:
        files["weights"] = out.with_name(f"{stem}.weights.npz")
        weights = WeightsFile(path=files["weights"].name, sha256=save_weights(arrays, files["weights"]))
    features = list(settings.features) if settings.router == "learned" else []
    embedding = None
    if "embed" in features:
        embedding = EmbeddingModel(
            package=EMBEDDING_PACKAGE, version=package_version(EMBEDDING_PACKAGE),
            file=f"{EMBEDDING_DIR}/{EMBEDDING_FILE}", sha256=EMBEDDING_SHA256,
        )  # fmt: skip
    names = [r.name for r in outcomes.rungs]
    test_row = comparison.table.set_index("router").loc[row.name]
    policy = RoutingPolicy(
        models=[
            PolicyModel(
                name=r.name,
                model=r.model,
                quant=r.quant,
                backend=r.backend,
                weights_sha256=r.weights_sha256,
                cost_per_request=float(train.cost[:, i].mean()),
                quality_train=float(train.quality[:, i].mean()),
            )
            for i, r in enumerate(outcomes.rungs)
        ],
        router=RouterSpec(type=settings.router, features=features, weights=weights, embedding=embedding),
        thresholds=Thresholds(
            default=list(cal.thresholds), per_task_type={k: list(v) for k, v in cal.per_type.items()}
        ),
        task_types=task_types,
        objective=settings.objective,
        target_met_on_train=cal.met,
        default_model=names[-1],
        fallbacks=default_fallbacks(names),
        expected=[
            ExpectedPoint(
                split="train",
                requests=train.n,
                quality=cal.train.quality,
                cost_per_request=cal.train.cost,
                p95_ms=cal.train.p95_ms,
                shares=list(cal.train.shares),
            ),
            ExpectedPoint(
                split="test",
                requests=test.n,
                quality=float(test_row["quality"]),
                cost_per_request=float(test_row["cost"]),
                p95_ms=float(test_row["p95_ms"]),
                shares=[float(test_row[f"share_{i}"]) for i in range(outcomes.k)],
            ),
        ],
        source=PolicySource(
            sweep_run_id=settings.sweep_id,
            routing_run_id=run_id,
            tracking_uri=portable_uri(),
            created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            lalo_bench_version=__version__,
        ),
    )
    write_policy(policy, out)
    comparison.table.to_csv(files["comparison"], index=False)
    report = {
        "sweep_run_id": settings.sweep_id,
        "routing_run_id": run_id,
        "ladder": names,
        "objective": settings.objective.model_dump(),
        "policy_router": row.name,
        "train_requests": train.n,
        "test_requests": test.n,
        "task_types": {t: int(n) for t, n in pd.Series(test.task_types).value_counts().items()},
        "paired_differences": comparison.deltas,
        "equal_quality": equal_quality,
        "notes": outcomes.notes,
    }
    files["report"].write_text(json.dumps(report, indent=2, default=float) + "\n")
    return files


def _write_curves(path: Path, curves: dict[str, pd.DataFrame]) -> None:
    """The test split's quality-vs-cost / -p95 / -share envelopes of every scored row, for the figures."""
    frames = []
    for name, points in curves.items():
        fronts = points[[col for col in points.columns if col.startswith("on_")]].any(axis=1)
        frames.append(points[fronts].assign(router=name))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def equal_quality_costs(curves: dict[str, pd.DataFrame], quality: float) -> dict[str, object]:
    """Each router's least cost reaching ``quality`` on its test envelope (thresholds read off the test split).

    Optimistic for every router alike, so it compares routers at equal quality where their calibrated points
    (chosen on train) land at different qualities.
    """
    costs = {name: cost_at_quality(points, quality) for name, points in curves.items()}
    keyword = costs.get("keyword", float("nan"))
    saving = {
        name: 100.0 * (1 - cost / keyword) if keyword and np.isfinite(cost) else float("nan")
        for name, cost in costs.items()
    }
    return {"quality": quality, "cost": costs, "saving_vs_keyword_pct": saving, "thresholds_from": "test envelope"}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", name).replace(" ", "_")


def _metrics(comparison: Comparison) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, row in comparison.table.iterrows():
        for col, value in row.items():
            if col in ("router", "thresholds") or isinstance(value, str):
                continue
            if isinstance(value, (bool, np.bool_)):
                value = float(value)
            out[f"{_slug(str(row['router']))}.{col}"] = float(value)
    for pair, values in comparison.deltas.items():
        for metric, value in values.items():
            out[f"{_slug(pair)}.{metric}"] = float(value)
    return out
