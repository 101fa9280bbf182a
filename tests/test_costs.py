"""Cloud vs local cost: the plan's prices, electricity, amortisation and break-even on hand-computed cases."""

from __future__ import annotations

import pytest

from lalo_bench.config import Catalog
from lalo_bench.costs import (
    CLOUD_PRICES,
    HOURS_PER_MONTH,
    break_even_exact,
    break_even_month,
    cloud_usd,
    compare,
    cost_series,
    electricity_monthly_usd,
    ownership_usd,
    plan_method_usd,
    series,
)
from lalo_bench.profiles import load_profile

GPT4, CLAUDE = CLOUD_PRICES["gpt-4"], CLOUD_PRICES["claude-3.5"]


def test_the_plans_prices() -> None:
    assert (GPT4.input_usd_per_mtok, GPT4.output_usd_per_mtok) == (30, 60)
    assert (CLAUDE.input_usd_per_mtok, CLAUDE.output_usd_per_mtok) == (3, 15)
    assert cloud_usd(GPT4, 1e6, 1e6) == 90
    assert cloud_usd(CLAUDE, 2e6, 0) == 6


def test_plan_method_reproduces_its_daily_figures() -> None:
    # "100M tokens/day = $9,000/day on GPT-4 = $1,800/day on Claude 3.5"
    assert plan_method_usd(GPT4, 100e6) == 9000
    assert plan_method_usd(CLAUDE, 100e6) == 1800
    # billed once per token at a 3:1 split the same volume costs far less
    assert cloud_usd(GPT4, 75e6, 25e6) == 3750
    assert cloud_usd(CLAUDE, 75e6, 25e6) == 600


def test_electricity_by_hand() -> None:
    assert HOURS_PER_MONTH == 730
    # 450 W around the clock at $0.15/kWh: 0.45 kW x 730 h x 0.15 = $49.275
    assert electricity_monthly_usd(450, 0.15, 1.0) == pytest.approx(49.275)
    assert electricity_monthly_usd(450, 0.15, 0.25) == pytest.approx(49.275 / 4)


def test_break_even_by_hand() -> None:
    # $2,000 of hardware, $49.275 a month to run, against a $500 cloud bill: 2000 / 450.725 = 4.44 months
    months = series(2000, 49.275, 500, 36)
    assert months[3].local_usd == pytest.approx(2197.1) and months[3].cloud_usd == 2000  # month 4: not yet
    assert months[4].local_usd == pytest.approx(2246.375) and months[4].cloud_usd == 2500  # month 5: paid off
    assert break_even_month(months) == 5
    assert break_even_exact(2000, 49.275, 500) == pytest.approx(4.4373, abs=1e-4)


def test_break_even_on_the_boundary_month_counts() -> None:
    assert break_even_month(series(1000, 0, 250, 36)) == 4


def test_never_when_the_cloud_is_cheaper_to_run() -> None:
    s = cost_series("x", 2000, 300, 250, 36)
    assert s.break_even_month is None
    assert s.break_even_months_exact is None


def test_never_within_the_amortisation_period() -> None:
    s = cost_series("x", 150_000, 0, 2000, 36)
    assert s.break_even_month is None
    assert s.break_even_months_exact == 75
    assert len(s.months) == 36


def test_compare_cloud_heavy_on_enterprise(catalog: Catalog) -> None:
    profile = load_profile("cloud-heavy", catalog)
    tier = catalog.tier("enterprise")
    c = compare(profile, tier)
    # 3e9 tokens a month at 750/250: 2.25e9 input, 0.75e9 output
    assert c.cloud("gpt-4").cloud_monthly_usd == pytest.approx(2250 * 30 + 750 * 60)
    assert c.cloud("claude-3.5").cloud_monthly_usd == pytest.approx(2250 * 3 + 750 * 15)
    duty = 8 * 30 / 730  # board power through the working hours only
    assert c.duty_cycle == pytest.approx(duty)
    power = 3.2 * 730 * duty * 0.15
    assert c.electricity_monthly_usd == pytest.approx(power)
    assert c.amortised_monthly_usd == pytest.approx(150_000 / 36 + power)
    gpt4 = c.cloud("gpt-4")
    assert gpt4.break_even_months_exact == pytest.approx(150_000 / (112_500 - power))
    assert gpt4.break_even_month == 2
    assert c.cloud("claude-3.5").break_even_month == 9


def test_ownership_is_hardware_plus_running(catalog: Catalog) -> None:
    profile = load_profile("small", catalog)
    tier = catalog.tier("small")
    c = compare(profile, tier, duty_cycle=1.0, other_monthly_usd=100)
    assert c.running_monthly_usd == pytest.approx(49.275 + 100)
    assert ownership_usd(profile, tier, duty_cycle=1.0) == pytest.approx(2000 + 36 * 49.275)
