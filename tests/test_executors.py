"""The parts of the Ray executor that need no cluster: tier specs, resources, placement, joining, refusals."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from lalo_bench.cluster import plan_worker
from lalo_bench.config import Catalog, load_sweep
from lalo_bench.errors import ConfigError, LaloError
from lalo_bench.executors import get_executor
from lalo_bench.executors.base import NODE_NAME_ENV, NODE_TIER_ENV
from lalo_bench.executors.ray import CellResources, cell_resources, cluster_summary, tier_resource, unplaceable
from lalo_bench.results import Cell
from lalo_bench.serving.process import free_port
from lalo_bench.suites import suite_ids
from lalo_bench.sweep import expand, run_sweep, sweep_key
from lalo_bench.tracking import Tracker
from tests.conftest import run_cli

SMOL = "smollm2-135m-instruct"
TWO_TIERS = {
    "name": "t",
    "tiers": ["cpu-local", "h100"],
    "models": [{"model": SMOL, "quants": ["q4_1"]}, {"model": "qwen2.5-coder-1.5b-instruct", "tiers": ["h100"]}],
    "suites": [{"suite": "puzzles", "limit": 2}, {"suite": "extraction", "limit": 2}],
    "oracles": ["solver"],
}


def _load(tmp_path: Path, catalog: Catalog, data: dict) -> object:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_sweep(path, catalog, suite_ids())


# ---------------------------------------------------------------- the spec


def test_a_sweep_over_tiers_expands_per_tier(tmp_path: Path, catalog: Catalog) -> None:
    spec = _load(tmp_path, catalog, TWO_TIERS)
    cells = expand(spec, catalog)
    measured = [c for c in cells if c.backend == "llamacpp"]
    # smol on both tiers, the 1.5B only where its entry allows it; 2 suites each
    assert sorted((c.tier, c.model) for c in measured) == sorted(
        [("cpu-local", SMOL)] * 2 + [("h100", SMOL)] * 2 + [("h100", "qwen2.5-coder-1.5b-instruct")] * 2
    )
    oracle = [c for c in cells if c.backend == "solver"]
    assert [c.tier for c in oracle] == ["cpu-local"], "an oracle answers the same anywhere: once, on the first tier"
    assert len({c.key for c in cells}) == len(cells), "the tier is part of a cell's identity"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tier": "cpu-local"}, "", "not both"),
        ({"tiers": ["cpu-local", "h1000"]}, "tiers[1]", "unknown tier 'h1000'"),
        ({"tiers": ["h100", "h100"]}, "", "twice"),
        ({"models": [{"model": SMOL, "tiers": ["h200"]}]}, f"models[{SMOL}].tiers[0]", "not one of the sweep's"),
    ],
)
def test_bad_tier_specs_are_one_line(tmp_path: Path, catalog: Catalog, change: dict, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, catalog, {**TWO_TIERS, **change})
    assert info.value.field.startswith(field) and message in str(info.value) and "\n" not in str(info.value)


def test_the_sweep_key_of_a_one_tier_spec_is_what_it_was(catalog: Catalog) -> None:
    """Sweeps logged before 'tiers' existed must still resume: unset new fields stay out of the hash."""
    spec = load_sweep(Path("examples/demo.yaml"), catalog, suite_ids())
    before = json.loads(spec.model_dump_json())
    del before["tiers"]
    for model in before["models"]:
        del model["tiers"]
    legacy = hashlib.sha256(json.dumps(before, separators=(",", ":")).encode()).hexdigest()[:16]
    assert sweep_key(spec) == legacy
    assert sweep_key(spec.model_copy(update={"tiers": ["cpu-local", "h100"]})) != legacy


# ---------------------------------------------------------------- resources and placement


def _cell(model: str, quant: str, tier: str, backend: str = "llamacpp") -> Cell:
    return Cell(model=model, quant=quant, backend=backend, suite="extraction", tier=tier, limit=2)


def test_cell_resources_follow_the_memory_model(catalog: Catalog) -> None:
    from lalo_bench.config import GenerationSettings
    from lalo_bench.hardware.memory import estimate

    gen = GenerationSettings(n_ctx=2048)
    cpu = cell_resources(catalog, _cell(SMOL, "q4_1", "cpu-local"), gen)
    need = estimate(catalog, SMOL, "q4_1", "llamacpp", "cpu-local", context_tokens=2048).required_gb
    assert (cpu.num_gpus, cpu.memory_bytes) == (0, int(need * 1e9))
    assert cpu.ray_options()["resources"] == {"tier:cpu-local": 1}
    # a model spread over GPUs asks for as many as its fit uses: Hermes-4-405B FP8 over the A100s of enterprise
    fit = estimate(catalog, "hermes-4-405b", "fp8", "vllm", "enterprise", context_tokens=2048)
    big = cell_resources(catalog, _cell("hermes-4-405b", "fp8", "enterprise", "vllm"), gen)
    assert fit.fits and big.num_gpus == fit.devices_used >= 2 and big.memory_bytes == 0
    oracle = cell_resources(catalog, _cell("solver", "exact", "cpu-local", "solver"), gen)
    assert (oracle.num_gpus, oracle.memory_bytes) == (0, 0)


def test_a_cell_that_cannot_fit_its_tier_is_refused_in_one_line(catalog: Catalog) -> None:
    from lalo_bench.config import GenerationSettings

    with pytest.raises(LaloError) as info:
        cell_resources(catalog, _cell("deepseek-v3", "q4_k_m", "minimal"), GenerationSettings())
    assert "does not fit tier minimal" in str(info.value) and "\n" not in str(info.value)


def _node(tier: str | None, gpus: float = 0, memory_gb: float = 16, cpus: float = 2) -> dict:
    resources = {"CPU": cpus, "memory": memory_gb * 1e9, "GPU": gpus}
    if tier:
        resources[tier_resource(tier)] = 1
    return {"Alive": True, "NodeID": tier or "none", "Resources": resources}


def test_unplaceable_says_what_is_missing() -> None:
    cell = CellResources(tier="h100", num_gpus=2, memory_bytes=int(1e9))
    assert "no Ray node of tier h100" in unplaceable(cell, [_node("cpu-local")], "10.0.0.5:6379")
    assert "--tier h100 --address 10.0.0.5:6379" in unplaceable(cell, [], "10.0.0.5:6379")
    assert "1 GPU(s), the cell needs 2" in unplaceable(cell, [_node("h100", gpus=1)], "a:1")
    assert unplaceable(cell, [_node("h100", gpus=1), _node("h100", gpus=8)], "a:1") is None
    small = CellResources(tier="cpu-local", memory_bytes=int(30e9))
    assert "GB of Ray memory" in unplaceable(small, [_node("cpu-local", memory_gb=17)], "a:1")


def test_the_cluster_summary_names_tiers_without_nodes() -> None:
    nodes = [_node("cpu-local"), _node("cpu-b"), _node("cpu-b"), _node(None)]
    line = cluster_summary(nodes, ["cpu-local", "h100", "h100", "cpu-b"])
    assert line == "Ray cluster: 4 node(s); tiers: cpu-b × 2, cpu-local × 1; no node yet for h100 (2 cell(s))"
    empty = "Ray cluster: 0 node(s); tiers: none with a tier; no node yet for a (1 cell(s))"
    assert cluster_summary([], ["a"]) == empty


# ---------------------------------------------------------------- joining


def test_worker_plans_the_ray_start_command(catalog: Catalog) -> None:
    head = plan_worker(catalog, "cpu-local", head=True, address=None, port=6390, name="box-a")
    cmd = head.command()
    assert cmd[1:3] == ["start", "--block"] and "--head" in cmd and "--port=6390" in cmd
    assert json.loads(next(a for a in cmd if a.startswith("--resources=")).split("=", 1)[1]) == {"tier:cpu-local": 1}
    assert head.env()[NODE_NAME_ENV] == "box-a" and head.env()[NODE_TIER_ENV] == "cpu-local"
    port = free_port()
    import socket

    with socket.create_server(("127.0.0.1", port)):  # something listens there, as a head would
        worker = plan_worker(catalog, "h100", head=False, address=f"127.0.0.1:{port}", slots=2, num_gpus=8)
        cmd = worker.command()
    assert f"--address=127.0.0.1:{port}" in cmd and "--num-gpus=8" in cmd and "--head" not in cmd
    assert '--resources={"tier:h100": 2}' in cmd


@pytest.mark.parametrize(
    ("tier", "head", "address", "gpus", "message"),
    [
        ("h1000", True, None, None, "unknown tier 'h1000'"),
        ("cpu-local", True, "1.2.3.4:6379", None, "not both"),
        ("cpu-local", False, None, None, "say which cluster to join"),
        ("h100", True, None, 0, "needs GPUs"),
        ("cpu-local", False, "nohost", None, "not HOST:PORT"),
    ],
)
def test_worker_refusals_are_one_line(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, tier: str, head: bool, address: str | None, gpus, message: str
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(LaloError) as info:
        plan_worker(catalog, tier, head=head, address=address, num_gpus=gpus)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_worker_cli_against_a_head_that_is_not_there() -> None:
    proc = run_cli("worker", "--tier", "cpu-local", "--address", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no Ray head answers" in proc.stderr


# ---------------------------------------------------------------- refusals that lose nothing


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tracker:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return Tracker("lalo-bench")


def test_a_multi_tier_sweep_needs_ray_and_logs_nothing(tmp_path: Path, catalog: Catalog, store: Tracker) -> None:
    spec = _load(tmp_path, catalog, TWO_TIERS)
    with pytest.raises(LaloError) as info:
        run_sweep(spec, catalog, executor=get_executor("local"))
    assert "--executor ray" in str(info.value)
    assert store.latest_sweep_id() is None


def test_an_unreachable_cluster_is_one_line_and_logs_nothing(tmp_path: Path, store: Tracker) -> None:
    spec = {"name": "t", "models": [{"model": SMOL, "quants": ["q4_1"]}], "suites": [{"suite": "extraction"}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    proc = run_cli("sweep", "-c", str(tmp_path / "s.yaml"), "--executor", "ray", "--address", "127.0.0.1:1", env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no Ray head answers at 127.0.0.1:1" in proc.stderr
    assert store.latest_sweep_id() is None


def test_a_sweep_that_ended_with_failed_cells_resumes(store: Tracker) -> None:
    first = store.start_sweep("s", "key", {}, "")
    store.finish_sweep(first, failed_cells=2)
    again = store.start_sweep("s", "key", {}, "")
    assert again.resumed and again.run_id == first.run_id
    store.finish_sweep(again, failed_cells=0)
    fresh = store.start_sweep("s", "key", {}, "")
    assert not fresh.resumed and fresh.run_id != first.run_id
