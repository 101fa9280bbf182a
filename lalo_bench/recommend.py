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

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from lalo_bench.config import Catalog, TierSpec, parse
from lalo_bench.costs import CLOUD_PRICES, CostComparison, cloud_usd, compare, ownership_usd, plan_method_usd
from lalo_bench.errors import ConfigError, LaloError
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.hardware.projection import Projection, project
from lalo_bench.profiles import ClientProfile, Load, Task, derive_load

if TYPE_CHECKING:
    from lalo_bench.routing.policy import RoutingPolicy

RECOMMENDATION_KIND = "lalo-bench/recommendation"
RECOMMENDATION_VERSION = 1

QualitySource = Literal["measured", "projected", "reported"]
SpeedSource = Literal["measured", "projected"]
_QUALITY_RANK: dict[str, int] = {"measured": 0, "projected": 1, "reported": 2}
Z95 = 1.96


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- evidence


class QualityEvidence(_Frozen):
    """Mean score of one model × quant on one suite; quality does not change with the hardware."""

    model: str
    quant: str
    suite: Task
    quality: float = Field(ge=0, le=1)
    source: QualitySource
    run_id: str | None = None
    items: int | None = Field(default=None, gt=0, description="items behind the mean, for its sampling error")
    note: str = ""


class SpeedEvidence(_Frozen):
    """One model × quant × backend on one tier: does it fit, how fast, how many users within the objectives."""

    tier: str
    model: str
    quant: str
    backend: str
    source: SpeedSource
    fits: bool
    memory_required_gb: float = Field(ge=0)
    memory_available_gb: float = Field(ge=0)
    users: int = Field(default=1, ge=1, description="concurrent requests the TTFT and decode speed were taken at")
    ttft_ms: float | None = Field(default=None, gt=0)
    decode_tok_s: float | None = Field(default=None, gt=0, description="per request at `users` concurrent")
    users_at_slo: int | None = Field(default=None, ge=0, description="concurrent requests within the objectives")
    max_rps_at_slo: float | None = Field(default=None, ge=0, description="a load test's highest rate within them")
    slo_ttft_ms: float | None = Field(default=None, gt=0, description="the objectives the capacity was found for")
    slo_itl_ms: float | None = Field(default=None, gt=0)
    expected_error_pct: float | None = Field(default=None, ge=0, description="a projection's expected |error|")
    calibrated: bool = Field(default=True, description="False: a projection from uncalibrated efficiencies")
    run_id: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.model}:{self.quant}@{self.backend}"

    @classmethod
    def from_projection(cls, p: Projection, run_id: str | None = None) -> SpeedEvidence:
        """A roofline projection as evidence; ``run_id`` is the calibration (or projected-cell) run behind it."""
        return cls(
            tier=p.tier,
            model=p.model,
            quant=p.quant,
            backend=p.backend,
            source="projected",
            fits=p.fits,
            memory_required_gb=p.memory_required_gb,
            memory_available_gb=p.memory_available_gb,
            users=p.users,
            ttft_ms=p.ttft_ms,
            decode_tok_s=p.decode_tok_s,
            users_at_slo=p.users_at_slo,
            slo_ttft_ms=p.slo_ttft_ms,
            slo_itl_ms=p.slo_itl_ms,
            expected_error_pct=p.expected_error_pct,
            calibrated=p.efficiency.calibrated,
            run_id=run_id,
            notes=list(p.notes),
        )


class RoutedModel(_Frozen):
    model: str
    quant: str
    backend: str
    share: float = Field(ge=0, le=1, description="expected share of requests")

    @property
    def name(self) -> str:
        return f"{self.model}:{self.quant}@{self.backend}"


class RoutingEvidence(_Frozen):
    """What a routing policy expects on its held-out split: which models, how often each, at what quality."""

    policy: str = Field(description="the policy file or label")
    run_id: str | None = None
    models: list[RoutedModel] = Field(min_length=2, description="ladder order, cheapest first")
    thresholds: list[float]
    quality: float = Field(ge=0, le=1)
    quality_by_task: dict[Task, float] = Field(default_factory=dict)
    requests: int | None = Field(default=None, gt=0)

    @classmethod
    def from_policy(cls, policy: RoutingPolicy, name: str) -> RoutingEvidence:
        """The policy's test-split expectation (train when it has no test point)."""
        points = sorted(policy.expected, key=lambda p: p.split != "test")
        if not points:
            raise LaloError(f"{name}: the routing policy holds no expected quality; calibrate it again")
        point = points[0]
        return cls(
            policy=name,
            run_id=policy.source.routing_run_id or policy.source.sweep_run_id,
            models=[
                RoutedModel(model=m.model, quant=m.quant, backend=m.backend, share=s)
                for m, s in zip(policy.models, point.shares, strict=True)
            ],
            thresholds=list(policy.thresholds.default),
            quality=point.quality,
            requests=point.requests,
        )


class Evidence(_Frozen):
    quality: list[QualityEvidence] = Field(default_factory=list)
    speed: list[SpeedEvidence] = Field(default_factory=list)
    routing: RoutingEvidence | None = None


class Settings(_Frozen):
    headroom: float = Field(default=0.2, ge=0, lt=1, description="share of capacity kept free at peak")
    default_projection_error: float = Field(
        default=0.3, ge=0, lt=1, description="capacity derating of a projection with no expected error"
    )
    tiers: list[str] | None = Field(default=None, description="candidate tiers; default: every priced tier")
    max_deployments: int = Field(default=4, ge=1)
    alternatives: int = Field(default=3, ge=0, description="next-cheapest feasible tiers to report")
    duty_cycle: float | None = Field(default=None, gt=0, le=1, description="default: costs.default_duty_cycle")


# ---------------------------------------------------------------- output schema


class QualityCheck(BaseModel):
    task: Task
    share: float
    floor: float
    quality: float | None = Field(description="None: no evidence, and the floor is 0")
    margin: float | None
    served_by: str
    source: QualitySource | None
    run_id: str | None
    items: int | None


class LatencyCheck(BaseModel):
    metric: Literal["ttft_ms", "itl_ms", "e2e_ms"]
    objective: float
    estimate: float
    margin: float = Field(description="objective - estimate")


class DeploymentPlan(BaseModel):
    model: str
    quant: str
    backend: str
    tasks: list[Task]
    request_share: float
    load_concurrency: float
    load_rps: float
    capacity: float = Field(description="users at the SLO (or requests/s when capacity_unit says so), as given")
    capacity_unit: Literal["users", "rps"]
    effective_capacity: float = Field(description="after derating a projection by its expected error")
    utilisation: float = Field(description="its load over its effective capacity")
    memory_required_gb: float
    speed_source: SpeedSource
    expected_error_pct: float | None
    latency: list[LatencyCheck]
    run_id: str | None


class RoutingChoice(BaseModel):
    policy: str
    run_id: str | None
    thresholds: list[float]
    shares: dict[str, float]
    quality: float


class Stack(BaseModel):
    tier: str
    tier_name: str
    hardware_usd: float
    ownership_usd: float = Field(description="hardware + running costs over the amortisation period")
    deployments: list[DeploymentPlan]
    task_routes: dict[str, str] = Field(description="task → deployment (model:quant@backend)")
    routing: RoutingChoice | None = None
    quality: list[QualityCheck]
    mix_quality: float = Field(description="task-mix-weighted quality (tasks without evidence count 0)")
    memory_required_gb: float
    memory_available_gb: float
    memory_margin_gb: float
    utilisation: float = Field(description="sum of the deployments' utilisations at peak")
    utilisation_limit: float
    peak_growth: float | None = Field(
        description="how many times the peak may grow before the utilisation limit (None: no load)"
    )
    measured: bool = Field(description="every speed number behind it was measured")
    run_ids: list[str]
    caveats: list[str]


NeedKind = Literal["quality_floor", "memory", "smaller_model", "throughput", "latency", "budget", "evidence"]


class Missing(BaseModel):
    need: NeedKind
    detail: str


class TierVerdict(BaseModel):
    tier: str
    hardware_usd: float
    ownership_usd: float
    feasible: bool
    within_budget: bool
    reasons: list[str] = Field(description="why no stack works here (empty when feasible)")


class Recommendation(BaseModel):
    """``recommendation.json``: versioned; a reader refuses another kind or version."""

    kind: Literal["lalo-bench/recommendation"] = RECOMMENDATION_KIND
    version: Literal[1] = RECOMMENDATION_VERSION
    profile: str
    status: Literal["recommended", "nothing_fits"]
    load: Load
    settings: Settings
    choice: Stack | None
    alternatives: list[Stack]
    cost: CostComparison | None = Field(description="the chosen tier against the cloud prices")
    missing: list[Missing]
    at_best_quality: Stack | None = Field(
        default=None,
        description="when only quality floors fail: the stack chosen with each missed floor lowered to the best "
        "score measured (it does NOT meet the profile; it shows whether hardware is short too)",
    )
    at_best_quality_cost: CostComparison | None = None
    tiers: list[TierVerdict]
    caveats: list[str]
    run_ids: list[str]


# ---------------------------------------------------------------- building blocks


@dataclass(frozen=True, eq=False)
class _Deploy:
    """A deployment usable on its tier; ``full_util`` = its utilisation if it carried the whole peak.

    Compared by identity: two stacks share a deployment only when they hold the same object.
    """

    ev: SpeedEvidence
    unit: Literal["users", "rps"]
    capacity: float
    effective: float
    full_util: float
    latency: tuple[LatencyCheck, ...]

    @property
    def name(self) -> str:
        return self.ev.name


@dataclass(frozen=True)
class _Candidate:
    stack_key: tuple[int, float, float]
    deploys: tuple[_Deploy, ...]
    routes: dict[Task, _Deploy]
    shares: dict[str, float]
    routing: RoutingEvidence | None


QualityIndex = dict[tuple[str, str, str], QualityEvidence]


def index_quality(evidence: Iterable[QualityEvidence]) -> QualityIndex:
    """Best evidence per model × quant × suite: measured over projected over reported, then the most items."""
    best: QualityIndex = {}
    for q in evidence:
        key = (q.model, q.quant, q.suite)
        held = best.get(key)
        rank = (_QUALITY_RANK[q.source], -(q.items or 0))
        if held is None or rank < (_QUALITY_RANK[held.source], -(held.items or 0)):
            best[key] = q
    return best


def meets_floor(quality: QualityIndex, model: str, quant: str, task: Task, floor: float) -> bool:
    q = quality.get((model, quant, task))
    return floor <= 0 or (q is not None and q.quality >= floor)


def latency_checks(ev: SpeedEvidence, profile: ClientProfile) -> list[LatencyCheck]:
    """TTFT, ITL and e2e estimates against the objectives, where the evidence has the numbers."""
    obj, out = profile.latency, profile.usage.output_tokens_per_query
    checks: list[LatencyCheck] = []
    if ev.ttft_ms is not None:
        checks.append(LatencyCheck(metric="ttft_ms", objective=obj.ttft_ms, estimate=ev.ttft_ms, margin=0))
    if ev.decode_tok_s is not None:
        itl = 1000.0 / ev.decode_tok_s
        checks.append(LatencyCheck(metric="itl_ms", objective=obj.itl_ms, estimate=itl, margin=0))
        if ev.ttft_ms is not None and obj.e2e_ms is not None:
            e2e = ev.ttft_ms + max(0, out - 1) * itl
            checks.append(LatencyCheck(metric="e2e_ms", objective=obj.e2e_ms, estimate=e2e, margin=0))
    return [c.model_copy(update={"margin": c.objective - c.estimate}) for c in checks]


def projection_error(ev: SpeedEvidence, settings: Settings) -> float:
    """Fraction a projected capacity is derated by; 0 for a measurement."""
    if ev.source == "measured":
        return 0.0
    if ev.expected_error_pct is not None and ev.calibrated:
        return min(0.95, ev.expected_error_pct / 100.0)
    return settings.default_projection_error


@dataclass(frozen=True)
class _Rejected:
    need: NeedKind
    reason: str


def usable(ev: SpeedEvidence, profile: ClientProfile, load: Load, settings: Settings) -> _Deploy | _Rejected:
    """The deployment with its capacity, or why it cannot serve this profile on its tier."""
    if not ev.fits:
        return _Rejected(
            "memory",
            f"{ev.name} does not fit ({ev.memory_required_gb:.1f} GB needed at {ev.users} concurrent, "
            f"{ev.memory_available_gb:.1f} usable)",
        )
    late = [c for c in latency_checks(ev, profile) if c.margin < 0]
    if late:
        c = late[0]
        return _Rejected("latency", f"{ev.name} misses {c.metric} ({c.estimate:.0f} > {c.objective:.0f})")
    if ev.max_rps_at_slo is None and ev.users_at_slo is None:
        return _Rejected("evidence", f"{ev.name}: no capacity figure (users or requests/s within the objectives)")
    obj = profile.latency
    if (ev.slo_ttft_ms or math.inf) > obj.ttft_ms or (ev.slo_itl_ms or math.inf) > obj.itl_ms:
        return _Rejected("evidence", f"{ev.name}: its capacity was found for looser (or unstated) objectives")
    if ev.max_rps_at_slo is not None:
        unit, capacity, need = "rps", ev.max_rps_at_slo, load.peak_rps
    else:
        unit, capacity, need = "users", float(ev.users_at_slo or 0), load.peak_concurrency
    if capacity <= 0:
        return _Rejected("latency", f"{ev.name} cannot meet the latency objectives even for one request")
    effective = capacity * (1.0 - projection_error(ev, settings))
    return _Deploy(ev, unit, capacity, effective, need / effective, tuple(latency_checks(ev, profile)))


def project_for_profile(
    catalog: Catalog,
    profile: ClientProfile,
    model_id: str,
    tier_id: str,
    quant: str | None = None,
    backend_id: str | None = None,
    calibration: Calibration | None = None,
) -> Projection:
    """Project a model on a tier at the profile's peak concurrency, prompt, context and objectives."""
    load = derive_load(profile)
    u = profile.usage
    return project(
        catalog,
        model_id,
        tier_id,
        quant=quant,
        backend_id=backend_id,
        users=max(1, math.ceil(load.peak_concurrency)),
        context_tokens=u.input_tokens_per_query + u.output_tokens_per_query,
        prompt_tokens=u.input_tokens_per_query,
        slo_ttft_ms=profile.latency.ttft_ms,
        slo_itl_ms=profile.latency.itl_ms,
        calibration=calibration,
    )


def plan_projections(
    catalog: Catalog, profile: ClientProfile, calibration: Calibration | None = None, run_id: str | None = None
) -> list[SpeedEvidence]:
    """The plan's models on the plan's tiers, sized for this profile at their usual quants.

    :func:`plan_caveats` holds the plan's deployment claims against these.
    """
    if profile.plan is None:
        return []
    return [
        SpeedEvidence.from_projection(project_for_profile(catalog, profile, m, t, calibration=calibration), run_id)
        for t in profile.plan.tiers
        for m in profile.plan.models
    ]


# ---------------------------------------------------------------- stacks on one tier


@dataclass
class _TierSearch:
    """Feasible stacks on one tier, and what stopped the others."""

    candidates: list[_Candidate]
    reasons: list[str]


def _shares(routes: dict[Task, _Deploy], profile: ClientProfile) -> dict[str, float]:
    shares: dict[str, float] = {}
    for task, d in routes.items():
        shares[d.name] = shares.get(d.name, 0.0) + profile.task_mix.get(task)
    return shares


def _fits_together(deploys: tuple[_Deploy, ...]) -> bool:
    if len(deploys) == 1:
        return True
    need = sum(d.ev.memory_required_gb for d in deploys)
    return need <= min(d.ev.memory_available_gb for d in deploys)


def _utilisation(deploys: Iterable[_Deploy], shares: dict[str, float]) -> float:
    return sum(shares.get(d.name, 0.0) * d.full_util for d in deploys)


def _mix_quality(routes: dict[Task, _Deploy], quality: QualityIndex, profile: ClientProfile) -> float:
    total = 0.0
    for task, d in routes.items():
        q = quality.get((d.ev.model, d.ev.quant, task))
        total += profile.task_mix.get(task) * (q.quality if q else 0.0)
    return total


def _undominated(deploys: list[_Deploy], quality: QualityIndex, floors: dict[Task, float]) -> list[_Deploy]:
    """Drop a deployment another beats on every count: tasks served, quality on each, load, memory.

    Such a deployment can never be in a preferred stack (swapping in the other is never worse), and dropping it
    keeps the search over combinations small.
    """

    def profile_of(d: _Deploy) -> tuple[tuple[float, ...], float, float]:
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
    deploys: list[_Deploy], quality: QualityIndex, profile: ClientProfile, settings: Settings, reasons: list[str]
) -> list[_Candidate]:
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
        found: list[_Candidate] = []
        for combo in itertools.combinations(capable, k):
            routes: dict[Task, _Deploy] = {}
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
            found.append(_Candidate(key, combo, routes, shares, None))
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
    by_name: dict[str, _Deploy],
    profile: ClientProfile,
    settings: Settings,
    reasons: list[str],
) -> _Candidate | None:
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
    return _Candidate((len(deploys), util, -routing.quality), deploys, routes, shares, routing)


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
) -> _TierSearch:
    reasons: list[str] = []
    deploys: list[_Deploy] = []
    for ev in speed_on(tier.id, evidence.speed):
        got = usable(ev, profile, load, settings)
        if isinstance(got, _Rejected):
            reasons.append(got.reason)
        else:
            deploys.append(got)
    if not deploys:
        reasons.append("no deployment with evidence can serve here" if reasons else "no speed evidence for this tier")
        return _TierSearch([], reasons)
    candidates = _task_stacks(deploys, quality, profile, settings, reasons)
    if evidence.routing is not None:
        routed = _routing_stack(evidence.routing, {d.name: d for d in deploys}, profile, settings, reasons)
        if routed is not None:
            candidates.append(routed)
    return _TierSearch(sorted(candidates, key=lambda c: c.stack_key), reasons)


# ---------------------------------------------------------------- caveats


def _speed_caveats(d: _Deploy, tier: TierSpec, load_concurrency: float, profile: ClientProfile) -> list[str]:
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


def _quality_checks(cand: _Candidate, quality: QualityIndex, profile: ClientProfile) -> list[QualityCheck]:
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
    cand: _Candidate, tier: TierSpec, quality: QualityIndex, profile: ClientProfile, load: Load, settings: Settings
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
            deploys = [d for e in runs if isinstance(d := usable(e, profile, load, settings), _Deploy)]
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
    rejected = [v for v in verdicts if isinstance(v, _Rejected)]
    if len(rejected) < len(verdicts):
        return []
    first = next((r for r in rejected if r.need == "latency"), rejected[0])
    fix = ": faster hardware or looser objectives" if first.need == "latency" else ""
    return [(first.need, first.reason + fix)]


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


# ---------------------------------------------------------------- files


def write_recommendation(rec: Recommendation, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rec.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_recommendation(path: str | Path) -> Recommendation:
    """Read ``recommendation.json``; another kind or version is refused with one line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "", "no such file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != RECOMMENDATION_KIND:
        raise ConfigError(str(p), "kind", f"not a recommendation (expected kind '{RECOMMENDATION_KIND}')")
    if data.get("version") != RECOMMENDATION_VERSION:
        raise ConfigError(
            str(p),
            "version",
            f"unsupported recommendation version {data.get('version')!r}; this lalo-bench reads "
            f"{RECOMMENDATION_VERSION}",
        )
    return parse(Recommendation, data, str(p))
