"""`lalo-bench project`: fit, memory and projected speed, always labelled as a projection."""

from __future__ import annotations

import json

from lalo_bench.config import Catalog
from lalo_bench.hardware.memory import max_users
from lalo_bench.hardware.projection import PLAN_MODELS, PLAN_TIERS, plan_table, project
from tests.conftest import run_cli


def test_deepseek_v3_fits_none_of_the_plans_tiers_and_the_notes_say_why(catalog: Catalog) -> None:
    rows = [p for p in plan_table(catalog) if p.model == "deepseek-v3"]
    assert [p.tier for p in rows] == list(PLAN_TIERS)
    assert not any(p.fits for p in rows)
    assert all(p.decode_tok_s is None and p.measured is False for p in rows)
    assert all(any("671 GB" in n for n in p.notes) for p in rows)


def test_a_fitting_model_gets_speed_and_users_within_memory(catalog: Catalog) -> None:
    p = project(catalog, "hermes-4-70b", "h200", users=4, context_tokens=4096)
    assert p.fits and p.decode_tok_s and p.decode_tok_s > 0 and p.ttft_ms and p.ttft_ms > 0
    assert p.aggregate_tok_s is not None and abs(p.aggregate_tok_s - 4 * p.decode_tok_s) < 1e-6
    assert p.users_at_slo is not None
    assert p.users_at_slo <= max_users(catalog, "hermes-4-70b", p.quant, p.backend, "h200", 4096)
    assert not p.efficiency.calibrated and any("uncalibrated" in n for n in p.notes)
    more = project(catalog, "hermes-4-70b", "h200", users=16, context_tokens=4096)
    assert more.decode_tok_s is not None and more.decode_tok_s < p.decode_tok_s  # batching shares the bandwidth


def test_cli_json_has_the_documented_fields() -> None:
    proc = run_cli("project", "--model", "lfm2-1.2b", "--tier", "cpu-local", "--users", "2", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("fits", "memory_required_gb", "memory_available_gb", "decode_tok_s", "ttft_ms", "measured"):
        assert key in data
    assert data["fits"] is True and data["measured"] is False and data["decode_tok_s"] > 0


def test_cli_unknown_model_is_one_line() -> None:
    proc = run_cli("project", "--model", "nope", "--tier", "h100")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "unknown model" in proc.stderr


def test_a_tier_with_spare_devices_serves_replicas_and_counts_their_users(catalog: Catalog) -> None:
    """8 GPUs holding a 1-GPU deployment carry 8 replicas: users at SLO are one replica's (speed and memory) x 8."""
    p = project(catalog, "hermes-4-70b", "enterprise")
    assert p.fits and p.memory.devices_used == 1 and p.replicas == catalog.tier("enterprise").devices
    one = max_users(catalog, "hermes-4-70b", p.quant, p.backend, "enterprise", 4096, devices=1)
    assert p.users_at_slo is not None and p.users_at_slo <= one * p.replicas
    assert p.users_at_slo % p.replicas == 0 and any("replicas" in n for n in p.notes)
    single = project(catalog, "hermes-4-70b", "h200")
    assert single.replicas == 1


def test_plan_table_cli_lists_every_tier_and_model() -> None:
    proc = run_cli("project-plan", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {(r["tier"], r["model"]) for r in rows} == {(t, m) for t in PLAN_TIERS for m in PLAN_MODELS}
    assert all(r["measured"] is False for r in rows)


def test_llamacpp_layer_split_decodes_at_one_gpus_bandwidth(catalog: Catalog) -> None:
    """A layer split runs its GPUs one after another for each token: splitting wider must not speed decode up."""
    split = project(catalog, "deepseek-v3", "enterprise", quant="q4_k_m", backend_id="llamacpp")
    assert split.fits and split.memory.devices_used > 1
    assert any("one GPU reading all the weights" in n for n in split.notes)
    from lalo_bench.hardware.roofline import decode_step_s

    model, tier = catalog.model("deepseek-v3"), catalog.tier("enterprise")
    one_gpu = decode_step_s(model, catalog.quant_formats["q4_k_m"], tier, batch=1, context=4096, eff=split.efficiency)
    assert split.decode_tok_s is not None and abs(split.decode_tok_s - one_gpu.per_user_tok_s) < 1e-6
