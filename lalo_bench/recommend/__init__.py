"""Client profile + evidence → the cheapest tier and stack that meets the profile, or what is missing.

Evidence comes in typed (the report builds it from MLflow runs; tests build it by hand):
:class:`QualityEvidence` (mean suite score of a model × quant: measured here, projected, or reported by its
publisher), :class:`SpeedEvidence` (a model × quant × backend on a tier: fit, TTFT, decode speed and capacity
within the latency objectives, measured by a load test or projected — :meth:`SpeedEvidence.from_projection`)
and optionally :class:`RoutingEvidence` (a routing policy's ladder, shares and expected quality).

Rules, stated once:

* **Tiers**: the catalog tiers with a price (``cpu-local`` is the bench machine, not something to sell), ranked
  by cost of ownership over 36 months (:func:`lalo_bench.costs.ownership_usd`). A tier over the profile's
  hardware or monthly budget is evaluated but not recommended.
* **Stacks**: 1 to :attr:`Settings.max_deployments` (4) deployments (model × quant × backend) on one tier, every
  task of the mix served by one of them (routing by task type), or a routing policy's ladder. A task's quality
  must reach its floor; a floor of 0 needs no evidence.
* **Memory**: one deployment must fit; several must fit together: the sum of their needs (each sized for the
  whole peak, which is cautious) within the tier's usable memory.
* **Capacity**: a deployment carrying a share s of the requests holds s x the peak concurrency
  (:func:`lalo_bench.profiles.derive_load`) against its users at the SLO — computed for objectives no looser
  than the profile's — derated by the projection's expected error (:attr:`Settings.default_projection_error`
  when it has none); a measured max requests/s at the SLO is used instead where given. Deployments share the
  tier, so their utilisations add up, and the sum must stay within 1 - :attr:`Settings.headroom` (queues grow
  without bound as utilisation nears 1).
* **Latency**: each deployment's TTFT, ITL (1000 / decode tok/s) and e2e (TTFT + (n - 1) x ITL) within the
  objectives.
* **Preference**: the cheapest tier; on it, the fewest deployments, then the lowest utilisation, then the
  highest mix-weighted quality.
* **Caveats** name every projected speed, every quality not measured here, every quality margin within its
  sampling error, and every claim of the plan (``profile.plan``) that the evidence contradicts.
"""

from __future__ import annotations

from lalo_bench.config import Catalog, TierSpec
from lalo_bench.costs import CostComparison, compare, ownership_usd
from lalo_bench.errors import LaloError
from lalo_bench.profiles import ClientProfile, derive_load
from lalo_bench.recommend.blocks import (
    QualityIndex,
    index_quality,
    latency_checks,
    meets_floor,
    plan_projections,
    project_for_profile,
    projection_error,
    usable,
)
from lalo_bench.recommend.caveats import build_stack, plan_caveats, sampling_error
from lalo_bench.recommend.evidence import (
    Evidence,
    QualityEvidence,
    QualitySource,
    RoutedModel,
    RoutingEvidence,
    Settings,
    SpeedEvidence,
    SpeedSource,
)
from lalo_bench.recommend.missing import diagnose
from lalo_bench.recommend.schema import (
    RECOMMENDATION_KIND,
    RECOMMENDATION_VERSION,
    DeploymentPlan,
    LatencyCheck,
    Missing,
    QualityCheck,
    Recommendation,
    RoutingChoice,
    Stack,
    TierVerdict,
    load_recommendation,
    write_recommendation,
)
from lalo_bench.recommend.search import search_tier, speed_on

__all__ = [
    "RECOMMENDATION_KIND", "RECOMMENDATION_VERSION", "DeploymentPlan", "Evidence", "LatencyCheck", "Missing",
    "QualityCheck", "QualityEvidence", "QualityIndex", "QualitySource", "Recommendation", "RoutedModel",
    "RoutingChoice", "RoutingEvidence", "Settings", "SpeedEvidence", "SpeedSource", "Stack", "TierVerdict",
    "build_stack", "candidate_tiers", "diagnose", "index_quality", "latency_checks", "load_recommendation",
    "meets_floor", "plan_caveats", "plan_projections", "project_for_profile", "projection_error", "recommend",
    "sampling_error", "search_tier", "speed_on", "usable", "write_recommendation",
]  # fmt: skip


# ---------------------------------------------------------------- entry point


def candidate_tiers(catalog: Catalog, profile: ClientProfile, settings: Settings) -> list[TierSpec]:
    """Tiers to choose from, cheapest to own first: the settings' list, else every tier with a price."""
    try:
        tiers = [catalog.tier(t) for t in settings.tiers] if settings.tiers is not None else catalog.tiers
    except KeyError as exc:
        raise LaloError(str(exc.args[0])) from None
    priced = [t for t in tiers if t.price_usd > 0 or settings.tiers is not None]
    return sorted(priced, key=lambda t: (ownership_usd(profile, t, settings.duty_cycle), t.id))


def _within_budget(profile: ClientProfile, tier: TierSpec, settings: Settings) -> str | None:
    b = profile.budget
    if b.hardware_usd is not None and tier.price_usd > b.hardware_usd:
        return f"over the hardware budget (${tier.price_usd:,.0f} > ${b.hardware_usd:,.0f})"
    if b.monthly_usd is not None:
        monthly = compare(profile, tier, settings.duty_cycle, prices={}).amortised_monthly_usd
        if monthly > b.monthly_usd:
            return f"over the monthly budget (${monthly:,.0f} > ${b.monthly_usd:,.0f})"
    return None


def _at_best_quality(
    profile: ClientProfile, catalog: Catalog, evidence: Evidence, quality: QualityIndex, settings: Settings
) -> Recommendation | None:
    """With each missed floor lowered to the best score there is: what would then be chosen (None: nothing).

    Tells a solution engineer whether hardware is also short, or only model quality.
    """
    best = {
        task: max((q.quality for q in quality.values() if q.suite == task), default=0.0)
        for task in profile.task_mix.active()
    }
    lower = {task: b for task, b in best.items() if profile.quality_floor.get(task) > b}
    lowered = [f"{task} {b:.2f}" for task, b in lower.items()]
    floors = profile.quality_floor.model_copy(update=lower)
    rec = recommend(profile.model_copy(update={"quality_floor": floors}), catalog, evidence, settings)
    if rec.choice is None:
        return None
    c = rec.choice
    served = ", ".join(f"{d.model}:{d.quant}@{d.backend}" for d in c.deployments)
    rec.missing = [
        Missing(
            need="quality_floor",
            detail=f"at the best quality measured ({', '.join(lowered)}) the cheapest stack would be tier {c.tier} "
            f"(${c.hardware_usd:,.0f}) with {served} at {c.utilisation:.0%} of capacity: model quality is what is "
            "missing, not hardware",
        )
    ]
    return rec


def recommend(
    profile: ClientProfile, catalog: Catalog, evidence: Evidence, settings: Settings | None = None
) -> Recommendation:
    """The cheapest tier and stack meeting every floor and objective at the profile's peak, or what is missing."""
    settings = settings or Settings()
    load = derive_load(profile)
    quality = index_quality(evidence.quality)
    tiers = candidate_tiers(catalog, profile, settings)
    verdicts: list[TierVerdict] = []
    eligible: list[Stack] = []
    over_budget: list[Stack] = []
    for tier in tiers:
        found = search_tier(tier, evidence, quality, profile, load, settings)
        budget = _within_budget(profile, tier, settings)
        reasons = list(dict.fromkeys(found.reasons)) if not found.candidates else []
        if found.candidates:
            stack = build_stack(found.candidates[0], tier, quality, profile, load, settings)
            (over_budget if budget else eligible).append(stack)
        if budget:
            reasons.append(budget)
        verdicts.append(
            TierVerdict(
                tier=tier.id,
                hardware_usd=tier.price_usd,
                ownership_usd=ownership_usd(profile, tier, settings.duty_cycle),
                feasible=bool(found.candidates),
                within_budget=budget is None,
                reasons=reasons,
            )
        )
    choice = eligible[0] if eligible else None
    cost = compare(profile, catalog.tier(choice.tier), settings.duty_cycle) if choice else None
    missing: list[Missing] = []
    at_best: Stack | None = None
    at_best_cost: CostComparison | None = None
    if choice is None:
        if over_budget:
            s = over_budget[0]
            missing.append(
                Missing(
                    need="budget",
                    detail=f"the cheapest tier that meets everything else is {s.tier} at ${s.hardware_usd:,.0f}; "
                    + (_within_budget(profile, catalog.tier(s.tier), settings) or ""),
                )
            )
        else:
            missing = diagnose(profile, load, evidence, quality, tiers, settings)
            if missing and all(m.need == "quality_floor" for m in missing):
                relaxed = _at_best_quality(profile, catalog, evidence, quality, settings)
                if relaxed is not None:
                    missing += relaxed.missing
                    at_best, at_best_cost = relaxed.choice, relaxed.cost
    caveats = [*(choice.caveats if choice else []), *plan_caveats(profile, load, evidence, choice, cost, verdicts)]
    if choice is not None and profile.privacy.cloud_fallback:
        caveats.append(
            "the profile allows a cloud fallback: requests the stack fails or cannot hold may leave the site; "
            "the cost series assume none do"
        )
    run_ids = list(dict.fromkeys(choice.run_ids if choice else []))
    return Recommendation(
        profile=profile.name,
        status="recommended" if choice else "nothing_fits",
        load=load,
        settings=settings,
        choice=choice,
        alternatives=eligible[1 : 1 + settings.alternatives],
        cost=cost,
        missing=missing,
        at_best_quality=at_best,
        at_best_quality_cost=at_best_cost,
        tiers=verdicts,
        caveats=caveats,
        run_ids=run_ids,
    )
