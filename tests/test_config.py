"""Malformed or inconsistent config files fail with one line: ``file:field: what is wrong``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lalo_bench.config import Catalog, check_sweep, default_catalog_path, load_catalog, load_sweep
from lalo_bench.errors import ConfigError
from lalo_bench.suites import suite_ids
from tests.conftest import run_cli

GOOD_SWEEP = {
    "name": "t",
    "tier": "cpu-local",
    "models": [{"model": "smollm2-135m-instruct", "quants": ["q4_1", "q8_0"]}],
    "backends": ["llamacpp"],
    "suites": [{"suite": "extraction", "limit": 3}],
}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def catalog_with(tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    data = yaml.safe_load(default_catalog_path().read_text())
    edit(data)
    return write(tmp_path, "catalog.yaml", data)


def sweep_error(tmp_path: Path, catalog: Catalog, **changes: object) -> ConfigError:
    path = write(tmp_path, "sweep.yaml", {**GOOD_SWEEP, **changes})
    with pytest.raises(ConfigError) as info:
        load_sweep(path, catalog, suite_ids())
    return info.value


def test_good_sweep_loads(tmp_path: Path, catalog: Catalog) -> None:
    spec = load_sweep(write(tmp_path, "s.yaml", GOOD_SWEEP), catalog, suite_ids())
    assert spec.models[0].quants == ["q4_1", "q8_0"]
    assert spec.generation.max_tokens == 256


def test_unknown_model_id(tmp_path: Path, catalog: Catalog) -> None:
    err = sweep_error(tmp_path, catalog, models=[{"model": "smollm2-135m-instrct"}])
    assert err.field == "models[0].model"
    assert "unknown model 'smollm2-135m-instrct'" in err.message
    assert "did you mean 'smollm2-135m-instruct'" in err.message


def test_quant_the_model_lacks(tmp_path: Path, catalog: Catalog) -> None:
    err = sweep_error(tmp_path, catalog, models=[{"model": "smollm2-135m-instruct", "quants": ["fp8"]}])
    assert err.field == "models[smollm2-135m-instruct].quants[0]"
    assert "has no quant 'fp8'" in err.message


def test_typo_key_in_sweep(tmp_path: Path, catalog: Catalog) -> None:
    err = sweep_error(tmp_path, catalog, generation={"max_token": 10})
    assert err.field == "generation.max_token"
    assert "unknown key 'max_token'" in err.message and "did you mean 'max_tokens'" in err.message


def test_unknown_tier_backend_and_suite(tmp_path: Path, catalog: Catalog) -> None:
    assert sweep_error(tmp_path, catalog, tier="gpu-huge").field == "tier"
    assert sweep_error(tmp_path, catalog, backends=["llama"]).field == "backends[0]"
    assert sweep_error(tmp_path, catalog, suites=[{"suite": "extract"}]).field == "suites[0].suite"


def test_backend_that_cannot_load_the_format(tmp_path: Path, catalog: Catalog) -> None:
    err = sweep_error(tmp_path, catalog, backends=["hrm"])
    assert "cannot load gguf" in err.message


def test_negative_memory_in_catalog(tmp_path: Path) -> None:
    path = catalog_with(tmp_path, lambda d: d["tiers"][1].update(device_memory_gb=-16))
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert info.value.field == "tiers[minimal].device_memory_gb"
    assert "greater than 0" in info.value.message


def test_typo_key_in_catalog_model(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        arch = d["models"][0]["arch"]
        arch["kv_head"] = arch.pop("kv_heads")

    with pytest.raises(ConfigError) as info:
        load_catalog(catalog_with(tmp_path, edit))
    first_id = yaml.safe_load(default_catalog_path().read_text())["models"][0]["id"]
    assert info.value.field.startswith(f"models[{first_id}].arch")
    assert "kv_head" in str(info.value)


def test_inconsistent_catalog_quant(tmp_path: Path) -> None:
    path = catalog_with(tmp_path, lambda d: d["models"][0].update(default_quant="q9_9"))
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert "default_quant 'q9_9'" in info.value.message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "name: t\nmodels: [\n  - oops\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert "YAML syntax error" in info.value.message
    assert info.value.field.startswith("line ")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_catalog(Path("/nonexistent/catalog.yaml"))


def test_check_sweep_accepts_default_quant(catalog: Catalog) -> None:
    from lalo_bench.config import SweepSpec

    spec = SweepSpec.model_validate({**GOOD_SWEEP, "models": [{"model": "qwen2.5-coder-0.5b-instruct"}]})
    check_sweep(spec, catalog, suite_ids(), file="x.yaml")


@pytest.mark.parametrize(
    ("command", "payload", "expected_prefix"),
    [
        (["catalog", "check"], "catalog", "catalog.yaml:tiers[minimal].device_memory_gb:"),
        (["sweep", "--config"], "sweep", "sweep.yaml:models[0].model:"),
    ],
)
def test_cli_prints_one_line_and_exits_nonzero(
    tmp_path: Path, command: list[str], payload: str, expected_prefix: str
) -> None:
    if payload == "catalog":
        path = catalog_with(tmp_path, lambda d: d["tiers"][1].update(device_memory_gb=-16))
    else:
        path = write(tmp_path, "sweep.yaml", {**GOOD_SWEEP, "models": [{"model": "nope"}]})
    proc = run_cli(*command, str(path), env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("error: ") and expected_prefix in lines[0]
