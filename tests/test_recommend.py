"""The recommendation on hand-made evidence whose right answer is known, including when nothing fits.

The profile: 100 employees x 0.5 x 20 queries at a peak factor of 2 = 0.0694 requests/s; a request within the
objectives lasts at most 26.9 s, so the peak holds 1.868 concurrent requests. Utilisation limit: 80 %.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lalo_bench.config import Catalog
from lalo_bench.errors import ConfigError
from lalo_bench.profiles import ClientProfile, derive_load, load_profile
from lalo_bench.recommend import (
    Evidence,
    QualityEvidence,
    Recommendation,
    RoutedModel,
    RoutingEvidence,
    SpeedEvidence,
    load_recommendation,
    plan_projections,
    project_for_profile,
    recommend,
    write_recommendation,
)
from tests.conftest import HAND_PROFILE

PEAK_CONCURRENCY = 2000 / 28800 * 26.9
TASKS = ("tool_calls", "extraction", "reasoning")


def profile(**changes: Any) -> ClientProfile:
    data: dict[str, Any] = {**copy.deepcopy(HAND_PROFILE), **changes}
    return ClientProfile.model_validate(data)


def quality(model: str, tool: float, extraction: float, reasoning: float, **kw: Any) -> list[QualityEvidence]:
    scores = dict(zip(TASKS, (tool, extraction, reasoning), strict=True))
    base = {"quant": "q4_k_m", "source": "measured", "run_id": f"q-{model}", "items": 400} | kw
    return [QualityEvidence(model=model, suite=t, quality=q, **base) for t, q in scores.items()]


def speed(tier: str, model: str, users: int | None, fits: bool = True, memory: float = 2.0, **kw: Any) -> SpeedEvidence:
    base: dict[str, Any] = {
        "quant": "q4_k_m",
        "backend": "llamacpp",
        "source": "measured",
        "memory_available_gb": 23.0,
        "ttft_ms": 500.0,
        "decode_tok_s": 30.0,
        "users": 4,
        "slo_ttft_ms": 2000.0,
        "slo_itl_ms": 100.0,
        "run_id": f"s-{model}-{tier}",
    } | kw
    return SpeedEvidence(tier=tier, model=model, fits=fits, memory_required_gb=memory, users_at_slo=users, **base)


TIERS = ["minimal", "small", "medium"]  # $500, $2,000, $4,000


def run(evidence: Evidence, catalog: Catalog, p: ClientProfile | None = None) -> Recommendation:
    from lalo_bench.recommend import Settings

    return recommend(p or profile(), catalog, evidence, Settings(tiers=TIERS))


def test_cheapest_tier_that_carries_the_peak(catalog: Catalog) -> None:
    ev = Evidence(
        quality=quality("big", 0.8, 0.8, 0.8),
        speed=[
            speed("minimal", "big", None, fits=False, memory=18, memory_available_gb=15.5),
            speed("small", "big", 1, memory=18),  # 1.87 concurrent on 1 slot: 187 % > 80 %
            speed("medium", "big", 10, memory=18),  # 18.7 %
        ],
    )
    rec = run(ev, catalog)
    assert rec.status == "recommended"
    assert rec.choice is not None
    assert rec.choice.tier == "medium"
    [dep] = rec.choice.deployments
    assert (dep.model, dep.tasks) == ("big", ["tool_calls", "extraction", "reasoning"])
    assert dep.utilisation == pytest.approx(PEAK_CONCURRENCY / 10)
    assert rec.choice.peak_growth == pytest.approx(0.8 / (PEAK_CONCURRENCY / 10))
    assert rec.choice.measured
    assert set(rec.run_ids) == {"s-big-medium", "q-big"}
    verdicts = {v.tier: v for v in rec.tiers}
    assert "does not fit" in verdicts["minimal"].reasons[0]
    assert any("not enough capacity" in r for r in verdicts["small"].reasons)
    assert verdicts["medium"].feasible and not verdicts["medium"].reasons
    assert rec.cost is not None and rec.cost.tier == "medium"
    assert not any("projected" in c for c in rec.caveats)


def test_quality_floor_picks_the_model_and_splits_tasks(catalog: Catalog) -> None:
    # tiny is fast but fails the reasoning floor; big alone cannot carry the whole peak (93 % of 2 slots),
    # but carrying only reasoning (30 %) beside tiny it can: 0.7 x 9.3 % + 0.3 x 93.4 % = 34.6 %
    ev = Evidence(
        quality=quality("tiny", 0.7, 0.75, 0.4) + quality("big", 0.8, 0.8, 0.8),
        speed=[
            speed("minimal", "tiny", 20),
            speed("minimal", "big", None, fits=False, memory=18, memory_available_gb=15.5),
            speed("small", "tiny", 20),
            speed("small", "big", 2, memory=18),
        ],
    )
    rec = run(ev, catalog)
    assert rec.choice is not None and rec.choice.tier == "small"
    assert rec.choice.task_routes == {
        "tool_calls": "tiny:q4_k_m@llamacpp",
        "extraction": "tiny:q4_k_m@llamacpp",
        "reasoning": "big:q4_k_m@llamacpp",
    }
    assert rec.choice.utilisation == pytest.approx(0.7 * PEAK_CONCURRENCY / 20 + 0.3 * PEAK_CONCURRENCY / 2)
    assert rec.choice.memory_required_gb == 20
    assert {q.task: q.margin for q in rec.choice.quality} == pytest.approx(
        {"tool_calls": 0.1, "extraction": 0.05, "reasoning": 0.3}
    )
    assert any("several models share the tier" in c for c in rec.caveats)
    minimal = next(v for v in rec.tiers if v.tier == "minimal")
    assert "no deployment that runs here reaches the reasoning floor 0.5" in minimal.reasons


def test_only_a_projected_tier_meets_the_objectives(catalog: Catalog) -> None:
    ev = Evidence(
        quality=quality("big", 0.8, 0.8, 0.8),
        speed=[
            speed("small", "big", 1, memory=18),  # measured: too few slots
            speed("medium", "big", 10, memory=18, source="projected", expected_error_pct=10, run_id="cal-1"),
        ],
    )
    rec = run(ev, catalog)
    assert rec.choice is not None and rec.choice.tier == "medium"
    assert not rec.choice.measured
    [dep] = rec.choice.deployments
    assert dep.speed_source == "projected"
    assert dep.effective_capacity == pytest.approx(9.0)  # derated by its 10 % expected error
    caveat = next(c for c in rec.caveats if "projected" in c)
    assert "big:q4_k_m@llamacpp on medium" in caveat and "±10%" in caveat and "not p95" in caveat
    assert "cal-1" in rec.run_ids


def test_quality_margin_within_sampling_error_is_a_caveat(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.62, 0.8, 0.8, items=20), speed=[speed("small", "big", 10)])
    rec = run(ev, catalog)
    assert rec.choice is not None
    assert any("tool_calls quality" in c and "sampling error" in c for c in rec.caveats)


def test_reported_quality_is_labelled(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8, source="reported"), speed=[speed("small", "big", 10)])
    rec = run(ev, catalog)
    assert any("reported by its publisher, not measured here" in c for c in rec.caveats)


def test_measured_quality_wins_over_reported(catalog: Catalog) -> None:
    ev = Evidence(
        quality=quality("big", 0.9, 0.9, 0.9, source="reported") + quality("big", 0.4, 0.4, 0.4),
        speed=[speed("small", "big", 10)],
    )
    rec = run(ev, catalog)
    assert rec.status == "nothing_fits"
    assert rec.missing[0].need == "quality_floor"
    assert "0.40 (measured)" in rec.missing[0].detail


def test_nothing_fits_a_quality_floor(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 10)])
    rec = run(ev, catalog, profile(quality_floor={"tool_calls": 0.6, "extraction": 0.7, "reasoning": 0.9}))
    assert rec.status == "nothing_fits"
    assert rec.choice is None and rec.cost is None
    miss, at_best = rec.missing
    assert miss.need == "quality_floor"
    assert "reasoning floor 0.9" in miss.detail and "big:q4_k_m at 0.80" in miss.detail
    # The hardware is not what is short: at the best score there is, the small tier would carry it.
    assert at_best.need == "quality_floor"
    assert "(reasoning 0.80)" in at_best.detail and "tier small ($2,000) with big:q4_k_m@llamacpp" in at_best.detail


def test_nothing_fits_a_quality_floor_nor_the_peak(catalog: Catalog) -> None:
    """When even the best-scoring model cannot carry the peak, no stack at lowered floors is offered."""
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 0)])
    rec = run(ev, catalog, profile(quality_floor={"reasoning": 0.9}))
    assert [m.need for m in rec.missing] == ["quality_floor"]


def test_nothing_fits_in_memory(catalog: Catalog) -> None:
    ev = Evidence(
        quality=quality("huge", 0.9, 0.9, 0.9) + quality("tiny", 0.7, 0.75, 0.4),
        speed=[
            speed("medium", "huge", None, fits=False, memory=400, memory_available_gb=46),
            speed("small", "huge", None, fits=False, memory=400),
            speed("small", "tiny", 20),
        ],
    )
    rec = run(ev, catalog)
    assert rec.status == "nothing_fits"
    needs = {m.need: m.detail for m in rec.missing}
    assert "needs 400 GB" in needs["memory"] and "46 GB" in needs["memory"]
    assert "tiny:q4_k_m@llamacpp" in needs["smaller_model"]


def test_nothing_carries_the_peak(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed(t, "big", 1) for t in TIERS])
    rec = run(ev, catalog)
    assert rec.status == "nothing_fits"
    assert {m.need for m in rec.missing} == {"throughput"}
    assert not any("cloud" in m.detail for m in rec.missing)
    rec = run(ev, catalog, profile(privacy={"cloud_fallback": True}))
    assert all("overflow to the cloud" in m.detail for m in rec.missing)


def test_latency_objective_missed_even_alone(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 10, ttft_ms=5000)])
    rec = run(ev, catalog)
    assert [m.need for m in rec.missing] == ["latency"]
    assert "ttft_ms (5000 > 2000)" in rec.missing[0].detail


def test_budget_is_what_is_missing(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("medium", "big", 10)])
    rec = run(ev, catalog, profile(budget={"hardware_usd": 3000}))
    assert rec.status == "nothing_fits"
    [miss] = rec.missing
    assert miss.need == "budget" and "medium at $4,000" in miss.detail
    medium = next(v for v in rec.tiers if v.tier == "medium")
    assert medium.feasible and not medium.within_budget


def test_capacity_found_for_looser_objectives_is_not_used(catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 10, slo_ttft_ms=5000)])
    rec = run(ev, catalog)
    assert rec.status == "nothing_fits"
    small = next(v for v in rec.tiers if v.tier == "small")
    assert any("looser (or unstated) objectives" in r for r in small.reasons)


def test_routing_ladder_beats_task_routing_on_load(catalog: Catalog) -> None:
    # routed 80 % / 20 %: 0.8 x 9.3 % + 0.2 x 93.4 % = 26.2 %, below the task split's 34.6 %
    routing = RoutingEvidence(
        policy="routing_policy.json",
        run_id="route-1",
        models=[
            RoutedModel(model="tiny", quant="q4_k_m", backend="llamacpp", share=0.8),
            RoutedModel(model="big", quant="q4_k_m", backend="llamacpp", share=0.2),
        ],
        thresholds=[0.55],
        quality=0.74,
        requests=120,
    )
    ev = Evidence(
        quality=quality("tiny", 0.7, 0.75, 0.4) + quality("big", 0.8, 0.8, 0.8),
        speed=[speed("small", "tiny", 20), speed("small", "big", 2, memory=18)],
        routing=routing,
    )
    rec = run(ev, catalog)
    assert rec.choice is not None and rec.choice.routing is not None
    assert rec.choice.routing.thresholds == [0.55]
    assert rec.choice.utilisation == pytest.approx(0.8 * PEAK_CONCURRENCY / 20 + 0.2 * PEAK_CONCURRENCY / 2)
    assert "route-1" in rec.run_ids
    assert any("per-task quality is unknown" in c for c in rec.caveats)


def test_routing_policy_becomes_evidence() -> None:
    from lalo_bench.routing.policy import ExpectedPoint, PolicySource
    from lalo_bench.testing.gateway import keyword_policy

    policy = keyword_policy(["tiny:q4_k_m@llamacpp", "big:q4_k_m@llamacpp"], thresholds=[0.55]).model_copy(
        update={
            "expected": [
                ExpectedPoint(split="train", requests=300, quality=0.75, cost_per_request=2, p95_ms=900,
                              shares=[0.7, 0.3]),
                ExpectedPoint(split="test", requests=100, quality=0.72, cost_per_request=2, p95_ms=950,
                              shares=[0.6, 0.4]),
            ],
            "source": PolicySource(sweep_run_id="sweep-1", routing_run_id="route-1", tracking_uri="x",
                                   created_utc="t", lalo_bench_version="0"),
        }
    )  # fmt: skip
    ev = RoutingEvidence.from_policy(policy, "routing_policy.json")
    assert [m.share for m in ev.models] == [0.6, 0.4]
    assert (ev.quality, ev.requests, ev.run_id, ev.thresholds) == (0.72, 100, "route-1", [0.55])


def test_projection_sized_for_the_profile(catalog: Catalog) -> None:
    p = profile()
    proj = project_for_profile(catalog, p, "lfm2-350m-extract", "small")
    assert proj.users == 2  # ceil(1.868)
    assert proj.prompt_tokens == 750 and proj.context_tokens == 1000
    assert (proj.slo_ttft_ms, proj.slo_itl_ms) == (2000, 100)
    ev = SpeedEvidence.from_projection(proj, run_id="cal-1")
    assert ev.source == "projected" and ev.fits and ev.run_id == "cal-1"
    assert ev.users_at_slo == proj.users_at_slo


def test_plan_assumptions_that_are_wrong_become_caveats(catalog: Catalog) -> None:
    p = load_profile("cloud-heavy", catalog)
    load = derive_load(p)
    assert load.requests_per_day == 100_000
    rec = recommend(p, catalog, Evidence())
    assert rec.status == "nothing_fits"
    gpt4 = next(c for c in rec.caveats if c.startswith("plan: GPT-4"))
    assert "$9,000/day" in gpt4 and "$3,750/day" in gpt4 and "input + output price ($90 per million)" in gpt4
    assert any("$1,800/day" in c and "$600/day" in c for c in rec.caveats)


def test_plan_model_that_does_not_fit_its_tier(catalog: Catalog) -> None:
    p = load_profile("small", catalog)
    plan = plan_projections(catalog, p)
    assert {(e.model, e.tier) for e in plan} == {(m, "small") for m in p.plan.models}  # type: ignore[union-attr]
    rec = recommend(p, catalog, Evidence(speed=plan))
    assert any(c.startswith("plan: deepseek-v3 on small does not fit") for c in rec.caveats)
    assert not any(c.startswith("plan: lfm2-350m-extract") for c in rec.caveats)


def test_recommendation_json_round_trip(tmp_path: Path, catalog: Catalog) -> None:
    ev = Evidence(quality=quality("big", 0.8, 0.8, 0.8), speed=[speed("small", "big", 10)])
    rec = run(ev, catalog)
    path = write_recommendation(rec, tmp_path / "recommendation.json")
    again = load_recommendation(path)
    assert again == rec
    data = json.loads(path.read_text())
    assert (data["kind"], data["version"]) == ("lalo-bench/recommendation", 1)
    data["version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_recommendation(path)
    assert "unsupported recommendation version 2" in str(info.value) and "\n" not in str(info.value)


def test_plan_tier_that_fails_is_named_with_its_reason(catalog: Catalog) -> None:
    plan = {"section": "s", "tiers": ["small"], "hardware_usd": [1500, 3000], "break_even_months": [1, 6]}
    ev = Evidence(
        quality=quality("big", 0.8, 0.8, 0.8),
        speed=[speed("small", "big", 1, memory=18), speed("medium", "big", 10, memory=18)],
    )
    rec = run(ev, catalog, profile(plan=plan))
    assert rec.choice is not None and rec.choice.tier == "medium"
    tier = next(c for c in rec.caveats if c.startswith("plan: puts this deployment on small"))
    assert "the evidence picks medium (small: not enough capacity" in tier
    assert "plan: prices the hardware at $1,500-$3,000; medium costs $4,000" in rec.caveats
    # 1000 queries a day x 21.7 days: $407/month on GPT-4 and $65 on Claude 3.5 against $4,000 of hardware
    assert rec.cost is not None
    assert rec.cost.cloud("claude-3.5").break_even_month is None
    assert any(
        c.startswith("plan: break-even in 1-6 months; against Claude 3.5 it is not within 36") for c in rec.caveats
    )
