"""Evidence in, typed: quality of a model × quant on a task, speed of a deployment on a tier, a routing ladder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from lalo_bench.errors import LaloError
from lalo_bench.hardware.projection import Projection
from lalo_bench.profiles import Task

if TYPE_CHECKING:
    from lalo_bench.routing.policy import RoutingPolicy


QualitySource = Literal["measured", "projected", "reported"]
SpeedSource = Literal["measured", "projected"]
QUALITY_RANK: dict[str, int] = {"measured": 0, "projected": 1, "reported": 2}
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
