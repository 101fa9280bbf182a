"""``recommendation.json``: the output schema (versioned) and reading and writing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from lalo_bench.config import parse
from lalo_bench.costs import CostComparison
from lalo_bench.errors import ConfigError
from lalo_bench.profiles import Load, Task
from lalo_bench.recommend.evidence import QualitySource, Settings, SpeedSource

# ---------------------------------------------------------------- output schema


RECOMMENDATION_KIND = "lalo-bench/recommendation"
RECOMMENDATION_VERSION = 1


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
