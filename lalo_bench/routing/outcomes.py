"""Per-item outcomes of a ladder of models: what each model scored on each request, at what cost and latency.

Built from a sweep's per-item tables (``tracking.Tracker.sweep_items_frame``). A request is one suite
item rendered one way (``suite_label`` + ``item_id``: tool calls in native and prompt mode are two
requests); only requests every rung answered are kept. The request text comes from the suite itself,
the same text the gateway will see (:func:`lalo_bench.routing.features.routing_text`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lalo_bench.errors import LaloError
from lalo_bench.routing.cost import item_costs, item_latency_ms
from lalo_bench.routing.features import routing_text

MIN_ITEMS = 10
"""Fewer requests common to every rung than this cannot be split into train and test."""

TextSource = Callable[[str, dict, list[str]], dict[str, tuple[str, str]]]
"""(suite, suite options, item ids) → item id → (routing text, task type)."""


@dataclass(frozen=True)
class Rung:
    """One model of the ladder, as the sweep ran it."""

    model: str
    quant: str
    backend: str
    weights_sha256: str | None = None

    @property
    def name(self) -> str:
        return f"{self.model}:{self.quant}@{self.backend}"


@dataclass
class Outcomes:
    """Requests × rungs: quality (item score in [0, 1]), cost (device-s) and latency (ms); rungs cheapest first."""

    rungs: list[Rung]
    items: pd.DataFrame  # key, group, suite, suite_label, item_id, task_type, text
    quality: np.ndarray
    cost: np.ndarray
    latency_ms: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def k(self) -> int:
        return len(self.rungs)

    @property
    def texts(self) -> list[str]:
        return self.items["text"].tolist()

    @property
    def task_types(self) -> np.ndarray:
        return self.items["task_type"].to_numpy()

    def take(self, idx: np.ndarray) -> Outcomes:
        return Outcomes(
            self.rungs, self.items.iloc[idx].reset_index(drop=True), self.quality[idx], self.cost[idx],
            self.latency_ms[idx], list(self.notes),
        )  # fmt: skip

    def with_rungs(self, keep: list[int]) -> Outcomes:
        return Outcomes(
            [self.rungs[i] for i in keep], self.items, self.quality[:, keep], self.cost[:, keep],
            self.latency_ms[:, keep], list(self.notes),
        )  # fmt: skip

    def oracle_rung(self) -> np.ndarray:
        """Per request, the model that reached the best score any rung reached at the least measured cost.

        Per request, not by ladder position: a small model that answers at length (up to max_tokens) can
        cost more than a larger one that answers briefly, and where no model is right the cheapest wins.
        """
        best = self.quality.max(axis=1, keepdims=True)
        cost = np.where(self.quality >= best - 1e-9, self.cost, np.inf)
        return np.argmin(cost, axis=1)

    def need(self) -> np.ndarray:
        """The oracle rung scaled to [0, 1]: what a router's score should predict."""
        return self.oracle_rung() / max(self.k - 1, 1)


def parse_rung(spec: str) -> tuple[str, str | None, str | None]:
    """``model[:quant][@backend]`` → its parts."""
    rest, _, backend = spec.partition("@")
    model, _, quant = rest.partition(":")
    if not model:
        raise LaloError(f"ladder entry '{spec}' names no model (expected MODEL[:QUANT][@BACKEND])")
    return model, quant or None, backend or None


def resolve_ladder(frame: pd.DataFrame, ladder: list[str] | None, reference_backends: set[str]) -> list[Rung]:
    """The rungs named by ``ladder`` (in that order), or every model the sweep ran except reference backends."""
    cells = frame[["model", "quant", "backend"]].drop_duplicates()
    sha = frame.groupby(["model", "quant", "backend"])["weights_sha256"].first().to_dict()

    def rung(model: str, quant: str, backend: str) -> Rung:
        value = sha.get((model, quant, backend))
        return Rung(model, quant, backend, value if isinstance(value, str) and len(value) == 64 else None)

    if not ladder:
        keep = cells[~cells["backend"].isin(reference_backends)]
        return [rung(*row) for row in keep.itertuples(index=False)]
    rungs = []
    for spec in ladder:
        model, quant, backend = parse_rung(spec)
        hit = cells[cells["model"] == model]
        if quant:
            hit = hit[hit["quant"] == quant]
        if backend:
            hit = hit[hit["backend"] == backend]
        if hit.empty:
            ran = ", ".join(sorted(f"{m}:{q}@{b}" for m, q, b in cells.itertuples(index=False)))
            raise LaloError(f"ladder entry '{spec}' matches no cell of the sweep (it ran: {ran})")
        if len(hit) > 1:
            options = ", ".join(f"{m}:{q}@{b}" for m, q, b in hit.itertuples(index=False))
            raise LaloError(f"ladder entry '{spec}' is ambiguous: {options}; name the quant and backend")
        rungs.append(rung(*hit.iloc[0]))
    if len(set(rungs)) < len(rungs):
        raise LaloError("the ladder names one cell twice")
    return rungs


def build_outcomes(
    frame: pd.DataFrame,
    ladder: list[str] | None = None,
    texts: TextSource | None = None,
    reference_backends: set[str] | None = None,
) -> Outcomes:
    """Outcomes of the ladder over the requests every rung answered; rungs in ``ladder`` order, else by mean cost."""
    if frame.empty:
        raise LaloError("the sweep has no per-item results to learn from")
    if reference_backends is None:
        from lalo_bench.suites import ORACLES

        reference_backends = set(ORACLES)
    rungs = resolve_ladder(frame, ladder, reference_backends)
    if len(rungs) < 2:
        raise LaloError(f"routing needs at least two models in the ladder; the sweep has {len(rungs)}")
    frame = frame.assign(key=frame["suite_label"].astype(str) + "/" + frame["item_id"].astype(str))
    notes: list[str] = []
    per_rung: list[pd.DataFrame] = []
    for r in rungs:
        rows = frame[(frame["model"] == r.model) & (frame["quant"] == r.quant) & (frame["backend"] == r.backend)]
        if rows["key"].duplicated().any():
            notes.append(f"{r.name}: {int(rows['key'].duplicated().sum())} request(s) ran twice; the first is kept")
            rows = rows.drop_duplicates("key")
        cost = item_costs(rows["e2e_ms"])
        if cost.isna().all():
            raise LaloError(f"{r.name}: no item has a measured e2e time, so its cost is unknown")
        rows = rows.assign(cost=cost.to_numpy(), latency=item_latency_ms(rows["e2e_ms"]).to_numpy())
        per_rung.append(rows.set_index("key"))
    common = sorted(set.intersection(*(set(p.index) for p in per_rung)))
    dropped = max(len(p) for p in per_rung) - len(common)
    if dropped:
        notes.append(f"{dropped} request(s) not answered by every rung were left out")
    if len(common) < MIN_ITEMS:
        raise LaloError(f"only {len(common)} request(s) were answered by every rung; routing needs {MIN_ITEMS}")
    first = per_rung[0].loc[common]
    items = pd.DataFrame(
        {
            "key": common,
            "group": (first["suite"].astype(str) + "/" + first["item_id"].astype(str)).to_numpy(),
            "suite": first["suite"].to_numpy(),
            "suite_options": first["suite_options"].fillna("").to_numpy(),
            "suite_label": first["suite_label"].to_numpy(),
            "item_id": first["item_id"].astype(str).to_numpy(),
        }
    )
    items = _attach_texts(items, texts or suite_texts)
    quality = np.column_stack([p.loc[common, "score"].astype(float).to_numpy() for p in per_rung])
    cost = np.column_stack([p.loc[common, "cost"].to_numpy() for p in per_rung])
    latency = np.column_stack([p.loc[common, "latency"].to_numpy() for p in per_rung])
    outcomes = Outcomes(rungs, items, np.clip(quality, 0.0, 1.0), cost, latency, notes)
    if not ladder:
        order = list(np.argsort(outcomes.cost.mean(axis=0), kind="stable"))
        outcomes = outcomes.with_rungs(order)
    return outcomes


def drop_dominated(outcomes: Outcomes, train: np.ndarray) -> Outcomes:
    """Drop rungs that a cheaper rung matches or beats on the train split (they would never be worth a call)."""
    q = outcomes.quality[train].mean(axis=0)
    keep, best = [], -1.0
    for i in range(outcomes.k):  # rungs are cheapest first
        if q[i] > best + 1e-9:
            keep.append(i)
            best = q[i]
        else:
            outcomes.notes.append(
                f"{outcomes.rungs[i].name} left out of the ladder: a cheaper model scores as well on the train split"
            )
    return outcomes.with_rungs(keep) if len(keep) < outcomes.k else outcomes


def _attach_texts(items: pd.DataFrame, texts: TextSource) -> pd.DataFrame:
    text_col, type_col = [""] * len(items), [""] * len(items)
    for (suite, options), group in items.groupby(["suite", "suite_options"], sort=False):
        opts = json.loads(options) if options else {}
        found = texts(str(suite), opts, group["item_id"].tolist())
        for pos, item_id in zip(group.index, group["item_id"], strict=True):
            if item_id not in found:
                raise LaloError(f"item '{item_id}' of suite '{suite}' is not in the suite's data (was it regenerated?)")
            text_col[pos], type_col[pos] = found[item_id]
    return items.assign(text=text_col, task_type=type_col)


def suite_texts(suite: str, options: dict, item_ids: list[str]) -> dict[str, tuple[str, str]]:
    """The routing text and task type of suite items, rendered by the suite exactly as the sweep sent them."""
    from lalo_bench.suites import get_suite

    the_suite = get_suite(suite, options)
    wanted = set(item_ids)
    out: dict[str, tuple[str, str]] = {}
    for item in the_suite.items():
        if item.id in wanted:
            request = the_suite.request(item, max_tokens=16)
            out[item.id] = (routing_text(request.messages, request.tools), item.task_type)
    return out


def folds(items: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """A fold id per row, by request group and spread over folds within each task type (for out-of-fold scores)."""
    rng = np.random.default_rng(seed)
    group_fold: dict[str, int] = {}
    for _, rows in items.groupby("task_type", sort=True):
        groups = np.array(sorted(rows["group"].unique()))
        rng.shuffle(groups)
        offset = int(rng.integers(n_folds))
        group_fold.update({g: (i + offset) % n_folds for i, g in enumerate(groups.tolist())})
    return items["group"].map(group_fold).to_numpy()


def split(items: pd.DataFrame, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices, by request group (one item in two renderings stays on one side), per task type."""
    if not 0.0 < test_fraction < 1.0:
        raise LaloError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test_groups: set[str] = set()
    for _, rows in items.groupby("task_type", sort=True):
        groups = np.array(sorted(rows["group"].unique()))
        rng.shuffle(groups)
        n_test = round(len(groups) * test_fraction)
        if len(groups) >= 2:
            n_test = min(max(n_test, 1), len(groups) - 1)
        test_groups.update(groups[:n_test].tolist())
    is_test = items["group"].isin(test_groups).to_numpy()
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if len(train) == 0 or len(test) == 0:
        raise LaloError("the train/test split left one side empty; use more items or another --test-fraction")
    return train, test
