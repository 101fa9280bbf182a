"""The building blocks: which deployment is usable on a tier, and at what share of its capacity."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from lalo_bench.config import Catalog
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.hardware.projection import Projection, project
from lalo_bench.profiles import ClientProfile, Load, Task, derive_load
from lalo_bench.recommend.evidence import QUALITY_RANK, QualityEvidence, RoutingEvidence, Settings, SpeedEvidence
from lalo_bench.recommend.schema import LatencyCheck, NeedKind

# ---------------------------------------------------------------- building blocks


@dataclass(frozen=True, eq=False)
class Deploy:
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
class Candidate:
    stack_key: tuple[int, float, float]
    deploys: tuple[Deploy, ...]
    routes: dict[Task, Deploy]
    shares: dict[str, float]
    routing: RoutingEvidence | None


QualityIndex = dict[tuple[str, str, str], QualityEvidence]


def index_quality(evidence: Iterable[QualityEvidence]) -> QualityIndex:
    """Best evidence per model × quant × suite: measured over projected over reported, then the most items."""
    best: QualityIndex = {}
    for q in evidence:
        key = (q.model, q.quant, q.suite)
        held = best.get(key)
        rank = (QUALITY_RANK[q.source], -(q.items or 0))
        if held is None or rank < (QUALITY_RANK[held.source], -(held.items or 0)):
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
class Rejected:
    need: NeedKind
    reason: str


def usable(ev: SpeedEvidence, profile: ClientProfile, load: Load, settings: Settings) -> Deploy | Rejected:
    """The deployment with its capacity, or why it cannot serve this profile on its tier."""
    if not ev.fits:
        return Rejected(
            "memory",
            f"{ev.name} does not fit ({ev.memory_required_gb:.1f} GB needed at {ev.users} concurrent, "
            f"{ev.memory_available_gb:.1f} usable)",
        )
    late = [c for c in latency_checks(ev, profile) if c.margin < 0]
    if late:
        c = late[0]
        return Rejected("latency", f"{ev.name} misses {c.metric} ({c.estimate:.0f} > {c.objective:.0f})")
    if ev.max_rps_at_slo is None and ev.users_at_slo is None:
        return Rejected("evidence", f"{ev.name}: no capacity figure (users or requests/s within the objectives)")
    obj = profile.latency
    if (ev.slo_ttft_ms or math.inf) > obj.ttft_ms or (ev.slo_itl_ms or math.inf) > obj.itl_ms:
        return Rejected("evidence", f"{ev.name}: its capacity was found for looser (or unstated) objectives")
    if ev.max_rps_at_slo is not None:
        unit, capacity, need = "rps", ev.max_rps_at_slo, load.peak_rps
    else:
        unit, capacity, need = "users", float(ev.users_at_slo or 0), load.peak_concurrency
    if capacity <= 0:
        return Rejected("latency", f"{ev.name} cannot meet the latency objectives even for one request")
    effective = capacity * (1.0 - projection_error(ev, settings))
    return Deploy(ev, unit, capacity, effective, need / effective, tuple(latency_checks(ev, profile)))


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
