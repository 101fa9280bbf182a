"""Routing: the plan's keyword heuristic, threshold calibration on outcomes whose answer is known, APGR and CPT
on hand-computed curves, and a learned router that beats random where the requests are separable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lalo_bench.routing.calibrate import NEVER, Objective, assign, calibrate, calibrate_per_type, route
from lalo_bench.routing.curves import apgr, bootstrap, cpt, ladder_pair_metrics, pair_curve
from lalo_bench.routing.features import Featurizer, routing_text
from lalo_bench.routing.outcomes import Outcomes, Rung, build_outcomes, split
from lalo_bench.routing.routers import KeywordRouter, LearnedRouter, RandomRouter, TaskTypeRouter, oracle_scores


def outcomes(
    quality: np.ndarray,
    cost: np.ndarray,
    latency: np.ndarray | None = None,
    texts: list[str] | None = None,
    types: list[str] | None = None,
) -> Outcomes:
    n, k = quality.shape
    items = pd.DataFrame(
        {
            "key": [f"s/{i}" for i in range(n)],
            "group": [f"s/{i}" for i in range(n)],
            "suite": "s",
            "suite_options": "",
            "suite_label": "s",
            "item_id": [str(i) for i in range(n)],
            "task_type": types or ["reasoning"] * n,
            "text": texts or [f"item {i}" for i in range(n)],
        }
    )
    rungs = [Rung(f"m{r}", "q", "b") for r in range(k)]
    return Outcomes(rungs, items, quality.astype(float), cost.astype(float), (latency if latency is not None else cost))


# ---------------------------------------------------------------- the plan's keyword heuristic


def _plan_analyze_complexity(prompt: str) -> float:
    """``ModelRouter._analyze_complexity`` copied verbatim from seed/lalo-local-inference-strategy.md (the oracle)."""
    indicators = {
        "simple": ["what is", "define", "explain"],
        "medium": ["how to", "compare", "analyze"],
        "complex": ["prove", "design", "optimize", "reason"],
    }

    prompt_lower = prompt.lower()

    if any(kw in prompt_lower for kw in indicators["complex"]):
        return 0.9
    if any(kw in prompt_lower for kw in indicators["medium"]):
        return 0.6
    if any(kw in prompt_lower for kw in indicators["simple"]):
        return 0.3

    # Default medium complexity
    return 0.5


PROMPTS = {
    "Prove that the square root of 2 is irrational.": 0.9,
    "Design a schema for invoices": 0.9,
    "OPTIMIZE this loop": 0.9,
    "Explain your reasoning": 0.9,  # "reason" is a substring of "reasoning": first match wins, complex first
    "What is the best way to optimize a query?": 0.9,
    "How to compare two lists in Python": 0.6,
    "Analyze the sales figures": 0.6,
    "What is a mutex?": 0.3,
    "Define entropy.": 0.3,
    "explain recursion": 0.3,
    "Find the GCD of 36 and 48.": 0.5,
    "": 0.5,
}


@pytest.mark.parametrize(("prompt", "expected"), PROMPTS.items())
def test_keyword_router_reproduces_the_plans_scores(prompt: str, expected: float) -> None:
    assert KeywordRouter.complexity(prompt) == expected == _plan_analyze_complexity(prompt)
    assert KeywordRouter().score([prompt]).tolist() == [expected]


def test_routing_text_is_the_user_turns_and_tool_names() -> None:
    messages = [
        {"role": "system", "content": "Always reason step by step."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
    ]
    tools = [{"type": "function", "function": {"name": "calc"}}]
    assert routing_text(messages, tools) == "What is 2+2?\nAnd 3+3?\ntools: calc"
    assert KeywordRouter().score([routing_text(messages)]).tolist() == [0.3]  # the system prompt is not routed on


# ---------------------------------------------------------------- calibration


def two_rung_known() -> tuple[np.ndarray, Outcomes]:
    """200 requests, score i/200; the weak model is right below 0.6, the strong one always; costs 1 and 10."""
    n = 200
    scores = np.arange(n) / n
    quality = np.column_stack([(scores < 0.6).astype(float), np.ones(n)])
    cost = np.column_stack([np.ones(n), np.full(n, 10.0)])
    latency = np.column_stack([np.full(n, 100.0), np.full(n, 1000.0)])
    return scores, outcomes(quality, cost, latency)


def test_calibration_meets_a_quality_target_at_least_cost() -> None:
    scores, o = two_rung_known()
    cal = calibrate(scores, o, Objective(kind="target_quality", value=0.9))
    # quality(t) = 1 − (t − 0.6) for t ≥ 0.6, so the cheapest threshold reaching 0.9 is t = 0.7
    assert cal.met and cal.thresholds == pytest.approx((0.7,))
    assert cal.train.quality == pytest.approx(0.9)
    assert cal.train.cost == pytest.approx(0.7 * 1 + 0.3 * 10)
    assert cal.train.shares == pytest.approx((0.7, 0.3))


def test_calibration_gets_the_best_quality_within_a_cost_budget() -> None:
    scores, o = two_rung_known()
    cal = calibrate(scores, o, Objective(kind="max_cost", value=2.8))
    # cost(t) = 10 − 9t ≤ 2.8 ⇔ t ≥ 0.8, where quality is 0.8
    assert cal.met and cal.thresholds == pytest.approx((0.8,))
    assert cal.train.quality == pytest.approx(0.8) and cal.train.cost <= 2.8


def test_calibration_gets_the_best_quality_within_a_p95_budget() -> None:
    scores, o = two_rung_known()
    cal = calibrate(scores, o, Objective(kind="max_p95_ms", value=500))
    # p95 stays at 145 ms while at most 10 of 200 requests (5%) take the 1000 ms model: t = 0.95
    assert cal.met and cal.thresholds == pytest.approx((0.95,))
    assert cal.train.p95_ms == pytest.approx(145.0) and cal.train.quality == pytest.approx(0.65)


def test_calibration_of_a_three_model_ladder_separates_the_difficulties() -> None:
    n = 90
    difficulty = np.repeat([0, 1, 2], n // 3)
    quality = np.column_stack([(difficulty <= r).astype(float) for r in range(3)])
    cost = np.tile([1.0, 3.0, 10.0], (n, 1))
    scores = difficulty / 2 + np.linspace(0, 0.01, n)
    cal = calibrate(scores, outcomes(quality, cost), Objective(kind="target_quality", value=1.0))
    assert cal.met and cal.train.quality == 1.0
    assert cal.train.cost == pytest.approx(14 / 3) and cal.train.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert list(assign(scores[[0, 29, 30, 59, 60, 89]], cal.thresholds)) == [0, 0, 1, 1, 2, 2]


def test_an_unreachable_target_is_flagged_and_the_best_quality_kept() -> None:
    scores, o = two_rung_known()
    o.quality[195:, 1] = 0.0  # the strong model now misses five requests the weak one also misses
    cal = calibrate(scores, o, Objective(kind="target_quality", value=1.0))
    assert not cal.met and cal.train.quality == pytest.approx(o.quality.max(axis=1).mean())


def test_per_type_thresholds_route_each_type_where_it_needs_to_go() -> None:
    n = 100
    types = np.array(["tool_call"] * 50 + ["extraction"] * 50)
    quality = np.column_stack([(types == "extraction").astype(float), np.ones(n)])
    cost = np.tile([1.0, 10.0], (n, 1))
    scores = np.full(n, 0.5)  # the score says nothing; only the type does
    o = outcomes(quality, cost, types=types.tolist())
    target = Objective(kind="target_quality", value=1.0)
    assert calibrate(scores, o, target).train.cost == pytest.approx(10.0)  # one global cut: everything strong
    cal = calibrate_per_type(scores, types, o, target)
    assert cal.met and cal.train.quality == 1.0 and cal.train.cost == pytest.approx(5.5)
    assert cal.per_type["tool_call"][0] <= 0.5 and cal.per_type["extraction"][0] == NEVER
    assert list(route(scores[[0, 99]], cal, types[[0, 99]])) == [1, 0]


# ---------------------------------------------------------------- APGR and CPT


def test_apgr_and_cpt_on_a_hand_computed_curve() -> None:
    curve = pd.DataFrame({"strong_pct": [0.0, 50.0, 100.0], "quality": [0.2, 0.5, 0.6]})
    # AUC = 0.5·(0.2+0.5)/2 + 0.5·(0.5+0.6)/2 = 0.45; (0.45 − 0.2) / (0.6 − 0.2) = 0.625
    assert apgr(curve, 0.2, 0.6) == pytest.approx(0.625)
    assert cpt(curve, 0.2, 0.6, 0.5) == pytest.approx(100 / 3)  # 0.4 is 2/3 of the way to 50%
    assert cpt(curve, 0.2, 0.6, 0.8) == pytest.approx(60.0)  # 0.52 is 1/5 of the way from 50% to 100%
    # RouteLLM reads CPT with np.interp over (quality → % calls); on a rising curve it is the same number
    assert cpt(curve, 0.2, 0.6, 0.5) == pytest.approx(np.interp(0.4, [0.2, 0.5, 0.6], [0, 50, 100]))


def test_pair_curve_of_a_perfect_ranking() -> None:
    """10 requests scored 0..9; the weak model misses the top five, the strong one gets all.

    Quantile thresholds 0, 0.9, …, 9 send the top m requests to the strong model (m = 10 … 0), so quality is
    0.5 + min(m, 5)/10: the gap is recovered linearly up to 50% of calls and fully after. APGR = 0.25 + 0.5.
    """
    scores = np.arange(10.0)
    q_weak = (scores < 5).astype(float)
    curve = pair_curve(scores, q_weak, np.ones(10))
    assert curve["strong_pct"].tolist() == pytest.approx([10.0 * m for m in range(11)])
    assert apgr(curve, 0.5, 1.0) == pytest.approx(0.75)
    assert cpt(curve, 0.5, 1.0, 0.5) == pytest.approx(25.0)
    assert cpt(curve, 0.5, 1.0, 0.8) == pytest.approx(40.0)


def test_a_random_router_recovers_half_the_gap() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    quality = np.column_stack([rng.random(n) < 0.3, rng.random(n) < 0.8]).astype(float)
    o = outcomes(quality, np.tile([1.0, 5.0], (n, 1)))
    metrics = ladder_pair_metrics(RandomRouter(seed=3).score(o.texts), o)
    assert metrics["apgr"] == pytest.approx(0.5, abs=0.05)
    assert metrics["cpt50"] == pytest.approx(50.0, abs=6) and metrics["cpt80"] == pytest.approx(80.0, abs=6)


def test_bootstrap_intervals_cover_the_estimate() -> None:
    values = np.random.default_rng(0).normal(10.0, 1.0, 400)
    lo, hi = bootstrap(lambda idx: {"mean": float(values[idx].mean())}, len(values), resamples=300)["mean"]
    assert lo < values.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.25)


# ---------------------------------------------------------------- trained routers


def separable(n: int, seed: int) -> Outcomes:
    """Easy lookups the weak model gets right, proofs only the strong one does; cost 1 vs 10."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    subjects = ["apples", "rivers", "planets", "songs", "cities", "metals"]
    texts = [
        f"prove the lemma on compact {rng.choice(subjects)} number {i}"
        if h
        else f"list the colour of {rng.choice(subjects)} item {i}"
        for i, h in enumerate(hard)
    ]
    quality = np.column_stack([(~hard).astype(float), np.ones(n)])
    types = ["reasoning" if h else "extraction" for h in hard]
    return outcomes(quality, np.tile([1.0, 10.0], (n, 1)), texts=texts, types=types)


def test_learned_router_beats_random_on_separable_requests() -> None:
    train, test = separable(120, seed=0), separable(80, seed=1)
    learned = LearnedRouter(Featurizer(["tfidf"])).fit(train.texts, train.oracle_rung(), train.k)
    ours = ladder_pair_metrics(learned.score(test.texts), test)
    chance = ladder_pair_metrics(RandomRouter().score(test.texts), test)
    ceiling = ladder_pair_metrics(oracle_scores(test.oracle_rung(), test.k), test)  # 1 − hard share / 2, not 1
    assert ours["apgr"] == pytest.approx(ceiling["apgr"], abs=0.03) and ours["apgr"] > chance["apgr"] + 0.2
    assert ours["cpt80"] < chance["cpt80"]
    cal = calibrate(learned.score(train.texts), train, Objective(kind="target_quality", value=0.99))
    point = route(learned.score(test.texts), cal)
    assert test.quality[np.arange(test.n), point].mean() >= 0.95
    assert test.cost[np.arange(test.n), point].mean() < 0.6 * 10  # well under always-strong


def test_task_type_router_scores_each_type_by_its_need() -> None:
    train = separable(120, seed=0)
    router = TaskTypeRouter().fit(train.texts, train.task_types, train.need())
    assert router.need == {"extraction": 0.0, "reasoning": 1.0}
    scores = router.score(["prove the lemma on compact rivers number 7", "list the colour of songs item 3"])
    assert scores[0] > 0.8 and scores[1] < 0.2


def test_oracle_takes_the_cheapest_model_that_got_it_right_per_request() -> None:
    quality = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.8, 0.8]])
    cost = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [9.0, 2.0, 3.0], [1.0, 4.0, 3.0]])
    assert outcomes(quality, cost).oracle_rung().tolist() == [0, 1, 1, 2]


def test_outcomes_keep_requests_every_rung_answered_and_split_by_group() -> None:
    rows = []
    for model, cost in (("weak", 1000.0), ("strong", 4000.0)):
        for i in range(30):
            if model == "weak" and i == 29:
                continue  # the weak model never answered the last request
            for mode in ("native", "prompt"):
                rows.append({
                    "model": model, "quant": "q", "backend": "llamacpp", "suite": "tool_calls",
                    "suite_options": f'{{"mode": "{mode}"}}', "suite_label": f"tool_calls[mode={mode}]",
                    "item_id": f"t{i}", "score": float(model == "strong"), "e2e_ms": cost if i else None,
                    "weights_sha256": "0" * 64,
                })  # fmt: skip
    frame = pd.DataFrame(rows)

    def texts(suite: str, options: dict, ids: list[str]) -> dict[str, tuple[str, str]]:
        return {i: (f"{options['mode']} {i}", "tool_call") for i in ids}

    o = build_outcomes(frame, texts=texts)
    assert [r.model for r in o.rungs] == ["weak", "strong"] and o.n == 58
    assert o.cost[:, 0] == pytest.approx(1.0)  # the missing e2e time is charged the model's median
    assert any("not answered by every rung" in note for note in o.notes)
    train, test = split(o.items, 0.3, seed=0)
    groups = o.items["group"]
    assert not set(groups.iloc[train]) & set(groups.iloc[test])  # one item's two renderings stay together
    assert len(test) == pytest.approx(0.3 * o.n, abs=2)
