"""When nothing fits: what is missing (a stronger model, memory, throughput, latency, budget)."""

from __future__ import annotations

from lalo_bench.config import TierSpec
from lalo_bench.profiles import ClientProfile, Load, Task
from lalo_bench.recommend.blocks import Deploy, QualityIndex, Rejected, usable
from lalo_bench.recommend.evidence import Evidence, Settings, SpeedEvidence
from lalo_bench.recommend.schema import Missing, NeedKind

# ---------------------------------------------------------------- what is missing


def diagnose(
    profile: ClientProfile,
    load: Load,
    evidence: Evidence,
    quality: QualityIndex,
    tiers: list[TierSpec],
    settings: Settings,
) -> list[Missing]:
    """Why no tier works: per task, the first requirement nothing meets; then whether any tier could carry the peak.

    Quality floors come first (no hardware helps); then evidence, memory and latency per task, merged across
    tasks that fail for the same reason; then a bound on capacity: each task on the fastest deployment that
    reaches its floor, on any tier — if even that exceeds the utilisation limit, the peak is too large.
    """
    floors_missed: list[Missing] = []
    blocked: dict[tuple[NeedKind, str], list[Task]] = {}
    tier_ids = {t.id for t in tiers}
    speed = [e for e in evidence.speed if e.tier in tier_ids]
    limit = 1.0 - settings.headroom
    bound = 0.0
    for task in profile.task_mix.active():
        floor = profile.quality_floor.get(task)
        known = [q for q in quality.values() if q.suite == task]
        able = {(q.model, q.quant) for q in known if q.quality >= floor}
        if floor > 0 and not able:
            best = max(known, key=lambda q: q.quality, default=None)
            had = (
                f"the best is {best.model}:{best.quant} at {best.quality:.2f} ({best.source})" if best else "no scores"
            )
            floors_missed.append(
                Missing(
                    need="quality_floor",
                    detail=f"no model reaches the {task} floor {floor:g} ({had}): lower the floor or add a stronger "
                    "model",
                )
            )
            continue
        runs = [e for e in speed if floor <= 0 or (e.model, e.quant) in able]
        blockers = _task_blockers(runs, speed, profile, load, settings)
        for need, detail in blockers:
            blocked.setdefault((need, detail), []).append(task)
        if not blockers:
            deploys = [d for e in runs if isinstance(d := usable(e, profile, load, settings), Deploy)]
            bound += profile.task_mix.get(task) * min(d.full_util for d in deploys)
    if floors_missed:
        return floors_missed
    out = [Missing(need=need, detail=f"{', '.join(tasks)}: {detail}") for (need, detail), tasks in blocked.items()]
    if out:
        return out
    if bound > limit:
        overflow = (
            "; or send the overflow to the cloud (this profile allows a cloud fallback)"
            if profile.privacy.cloud_fallback
            else ""
        )
        return [
            Missing(
                need="throughput",
                detail=f"even the fastest deployments that reach the floors would run at {bound:.0%} of their capacity "
                f"at peak (limit {limit:.0%}): more devices or a faster tier, or looser latency objectives{overflow}",
            )
        ]
    return [
        Missing(
            need="throughput",
            detail="every task can be served, but no tier holds a stack for all of them at the peak (memory or "
            "capacity together): a larger tier, or fewer models",
        )
    ]


def _task_blockers(
    runs: list[SpeedEvidence], speed: list[SpeedEvidence], profile: ClientProfile, load: Load, settings: Settings
) -> list[tuple[NeedKind, str]]:
    """What stops every deployment that reaches a task's floor (no evidence, memory, latency); empty if none."""
    if not runs:
        return [("evidence", "no measurement or projection on a candidate tier of a model that reaches the floor")]
    fitting = [e for e in runs if e.fits]
    if not fitting:
        small = min(runs, key=lambda e: e.memory_required_gb)
        room = max(e.memory_available_gb for e in runs)
        others = sorted({e.name for e in speed if e.fits})
        tried = f"; of those that fit ({', '.join(others[:4])}), none does" if others else ""
        return [
            (
                "memory",
                f"the smallest model that reaches the floor, {small.name}, needs {small.memory_required_gb:.0f} GB "
                f"at {small.users} concurrent; "
                f"the most any candidate tier offers it is {room:.0f} GB",
            ),
            ("smaller_model", f"a smaller model or lower-bit quant that reaches the floor{tried}"),
        ]
    verdicts = [usable(e, profile, load, settings) for e in fitting]
    rejected = [v for v in verdicts if isinstance(v, Rejected)]
    if len(rejected) < len(verdicts):
        return []
    first = next((r for r in rejected if r.need == "latency"), rejected[0])
    fix = ": faster hardware or looser objectives" if first.need == "latency" else ""
    return [(first.need, first.reason + fix)]
