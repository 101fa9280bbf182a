"""The chosen stack as reported: its checks and margins, and caveats for every projected number, every quality not
measured here and every plan claim the evidence contradicts."""

from __future__ import annotations

import math

from lalo_bench.config import TierSpec
from lalo_bench.costs import CLOUD_PRICES, CostComparison, cloud_usd, ownership_usd, plan_method_usd
from lalo_bench.profiles import ClientProfile, Load
from lalo_bench.recommend.blocks import Candidate, Deploy, QualityIndex
from lalo_bench.recommend.evidence import Z95, Evidence, Settings
from lalo_bench.recommend.schema import DeploymentPlan, QualityCheck, RoutingChoice, Stack, TierVerdict

# ---------------------------------------------------------------- caveats


def _speed_caveats(d: Deploy, tier: TierSpec, load_concurrency: float, profile: ClientProfile) -> list[str]:
    ev, out = d.ev, []
    if ev.source == "projected":
        if not ev.calibrated:
            basis = "uncalibrated efficiencies"
        elif ev.expected_error_pct is None:
            basis = "calibrated, error unknown"
        else:
            basis = f"calibrated, expected error ±{ev.expected_error_pct:.0f}%"
        out.append(
            f"{ev.name} on {tier.id}: speed and capacity are projected ({basis}), not measured; capacity derated "
            f"by {1 - d.effective / d.capacity:.0%}; latencies are point estimates, not p{profile.latency.percentile}"
        )
        err = 1 - d.effective / d.capacity
        tight = [c for c in d.latency if c.margin < err * c.objective]
        if tight:
            out.append(f"{ev.name} on {tier.id}: {tight[0].metric} margin is within the projection's expected error")
    if ev.decode_tok_s is not None and ev.users < load_concurrency:
        out.append(
            f"{ev.name} on {tier.id}: decode speed was taken at {ev.users} concurrent, the peak puts "
            f"{load_concurrency:.1f} on it; its ITL at peak will be higher"
        )
    return out


def sampling_error(quality: float, items: int) -> float:
    """Half-width of the 95% normal interval of a mean 0-1 score over ``items`` items."""
    return Z95 * math.sqrt(max(quality * (1 - quality), 1e-12) / items)


def _quality_caveats(checks: list[QualityCheck]) -> list[str]:
    out = []
    for c in checks:
        if c.quality is None:
            continue
        if c.source != "measured":
            how = "reported by its publisher" if c.source == "reported" else "projected"
            out.append(f"{c.task} quality of {c.served_by} is {how}, not measured here")
        if c.items and c.margin is not None and c.floor > 0:
            error = sampling_error(c.quality, c.items)
            if c.margin < error:
                out.append(
                    f"{c.task} quality of {c.served_by} ({c.quality:.2f}) is within the sampling error (±{error:.2f} "
                    f"on {c.items} items) of the floor {c.floor:g}"
                )
    return out


def _quality_checks(cand: Candidate, quality: QualityIndex, profile: ClientProfile) -> list[QualityCheck]:
    checks = []
    for task in profile.task_mix.active():
        floor = profile.quality_floor.get(task)
        if cand.routing is not None:
            value = cand.routing.quality_by_task.get(task, cand.routing.quality)
            checks.append(
                QualityCheck(
                    task=task,
                    share=profile.task_mix.get(task),
                    floor=floor,
                    quality=value,
                    margin=value - floor,
                    served_by=f"routing policy {cand.routing.policy}",
                    source="measured",
                    run_id=cand.routing.run_id,
                    items=cand.routing.requests,
                )
            )
            continue
        d = cand.routes[task]
        q = quality.get((d.ev.model, d.ev.quant, task))
        checks.append(
            QualityCheck(
                task=task,
                share=profile.task_mix.get(task),
                floor=floor,
                quality=q.quality if q else None,
                margin=(q.quality - floor) if q else None,
                served_by=d.name,
                source=q.source if q else None,
                run_id=q.run_id if q else None,
                items=q.items if q else None,
            )
        )
    return checks


def build_stack(
    cand: Candidate, tier: TierSpec, quality: QualityIndex, profile: ClientProfile, load: Load, settings: Settings
) -> Stack:
    deployments: list[DeploymentPlan] = []
    caveats: list[str] = []
    for d in cand.deploys:
        share = cand.shares.get(d.name, 0.0)
        conc = share * load.peak_concurrency
        deployments.append(
            DeploymentPlan(
                model=d.ev.model,
                quant=d.ev.quant,
                backend=d.ev.backend,
                tasks=[t for t, r in cand.routes.items() if r is d] if cand.routing is None else [],
                request_share=share,
                load_concurrency=conc,
                load_rps=share * load.peak_rps,
                capacity=d.capacity,
                capacity_unit=d.unit,
                effective_capacity=d.effective,
                utilisation=share * d.full_util,
                memory_required_gb=d.ev.memory_required_gb,
                speed_source=d.ev.source,
                expected_error_pct=d.ev.expected_error_pct,
                latency=list(d.latency),
                run_id=d.ev.run_id,
            )
        )
        caveats += _speed_caveats(d, tier, conc, profile)
    checks = _quality_checks(cand, quality, profile)
    caveats += _quality_caveats(checks)
    if cand.routing is not None and not cand.routing.quality_by_task:
        caveats.append(
            f"routed quality {cand.routing.quality:.2f} is the policy's mean over the suites it was calibrated on, "
            "checked against each task's floor; its per-task quality is unknown"
        )
    if len(cand.deploys) > 1:
        caveats.append(
            "several models share the tier: memory is their sum (each sized for the whole peak) and capacity is "
            "split in proportion to load — an approximation of co-located serving, not a measurement"
        )
    memory = sum(d.ev.memory_required_gb for d in cand.deploys)
    available = min(d.ev.memory_available_gb for d in cand.deploys)
    util = cand.stack_key[1]
    limit = 1.0 - settings.headroom
    run_ids = [r for r in [*(d.ev.run_id for d in cand.deploys), *(c.run_id for c in checks)] if r]
    if cand.routing is not None and cand.routing.run_id:
        run_ids.append(cand.routing.run_id)
    return Stack(
        tier=tier.id,
        tier_name=tier.name,
        hardware_usd=tier.price_usd,
        ownership_usd=ownership_usd(profile, tier, settings.duty_cycle),
        deployments=deployments,
        task_routes={t: d.name for t, d in cand.routes.items()} if cand.routing is None else {},
        routing=(
            RoutingChoice(
                policy=cand.routing.policy,
                run_id=cand.routing.run_id,
                thresholds=cand.routing.thresholds,
                shares=cand.shares,
                quality=cand.routing.quality,
            )
            if cand.routing is not None
            else None
        ),
        quality=checks,
        mix_quality=-cand.stack_key[2],
        memory_required_gb=memory,
        memory_available_gb=available,
        memory_margin_gb=available - memory,
        utilisation=util,
        utilisation_limit=limit,
        peak_growth=limit / util if util > 0 else None,
        measured=all(d.ev.source == "measured" for d in cand.deploys),
        run_ids=list(dict.fromkeys(run_ids)),
        caveats=caveats,
    )


def plan_caveats(
    profile: ClientProfile,
    load: Load,
    evidence: Evidence,
    choice: Stack | None,
    cost: CostComparison | None,
    verdicts: list[TierVerdict] | None = None,
) -> list[str]:
    """Where the plan's claims for this deployment disagree with the evidence.

    Its models are judged on its tiers only where the evidence holds them (:func:`plan_projections`).
    """
    plan = profile.plan
    if plan is None:
        return []
    out: list[str] = []
    tokens_per_day = load.requests_per_day * (
        profile.usage.input_tokens_per_query + profile.usage.output_tokens_per_query
    )
    for price_id, claimed in plan.cloud_usd_per_day.items():
        price = CLOUD_PRICES[price_id]
        day_in = load.requests_per_day * profile.usage.input_tokens_per_query
        day_out = load.requests_per_day * profile.usage.output_tokens_per_query
        actual = cloud_usd(price, day_in, day_out)
        if abs(actual - claimed) > 0.1 * claimed:
            why = ""
            if math.isclose(plan_method_usd(price, tokens_per_day), claimed, rel_tol=0.01):
                why = (
                    f": the plan charges every token input + output price "
                    f"(${price.input_usd_per_mtok + price.output_usd_per_mtok:g} per million)"
                )
            out.append(
                f"plan: {price.name} at ${claimed:,.0f}/day; at {profile.usage.input_tokens_per_query} input + "
                f"{profile.usage.output_tokens_per_query} output tokens per query it is ${actual:,.0f}/day{why}"
            )
    for model in plan.models:
        for tier in plan.tiers:
            found = [e for e in evidence.speed if e.model == model and e.tier == tier]
            if found and not any(e.fits for e in found):
                e = min(found, key=lambda e: e.memory_required_gb)
                out.append(
                    f"plan: {model} on {tier} does not fit ({e.memory_required_gb:.0f} GB needed at {e.quant} for "
                    f"{e.users} concurrent, {e.memory_available_gb:.0f} usable; {e.source})"
                )
    if choice is not None:
        if plan.tiers and choice.tier not in plan.tiers:
            why = [f"{v.tier}: {v.reasons[0]}" for v in verdicts or [] if v.tier in plan.tiers and v.reasons]
            because = f" ({'; '.join(why)})" if why else ""
            out.append(
                f"plan: puts this deployment on {', '.join(plan.tiers)}; the evidence picks {choice.tier}{because}"
            )
        if plan.hardware_usd is not None and not plan.hardware_usd[0] <= choice.hardware_usd <= plan.hardware_usd[1]:
            lo, hi = plan.hardware_usd
            out.append(
                f"plan: prices the hardware at ${lo:,.0f}-${hi:,.0f}; {choice.tier} costs ${choice.hardware_usd:,.0f}"
            )
    if cost is not None and plan.break_even_months is not None:
        lo, hi = plan.break_even_months
        for c in cost.clouds:
            month = c.break_even_month
            if month is None or not lo <= month <= hi:
                got = f"month {month}" if month is not None else f"not within {cost.horizon_months} months"
                out.append(
                    f"plan: break-even in {lo:g}-{hi:g} months; against {CLOUD_PRICES[c.cloud].name} it is {got}"
                )
    return out
