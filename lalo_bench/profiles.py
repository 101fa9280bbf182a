"""Client profiles: who uses the install, how much, how fast it must answer and how well — and the peak load.

A profile is YAML validated like every config (:mod:`lalo_bench.config`): unknown keys, shares that do not sum
to 1 or a peak that does not fit in a day fail with one line, ``file:field: what is wrong``. Four profiles ship
as package data (``lalo_bench/profiles/*.yaml``): the plan's three deployments and its cloud usage example.

Load derivation (:func:`derive_load`), stated once:

* every query is asked within the working day, ``usage.working_hours_per_day`` hours (8 unless a profile says
  otherwise), on ``usage.working_days_per_month`` days (21.7 = 5 days x 52.14 weeks / 12 unless said otherwise);
* mean rate = employees x active share x queries per user per day / (working hours x 3600);
* peak rate = mean rate x peak factor (the busiest hour carries ``peak_factor`` times the mean hour's requests);
* peak concurrency (Little's law) = peak rate x the longest a request may last while meeting the latency
  objectives, min(TTFT + (output tokens - 1) x ITL, e2e). A stack that carries this many concurrent requests
  within the objectives serves every request within that time, so the bound is self-consistent, if cautious.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field, model_validator

from lalo_bench import datafiles
from lalo_bench.config import Catalog, PosFloat, PosInt, Strict, _read_yaml, _suggest, parse
from lalo_bench.errors import ConfigError

Task = Literal["tool_calls", "extraction", "reasoning", "puzzles"]
"""The task kinds of a profile's mix; the same ids as the suites that measure them."""
TASKS: tuple[Task, ...] = get_args(Task)

Share = Annotated[float, Field(ge=0, le=1)]
DEFAULT_WORKING_HOURS = 8.0
DEFAULT_WORKING_DAYS_PER_MONTH = 21.7
MIX_TOLERANCE = 1e-6


class Usage(Strict):
    """Who asks and how much; the plan gives these for its cloud example only (the profiles say where)."""

    employees: PosInt
    active_share: Annotated[float, Field(gt=0, le=1, description="share of employees who use it on a working day")]
    queries_per_user_per_day: PosFloat
    input_tokens_per_query: PosInt
    output_tokens_per_query: PosInt
    peak_factor: Annotated[float, Field(ge=1, description="busiest hour's requests / the mean working hour's")]
    working_hours_per_day: Annotated[float, Field(gt=0, le=24)] = DEFAULT_WORKING_HOURS
    working_days_per_month: Annotated[float, Field(gt=0, le=31)] = DEFAULT_WORKING_DAYS_PER_MONTH

    @model_validator(mode="after")
    def _peak_within_a_day(self) -> Usage:
        # the busiest hour cannot hold more than the whole day's queries
        if self.peak_factor > self.working_hours_per_day:
            raise ValueError(
                f"peak_factor {self.peak_factor:g} puts more than a whole day's queries into one hour "
                f"(at most {self.working_hours_per_day:g} with {self.working_hours_per_day:g} working hours)"
            )
        return self


class TaskShares(Strict):
    """One share per task; a mix sums to 1, a floor is a mean suite score in [0, 1] (0: no floor)."""

    tool_calls: Share = 0.0
    extraction: Share = 0.0
    reasoning: Share = 0.0
    puzzles: Share = 0.0

    def get(self, task: Task) -> float:
        return float(getattr(self, task))

    def items(self) -> list[tuple[Task, float]]:
        return [(t, self.get(t)) for t in TASKS]


class TaskMix(TaskShares):
    @model_validator(mode="after")
    def _sums_to_one(self) -> TaskMix:
        total = sum(v for _, v in self.items())
        if abs(total - 1.0) > MIX_TOLERANCE:
            raise ValueError(f"shares sum to {total:g}, must sum to 1")
        return self

    def active(self) -> list[Task]:
        """Tasks with a share of the traffic."""
        return [t for t, v in self.items() if v > 0]


class LatencyObjectives(Strict):
    """Per-request objectives, met by ``percentile`` % of requests at peak load."""

    percentile: Literal[50, 90, 95, 99] = 95
    ttft_ms: PosFloat
    itl_ms: PosFloat = Field(description="mean inter-token latency of a request (its TPOT, first token excluded)")
    e2e_ms: PosFloat | None = None

    @model_validator(mode="after")
    def _e2e_after_ttft(self) -> LatencyObjectives:
        if self.e2e_ms is not None and self.e2e_ms < self.ttft_ms:
            raise ValueError(f"e2e_ms ({self.e2e_ms:g}) is below ttft_ms ({self.ttft_ms:g})")
        return self


class Budget(Strict):
    hardware_usd: PosFloat | None = Field(default=None, description="one-time hardware spend; None: no limit")
    monthly_usd: PosFloat | None = Field(default=None, description="amortised hardware + running; None: no limit")


class Privacy(Strict):
    cloud_fallback: bool = Field(description="may a request leave the site when the local stack fails or is full")


class PlanClaims(Strict):
    """What the plan said about this deployment, so the recommendation can say where the evidence disagrees."""

    section: str = Field(description="where in the plan these come from")
    tiers: list[str] = Field(default_factory=list, description="catalog tiers matching the plan's hardware")
    models: list[str] = Field(default_factory=list, description="catalog models the plan puts on it")
    hardware_usd: tuple[float, float] | None = None
    break_even_months: tuple[float, float] | None = None
    cloud_usd_per_day: dict[str, float] = Field(default_factory=dict, description="cloud price id → $/day claimed")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> PlanClaims:
        for name in ("hardware_usd", "break_even_months"):
            span = getattr(self, name)
            if span is not None and span[0] > span[1]:
                raise ValueError(f"{name}: [{span[0]:g}, {span[1]:g}] is not a range (low first)")
        return self


class ClientProfile(Strict):
    """One client: traffic, task mix, objectives, floors and constraints; plus what the plan said, if it did."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    description: str = ""
    usage: Usage
    task_mix: TaskMix
    latency: LatencyObjectives
    quality_floor: TaskShares
    budget: Budget = Budget()
    electricity_usd_per_kwh: Annotated[float, Field(gt=0, le=5)]
    privacy: Privacy
    plan: PlanClaims | None = None


# ---------------------------------------------------------------- load


class Load(BaseModel):
    """The profile's traffic: daily and monthly volumes, and the peak the stack must carry."""

    active_users: float
    requests_per_day: float
    mean_rps: float = Field(description="requests/s averaged over the working hours")
    peak_rps: float
    peak_input_tok_s: float
    peak_output_tok_s: float
    max_request_s: float = Field(description="longest a request lasts while meeting the latency objectives")
    peak_concurrency: float = Field(description="peak_rps x max_request_s (Little's law)")
    rps_by_task: dict[str, float] = Field(description="peak requests/s per task with a share")
    input_tokens_per_month: float
    output_tokens_per_month: float
    working_hours_per_day: float
    working_days_per_month: float


def max_request_s(latency: LatencyObjectives, output_tokens: int) -> float:
    """Longest a request may last and still meet every objective: TTFT + (n - 1) x ITL, capped by e2e."""
    longest = latency.ttft_ms + max(0, output_tokens - 1) * latency.itl_ms
    if latency.e2e_ms is not None:
        longest = min(longest, latency.e2e_ms)
    return longest / 1000.0


def derive_load(profile: ClientProfile) -> Load:
    """Requests/s and tokens/s at peak, and monthly token volumes (assumptions in the module docstring)."""
    u = profile.usage
    active = u.employees * u.active_share
    per_day = active * u.queries_per_user_per_day
    mean = per_day / (u.working_hours_per_day * 3600.0)
    peak = mean * u.peak_factor
    longest = max_request_s(profile.latency, u.output_tokens_per_query)
    return Load(
        active_users=active,
        requests_per_day=per_day,
        mean_rps=mean,
        peak_rps=peak,
        peak_input_tok_s=peak * u.input_tokens_per_query,
        peak_output_tok_s=peak * u.output_tokens_per_query,
        max_request_s=longest,
        peak_concurrency=peak * longest,
        rps_by_task={t: peak * share for t, share in profile.task_mix.items() if share > 0},
        input_tokens_per_month=per_day * u.working_days_per_month * u.input_tokens_per_query,
        output_tokens_per_month=per_day * u.working_days_per_month * u.output_tokens_per_query,
        working_hours_per_day=u.working_hours_per_day,
        working_days_per_month=u.working_days_per_month,
    )


# ---------------------------------------------------------------- loading


def profile_names() -> list[str]:
    """The profiles shipped with the package."""
    return sorted(p.stem for p in datafiles.profiles_dir().glob("*.yaml"))


def profile_path(name_or_path: str | Path) -> Path:
    """A shipped profile by name (``small``), else a path to a YAML file."""
    text = str(name_or_path)
    if text in profile_names():
        return datafiles.profiles_dir() / f"{text}.yaml"
    path = Path(text)
    if not path.suffix and not path.exists():
        raise ConfigError(text, "", f"no such profile ({_suggest(text, profile_names())})")
    return path


def load_profile(name_or_path: str | Path, catalog: Catalog | None = None) -> ClientProfile:
    """Load and validate a profile; with a catalog, also check that its plan's tiers and models exist."""
    path = profile_path(name_or_path)
    profile = parse(ClientProfile, _read_yaml(path), str(path))
    if catalog is not None:
        check_profile(profile, catalog, str(path))
    return profile


def check_profile(profile: ClientProfile, catalog: Catalog, file: str) -> None:
    """Every tier, model and cloud price the profile's plan block names must exist."""
    from lalo_bench.costs import CLOUD_PRICES  # costs reads profiles; imported here to keep the graph acyclic

    if profile.plan is None:
        return
    tiers, models = [t.id for t in catalog.tiers], [m.id for m in catalog.models]
    for i, tier in enumerate(profile.plan.tiers):
        if tier not in tiers:
            raise ConfigError(file, f"plan.tiers[{i}]", f"unknown tier '{tier}' ({_suggest(tier, tiers)})")
    for i, model in enumerate(profile.plan.models):
        if model not in models:
            raise ConfigError(file, f"plan.models[{i}]", f"unknown model '{model}' ({_suggest(model, models)})")
    for price in profile.plan.cloud_usd_per_day:
        if price not in CLOUD_PRICES:
            raise ConfigError(
                file,
                f"plan.cloud_usd_per_day.{price}",
                f"unknown cloud price '{price}' ({_suggest(price, CLOUD_PRICES)})",
            )
