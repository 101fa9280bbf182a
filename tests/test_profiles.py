"""Client profiles: the shipped ones validate and match the plan; bad YAML fails with one line; load on hand numbers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lalo_bench.config import Catalog
from lalo_bench.errors import ConfigError
from lalo_bench.profiles import derive_load, load_profile, max_request_s, profile_names, profile_path
from tests.conftest import HAND_PROFILE

GOOD = HAND_PROFILE


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def edited(**changes: Any) -> dict[str, Any]:
    """GOOD with dotted keys replaced, e.g. ``edited(**{"usage.employees": 0})``."""
    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


def error(tmp_path: Path, data: object, catalog: Catalog | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_profile(write(tmp_path, data), catalog)
    assert "\n" not in str(info.value)
    return info.value


def test_shipped_profiles_validate_against_the_catalog(catalog: Catalog) -> None:
    assert profile_names() == ["cloud-heavy", "enterprise", "medium", "small"]
    for name in profile_names():
        profile = load_profile(name, catalog)
        assert profile.name == name
        assert abs(sum(v for _, v in profile.task_mix.items()) - 1) < 1e-9


def test_shipped_profiles_sit_in_the_plans_size_bands(catalog: Catalog) -> None:
    assert load_profile("small", catalog).usage.employees < 100
    assert 100 <= load_profile("medium", catalog).usage.employees <= 1000
    assert load_profile("enterprise", catalog).usage.employees >= 1000


def test_cloud_heavy_is_the_plans_100m_tokens_a_day(catalog: Catalog) -> None:
    profile = load_profile("cloud-heavy", catalog)
    load = derive_load(profile)
    tokens = profile.usage.input_tokens_per_query + profile.usage.output_tokens_per_query
    assert load.requests_per_day == 1000 * 100
    assert load.requests_per_day * tokens == 100e6
    # the plan's month is 30 days ($9,000/day -> $270,000/month)
    assert load.input_tokens_per_month + load.output_tokens_per_month == pytest.approx(3e9)


def test_load_on_hand_numbers(tmp_path: Path) -> None:
    load = derive_load(load_profile(write(tmp_path, GOOD)))
    # 100 employees x 0.5 active x 20 queries = 1000 a day, over 8 h = 28,800 s, x 2 at peak
    assert load.active_users == 50
    assert load.requests_per_day == 1000
    assert load.mean_rps == pytest.approx(1000 / 28800)
    assert load.peak_rps == pytest.approx(2000 / 28800)
    assert load.peak_input_tok_s == pytest.approx(2000 / 28800 * 750)
    assert load.peak_output_tok_s == pytest.approx(2000 / 28800 * 250)
    # a request within the objectives lasts at most 2 s + 249 x 0.1 s = 26.9 s (under the 30 s e2e)
    assert load.max_request_s == pytest.approx(26.9)
    assert load.peak_concurrency == pytest.approx(2000 / 28800 * 26.9)
    assert load.rps_by_task == pytest.approx({k: 2000 / 28800 * v for k, v in GOOD["task_mix"].items()})
    assert load.input_tokens_per_month == pytest.approx(1000 * 21.7 * 750)


def test_e2e_objective_caps_the_request_time(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, edited(**{"latency.e2e_ms": 10000})))
    assert max_request_s(profile.latency, 250) == 10.0
    assert derive_load(profile).peak_concurrency == pytest.approx(2000 / 28800 * 10)


def test_mix_must_sum_to_one(tmp_path: Path) -> None:
    err = error(tmp_path, edited(**{"task_mix.reasoning": 0.2}))
    assert err.field == "task_mix"
    assert "sum to 0.9" in err.message


def test_typo_suggests_the_key(tmp_path: Path) -> None:
    err = error(tmp_path, edited(**{"usage.employes": 100}))
    assert err.field == "usage.employes"
    assert "did you mean 'employees'" in err.message


def test_peak_cannot_exceed_a_whole_day(tmp_path: Path) -> None:
    err = error(tmp_path, edited(**{"usage.peak_factor": 9}))
    assert err.field == "usage"
    assert "more than a whole day's queries" in err.message


def test_bad_values_name_their_field(tmp_path: Path) -> None:
    assert error(tmp_path, edited(**{"usage.active_share": 1.5})).field == "usage.active_share"
    assert error(tmp_path, edited(**{"quality_floor.reasoning": 2})).field == "quality_floor.reasoning"
    assert error(tmp_path, edited(**{"latency.percentile": 97})).field == "latency.percentile"
    assert "below ttft_ms" in error(tmp_path, edited(**{"latency.e2e_ms": 500})).message
    assert error(tmp_path, edited(**{"privacy": {}})).field == "privacy.cloud_fallback"
    plan = {"section": "s", "hardware_usd": [3000, 1500]}
    assert "not a range" in error(tmp_path, edited(plan=plan)).message


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    err = error(tmp_path, "name: x\nusage: [\n")
    assert "YAML syntax error" in err.message


def test_plan_references_are_checked(tmp_path: Path, catalog: Catalog) -> None:
    plan = {"section": "s", "tiers": ["smal"], "models": []}
    err = error(tmp_path, edited(plan=plan), catalog)
    assert err.field == "plan.tiers[0]"
    assert "did you mean 'small'" in err.message
    plan = {"section": "s", "cloud_usd_per_day": {"gpt4": 1}}
    err = error(tmp_path, edited(plan=plan), catalog)
    assert err.field == "plan.cloud_usd_per_day.gpt4"
    assert "did you mean 'gpt-4'" in err.message


def test_unknown_profile_name_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        profile_path("smal")
    assert "did you mean 'small'" in str(info.value)
