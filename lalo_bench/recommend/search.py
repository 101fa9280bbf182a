"""Stacks on one tier: every way to serve the task mix with 1 to 4 deployments or a routing ladder."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from lalo_bench.config import TierSpec
from lalo_bench.profiles import ClientProfile, Load, Task
from lalo_bench.recommend.blocks import Candidate, Deploy, QualityIndex, Rejected, meets_floor, usable
from lalo_bench.recommend.evidence import Evidence, RoutingEvidence, Settings, SpeedEvidence

# ---------------------------------------------------------------- stacks on one tier


@dataclass
class TierSearch:
    """Feasible stacks on one tier, and what stopped the others."""

    candidates: list[Candidate]
    reasons: list[str]


def _shares(routes: dict[Task, Deploy], profile: ClientProfile) -> dict[str, float]:
    shares: dict[str, float] = {}
    for task, d in routes.items():
        shares[d.name] = shares.get(d.name, 0.0) + profile.task_mix.get(task)
    return shares


def _fits_together(deploys: tuple[Deploy, ...]) -> bool:
    if len(deploys) == 1:
        return True
    need = sum(d.ev.memory_required_gb for d in deploys)
    return need <= min(d.ev.memory_available_gb for d in deploys)


def _utilisation(deploys: Iterable[Deploy], shares: dict[str, float]) -> float:
    return sum(shares.get(d.name, 0.0) * d.full_util for d in deploys)


def _mix_quality(routes: dict[Task, Deploy], quality: QualityIndex, profile: ClientProfile) -> float:
    total = 0.0
    for task, d in routes.items():
        q = quality.get((d.ev.model, d.ev.quant, task))
        total += profile.task_mix.get(task) * (q.quality if q else 0.0)
    return total


def _undominated(deploys: list[Deploy], quality: QualityIndex, floors: dict[Task, float]) -> list[Deploy]:
    """Drop a deployment another beats on every count: tasks served, quality on each, load, memory.

    Such a deployment can never be in a preferred stack (swapping in the other is never worse), and dropping it
    keeps the search over combinations small.
    """

    def profile_of(d: Deploy) -> tuple[tuple[float, ...], float, float]:
        scores = tuple(
            (q.quality if (q := quality.get((d.ev.model, d.ev.quant, t))) else 0.0)
            if meets_floor(quality, d.ev.model, d.ev.quant, t, f)
            else -1.0
            for t, f in floors.items()
        )
        return scores, d.full_util, d.ev.memory_required_gb

    profiles = [profile_of(d) for d in deploys]

    def beats(i: int, j: int) -> bool:
        (qi, ui, mi), (qj, uj, mj) = profiles[i], profiles[j]
        no_worse = all(a >= b for a, b in zip(qi, qj, strict=True)) and ui <= uj and mi <= mj
        return no_worse and (profiles[i] != profiles[j] or i < j)

    return [d for j, d in enumerate(deploys) if not any(beats(i, j) for i in range(len(deploys)) if i != j)]


def _task_stacks(
    deploys: list[Deploy], quality: QualityIndex, profile: ClientProfile, settings: Settings, reasons: list[str]
) -> list[Candidate]:
    """The feasible task-routed stacks with the fewest deployments (each task to its least-loaded capable one)."""
    tasks = profile.task_mix.active()
    floors = {t: profile.quality_floor.get(t) for t in tasks}
    capable = [d for d in deploys if any(meets_floor(quality, d.ev.model, d.ev.quant, t, floors[t]) for t in tasks)]
    capable = _undominated(capable, quality, floors)
    for t in tasks:
        if not any(meets_floor(quality, d.ev.model, d.ev.quant, t, floors[t]) for d in capable):
            reasons.append(f"no deployment that runs here reaches the {t} floor {floors[t]:g}")
            return []
    limit = 1.0 - settings.headroom
    best_over: tuple[float, str] | None = None
    memory_blocked = False
    for k in range(1, min(settings.max_deployments, len(capable)) + 1):
        found: list[Candidate] = []
        for combo in itertools.combinations(capable, k):
            routes: dict[Task, Deploy] = {}
            for t in tasks:
                able = [d for d in combo if meets_floor(quality, d.ev.model, d.ev.quant, t, floors[t])]
                if not able:
                    break
                routes[t] = min(able, key=lambda d: d.full_util)
            if len(routes) < len(tasks) or len({id(d) for d in routes.values()}) < k:
                continue  # a task no member serves, or a member with no task (a smaller stack covers it)
            if not _fits_together(combo):
                memory_blocked = True
                continue
            shares = _shares(routes, profile)
            util = _utilisation(combo, shares)
            if util > limit:
                label = " + ".join(d.name for d in combo)
                if best_over is None or util < best_over[0]:
                    best_over = (util, label)
                continue
            key = (k, util, -_mix_quality(routes, quality, profile))
            found.append(Candidate(key, combo, routes, shares, None))
        if found:
            return found
    if best_over is not None:
        reasons.append(
            f"not enough capacity: the best stack ({best_over[1]}) would run at {best_over[0]:.0%} of its capacity "
            f"at peak (limit {limit:.0%})"
        )
    if memory_blocked:
        reasons.append("the models that reach the floors do not fit in memory together")
    return []


def _routing_stack(
    routing: RoutingEvidence,
    by_name: dict[str, Deploy],
    profile: ClientProfile,
    settings: Settings,
    reasons: list[str],
) -> Candidate | None:
    """The routing policy's ladder on this tier, when every rung runs here and the routed quality holds."""
    missing = [m.name for m in routing.models if m.name not in by_name]
    if missing:
        reasons.append(f"routing ladder: {', '.join(missing)} cannot serve here")
        return None
    for task in profile.task_mix.active():
        floor = profile.quality_floor.get(task)
        got = routing.quality_by_task.get(task, routing.quality)
        if got < floor:
            reasons.append(f"routing ladder: routed {task} quality {got:.2f} is below the floor {floor:g}")
            return None
    deploys = tuple(by_name[m.name] for m in routing.models)
    if not _fits_together(deploys):
        reasons.append("routing ladder: its models do not fit in memory together")
        return None
    shares = {m.name: m.share for m in routing.models}
    util = _utilisation(deploys, shares)
    if util > 1.0 - settings.headroom:
        reasons.append(f"routing ladder: would run at {util:.0%} of its capacity at peak")
        return None
    strongest = deploys[-1]
    routes = dict.fromkeys(profile.task_mix.active(), strongest)
    return Candidate((len(deploys), util, -routing.quality), deploys, routes, shares, routing)


def speed_on(tier_id: str, speed: Iterable[SpeedEvidence]) -> list[SpeedEvidence]:
    """One piece of evidence per deployment on a tier: a measurement over a projection."""
    best: dict[str, SpeedEvidence] = {}
    for ev in speed:
        if ev.tier == tier_id and (
            ev.name not in best or (ev.source, best[ev.name].source) == ("measured", "projected")
        ):
            best[ev.name] = ev
    return list(best.values())


def search_tier(
    tier: TierSpec,
    evidence: Evidence,
    quality: QualityIndex,
    profile: ClientProfile,
    load: Load,
    settings: Settings,
) -> TierSearch:
    reasons: list[str] = []
    deploys: list[Deploy] = []
    for ev in speed_on(tier.id, evidence.speed):
        got = usable(ev, profile, load, settings)
        if isinstance(got, Rejected):
            reasons.append(got.reason)
        else:
            deploys.append(got)
    if not deploys:
        reasons.append("no deployment with evidence can serve here" if reasons else "no speed evidence for this tier")
        return TierSearch([], reasons)
    candidates = _task_stacks(deploys, quality, profile, settings, reasons)
    if evidence.routing is not None:
        routed = _routing_stack(evidence.routing, {d.name: d for d in deploys}, profile, settings, reasons)
        if routed is not None:
            candidates.append(routed)
    return TierSearch(sorted(candidates, key=lambda c: c.stack_key), reasons)
