"""What a profile's traffic costs in the cloud against owning a tier, month by month, and when owning pays off.

Assumptions, each stated once:

* **Cloud**: each token is billed once, input tokens at the input price and output tokens at the output price,
  per million tokens: GPT-4 $30 / $60, Claude 3.5 $3 / $15 (the plan's "Cost Comparison"); no caching, batch
  or volume discounts. The plan itself charges *every* token the sum of both prices ($90 per million on
  GPT-4, $18 on Claude 3.5); :func:`plan_method_usd` reproduces that arithmetic so a report can show the gap.
* **Volume**: the profile's requests per working day x working days per month
  (:func:`lalo_bench.profiles.derive_load`).
* **Hardware**: the catalog tier's ``price_usd`` (cards as the plan prices them; the host around them is not
  included unless the tier says so), paid in month 0 and amortised straight-line over
  :data:`AMORTISATION_MONTHS` (36) months: no residual value, no financing cost.
* **Electricity**: the tier's ``power_w`` (board power of its devices; host, cooling and PSU losses not counted)
  x :data:`HOURS_PER_MONTH` (730 = 8760 / 12) x a duty cycle x the profile's $/kWh. The default duty cycle is
  board power through the working hours and nothing outside them: working hours x working days / 730.
* **Other running costs** (staff, support, space): the plan's "Maintenance: $0 (self-hosted)" unless a caller
  passes ``other_monthly_usd``.
* **Break-even**: the first whole month m (1..36) with hardware + m x running <= m x cloud; ``None`` when that
  does not happen within the amortisation period (by then the hardware is due for replacement).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lalo_bench.config import TierSpec
from lalo_bench.profiles import ClientProfile, Load, derive_load

AMORTISATION_MONTHS = 36
HOURS_PER_MONTH = 8760 / 12
MTOK = 1e6
_TOLERANCE_USD = 1e-9


class CloudPrice(BaseModel):
    id: str
    name: str
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    source: str


PLAN_COST_SECTION = "plan: lalo-local-inference-strategy.md, 'Cost Comparison' / 'Cloud (Current - OpenAI/Anthropic)'"
CLOUD_PRICES: dict[str, CloudPrice] = {
    p.id: p
    for p in (
        CloudPrice(id="gpt-4", name="GPT-4", input_usd_per_mtok=30, output_usd_per_mtok=60, source=PLAN_COST_SECTION),
        CloudPrice(
            id="claude-3.5", name="Claude 3.5", input_usd_per_mtok=3, output_usd_per_mtok=15, source=PLAN_COST_SECTION
        ),
    )
}


def cloud_usd(price: CloudPrice, input_tokens: float, output_tokens: float) -> float:
    """What the tokens cost at ``price``, each token billed once at its own side's price."""
    return (input_tokens * price.input_usd_per_mtok + output_tokens * price.output_usd_per_mtok) / MTOK


def plan_method_usd(price: CloudPrice, tokens: float) -> float:
    """The plan's arithmetic: every token charged input + output price (how it reaches $9,000/day on GPT-4)."""
    return tokens * (price.input_usd_per_mtok + price.output_usd_per_mtok) / MTOK


def default_duty_cycle(load: Load) -> float:
    """Share of a month's hours at board power: the working hours, nothing outside them."""
    return min(1.0, load.working_hours_per_day * load.working_days_per_month / HOURS_PER_MONTH)


def electricity_monthly_usd(power_w: float, usd_per_kwh: float, duty_cycle: float) -> float:
    return power_w / 1000.0 * HOURS_PER_MONTH * duty_cycle * usd_per_kwh


class MonthCost(BaseModel):
    """Cumulative spend at the end of ``month``: the cloud bill against hardware + running costs."""

    month: int
    cloud_usd: float
    local_usd: float


class CostSeries(BaseModel):
    """One cloud price against the local tier over the horizon."""

    cloud: str
    cloud_monthly_usd: float
    months: list[MonthCost]
    break_even_month: int | None = Field(description="first month local's cumulative cost is at or below the cloud's")
    break_even_months_exact: float | None = Field(
        description="hardware / (cloud - running) per month; None when the cloud costs no more to run"
    )


def series(hardware_usd: float, running_monthly_usd: float, cloud_monthly_usd: float, horizon: int) -> list[MonthCost]:
    return [
        MonthCost(month=m, cloud_usd=m * cloud_monthly_usd, local_usd=hardware_usd + m * running_monthly_usd)
        for m in range(1, horizon + 1)
    ]


def break_even_month(months: list[MonthCost]) -> int | None:
    return next((p.month for p in months if p.local_usd <= p.cloud_usd + _TOLERANCE_USD), None)


def break_even_exact(hardware_usd: float, running_monthly_usd: float, cloud_monthly_usd: float) -> float | None:
    saving = cloud_monthly_usd - running_monthly_usd
    return hardware_usd / saving if saving > 0 else None


def cost_series(
    cloud: str, hardware_usd: float, running_monthly_usd: float, cloud_monthly_usd: float, horizon: int
) -> CostSeries:
    months = series(hardware_usd, running_monthly_usd, cloud_monthly_usd, horizon)
    return CostSeries(
        cloud=cloud,
        cloud_monthly_usd=cloud_monthly_usd,
        months=months,
        break_even_month=break_even_month(months),
        break_even_months_exact=break_even_exact(hardware_usd, running_monthly_usd, cloud_monthly_usd),
    )


class CostComparison(BaseModel):
    """A profile on one tier against each cloud price; every input that moved a number is kept beside it."""

    profile: str
    tier: str
    hardware_usd: float
    power_w: float
    duty_cycle: float
    usd_per_kwh: float
    electricity_monthly_usd: float
    other_monthly_usd: float
    running_monthly_usd: float = Field(description="electricity + other running costs")
    amortised_monthly_usd: float = Field(description="hardware / horizon + running")
    horizon_months: int
    input_tokens_per_month: float
    output_tokens_per_month: float
    clouds: list[CostSeries]

    def cloud(self, price_id: str) -> CostSeries:
        return next(c for c in self.clouds if c.cloud == price_id)


def compare(
    profile: ClientProfile,
    tier: TierSpec,
    duty_cycle: float | None = None,
    other_monthly_usd: float = 0.0,
    prices: dict[str, CloudPrice] | None = None,
    horizon: int = AMORTISATION_MONTHS,
) -> CostComparison:
    """Monthly series and break-even of ``profile`` on ``tier`` against every cloud price."""
    load = derive_load(profile)
    duty = default_duty_cycle(load) if duty_cycle is None else duty_cycle
    power = electricity_monthly_usd(tier.power_w, profile.electricity_usd_per_kwh, duty)
    running = power + other_monthly_usd
    return CostComparison(
        profile=profile.name,
        tier=tier.id,
        hardware_usd=tier.price_usd,
        power_w=tier.power_w,
        duty_cycle=duty,
        usd_per_kwh=profile.electricity_usd_per_kwh,
        electricity_monthly_usd=power,
        other_monthly_usd=other_monthly_usd,
        running_monthly_usd=running,
        amortised_monthly_usd=tier.price_usd / horizon + running,
        horizon_months=horizon,
        input_tokens_per_month=load.input_tokens_per_month,
        output_tokens_per_month=load.output_tokens_per_month,
        clouds=[
            cost_series(
                p.id,
                tier.price_usd,
                running,
                cloud_usd(p, load.input_tokens_per_month, load.output_tokens_per_month),
                horizon,
            )
            for p in (CLOUD_PRICES if prices is None else prices).values()
        ],
    )


def ownership_usd(profile: ClientProfile, tier: TierSpec, duty_cycle: float | None = None) -> float:
    """Hardware plus running costs over the amortisation period: what "cheapest tier" ranks by."""
    c = compare(profile, tier, duty_cycle=duty_cycle, prices={})
    return c.hardware_usd + c.horizon_months * c.running_monthly_usd
