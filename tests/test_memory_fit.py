"""Memory fit: KV and weight arithmetic checked by hand, and the plan's DeepSeek-V3 sizing claims shown wrong."""

from __future__ import annotations

from itertools import pairwise

import pytest

from lalo_bench.config import Catalog
from lalo_bench.hardware.memory import (
    GB,
    GIB,
    VLLM_GPU_MEMORY_UTILIZATION,
    active_weight_bytes,
    estimate,
    fit_table,
    kv_bytes_for_context,
    kv_bytes_per_token,
    max_context,
    max_users,
    usual_quant,
    weight_bytes,
)

GPU_TIERS = ["minimal", "small", "medium", "large", "enterprise", "h100", "h200"]


def test_kv_per_token_gqa_by_hand(catalog: Catalog) -> None:
    # layers x kv_heads x head_dim x 2 (K, V) x 2 bytes
    assert kv_bytes_per_token(catalog.model("qwen2.5-coder-0.5b-instruct").arch) == 24 * 2 * 64 * 2 * 2 == 12_288
    assert kv_bytes_per_token(catalog.model("smollm2-135m-instruct").arch) == 30 * 3 * 64 * 2 * 2 == 23_040
    assert kv_bytes_per_token(catalog.model("hermes-4-70b").arch) == 80 * 8 * 128 * 2 * 2 == 327_680
    # LFM2: only the 6 attention blocks of 16 keep a cache
    assert kv_bytes_per_token(catalog.model("lfm2-1.2b").arch) == 6 * 8 * 64 * 2 * 2 == 12_288
    assert kv_bytes_per_token(catalog.model("hermes-4-70b").arch, kv_bytes=1.0) == 163_840  # fp8 KV halves it


def test_kv_per_token_mla_deepseek(catalog: Catalog) -> None:
    arch = catalog.model("deepseek-v3").arch
    assert kv_bytes_per_token(arch) == 61 * (512 + 64) * 2 == 70_272
    # what the same geometry would cost without MLA: 61 x 128 heads x 128 x 2 x 2 = 57x more
    assert 61 * 128 * 128 * 2 * 2 / kv_bytes_per_token(arch) > 50


def test_sliding_window_caps_kv(catalog: Catalog) -> None:
    arch = catalog.model("gemma3-270m").arch  # 18 layers, 15 with a 512-token window, 1 KV head x 256
    per_layer = 1 * 256 * 2 * 2
    assert kv_bytes_for_context(arch, 256) == 18 * per_layer * 256  # inside the window: no cap
    assert kv_bytes_for_context(arch, 32_768) == per_layer * (3 * 32_768 + 15 * 512) == 108_527_616
    assert kv_bytes_for_context(arch, 32_768) < 0.2 * kv_bytes_per_token(arch) * 32_768
    gqa = catalog.model("hermes-4-70b").arch  # no sliding window: linear
    assert kv_bytes_for_context(gqa, 1000) == 1000 * kv_bytes_per_token(gqa)


def test_deepseek_weights_are_hundreds_of_gb(catalog: Catalog) -> None:
    ds = catalog.model("deepseek-v3")
    fp8 = weight_bytes(ds, catalog.quant_formats["fp8"])
    assert fp8 / GB == pytest.approx(671, rel=0.02)
    assert weight_bytes(ds, catalog.quant_formats["bf16_hf"]) / GB == pytest.approx(1342, rel=0.02)
    assert weight_bytes(ds, catalog.quant_formats["q2_k"]) / GB > 200  # even 2.6 bits is far past 80 GB
    assert active_weight_bytes(ds, catalog.quant_formats["fp8"]) / GB == pytest.approx(37, rel=0.02)
    dense = catalog.model("hermes-4-70b")
    assert active_weight_bytes(dense, catalog.quant_formats["fp8"]) == weight_bytes(dense, catalog.quant_formats["fp8"])


@pytest.mark.parametrize("tier", GPU_TIERS)
def test_deepseek_fp8_fits_no_gpu_tier_under_vllm(catalog: Catalog, tier: str) -> None:
    est = estimate(catalog, "deepseek-v3", "fp8", "vllm", tier)
    assert not est.fits
    assert est.margin_gb < 0
    assert est.offload_gb == 0  # vLLM cannot offload
    assert est.weights_gb == pytest.approx(671, rel=0.02)


def test_deepseek_enterprise_arithmetic(catalog: Catalog) -> None:
    # 8 x 80 GiB = 687.2 GB; vLLM's 0.9 share is 618.5 GB: below the 671 GB of FP8 weights alone.
    tier = catalog.tier("enterprise")
    budget = tier.devices * tier.device_memory_gb * GIB * VLLM_GPU_MEMORY_UTILIZATION / GB
    assert budget == pytest.approx(618.5, abs=0.1)
    est = estimate(catalog, "deepseek-v3", "fp8", "vllm", "enterprise")
    assert est.devices_used == 8
    assert est.available_gb == pytest.approx(budget)
    assert est.weights_gb > est.available_gb
    assert -80 < est.margin_gb < -55  # short by ~63 GB at 4k context, one user
    assert est.notes[0].startswith("Does not fit")


def test_notes_say_the_plan_is_wrong_about_deepseek(catalog: Catalog) -> None:
    est = estimate(catalog, "deepseek-v3", "fp8", "vllm", "h100")
    text = "\n".join(est.notes)
    assert "FP8 reduces to ~40GB" in text and "wrong" in text
    assert "8-bit fits 24 GB" in text
    assert "671 GB" in text
    assert "short by" in text
    # and what this tier can hold of DeepSeek instead (nothing on one H100; q2_k with offload on an H200)
    assert "No quant of deepseek-v3" in text
    h200 = "\n".join(estimate(catalog, "deepseek-v3", "fp8", "vllm", "h200").notes)
    assert "q2_k on llamacpp fits h200" in h200


def test_hermes_70b_awq(catalog: Catalog) -> None:
    w = weight_bytes(catalog.model("hermes-4-70b"), catalog.quant_formats["awq_int4"])
    assert w / GB == pytest.approx(37.5, abs=0.5)
    for tier in ("h100", "large", "h200"):
        assert estimate(catalog, "hermes-4-70b", "awq_int4", "vllm", tier).fits, tier
    small = estimate(catalog, "hermes-4-70b", "awq_int4", "vllm", "small")
    assert not small.fits and small.margin_gb < -10
    assert any("no awq_int4 release" in n for n in small.notes)
    assert estimate(catalog, "hermes-4-70b", "awq_int4", "vllm", "large").devices_used == 2


@pytest.mark.parametrize(
    "model", ["lfm2-350m", "lfm2-1.2b", "lfm2-1.2b-tool", "lfm2-350m-extract", "lfm2-1.2b-extract", "lfm2-1.2b-rag"]
)
def test_lfm2_nanos_fit_cpu_local(catalog: Catalog, model: str) -> None:
    tier = catalog.tier("cpu-local")
    quant = usual_quant(catalog.model(model), tier)
    assert quant == "q4_k_m"
    est = estimate(catalog, model, quant, "llamacpp", "cpu-local", context_tokens=32_768)
    assert est.fits and est.required_gb < 5
    assert est.available_gb == pytest.approx((24 - 2) * GIB / GB)


def test_max_context_falls_as_users_rise(catalog: Catalog) -> None:
    args = (catalog, "hermes-4-70b", "fp8", "vllm", "h200")
    contexts = [max_context(*args, users=u) for u in (1, 4, 16, 64)]
    assert contexts[0] == catalog.model("hermes-4-70b").arch.context_length  # one user: the model's limit
    assert all(a > b for a, b in pairwise(contexts))
    c = contexts[2]
    assert estimate(*args, users=16, context_tokens=c).fits
    assert not estimate(*args, users=16, context_tokens=c + 1).fits


def test_max_users_within_kv_budget(catalog: Catalog) -> None:
    args = (catalog, "hermes-4-70b", "fp8", "vllm", "h200")
    ctx = 8192
    u = max_users(*args, context_tokens=ctx)
    assert u > 1
    at = estimate(*args, users=u, context_tokens=ctx)
    assert at.fits and not estimate(*args, users=u + 1, context_tokens=ctx).fits
    kv_budget = at.available_gb - at.weights_gb - at.overhead_gb
    per_user = kv_bytes_for_context(catalog.model("hermes-4-70b").arch, ctx) / GB
    assert u * per_user <= kv_budget < (u + 1) * per_user


def test_nothing_fits_gives_zero(catalog: Catalog) -> None:
    assert max_context(catalog, "deepseek-v3", "fp8", "vllm", "h100", users=1) == 0
    assert max_users(catalog, "deepseek-v3", "fp8", "vllm", "h100", context_tokens=1) == 0


def test_llamacpp_offloads_vllm_does_not(catalog: Catalog) -> None:
    cpp = estimate(catalog, "hermes-4-70b", "q4_k_m", "llamacpp", "small")  # 42.8 GB on a 24 GB card + 64 GB RAM
    assert cpp.fits and cpp.offload_gb > 15
    assert cpp.available_gb > cpp.device_available_gb
    assert any("system RAM" in n for n in cpp.notes)
    vllm = estimate(catalog, "hermes-4-70b", "awq_int4", "vllm", "small")
    assert not vllm.fits and vllm.offload_gb == 0


def test_tensor_parallel_head_divisibility(catalog: Catalog) -> None:
    # SmolLM2 has 9 attention heads: vLLM cannot split it over 2 GPUs
    est = estimate(catalog, "smollm2-135m-instruct", "q4_1", "vllm", "medium")
    assert est.devices_used == 1
    assert any("TP 2 not possible" in n for n in est.notes)
    assert any("bf16" in n for n in est.notes)  # vLLM runs the GGUF converted to bf16


def test_hrm_has_no_kv_cache(catalog: Catalog) -> None:
    est = estimate(catalog, "hrm-27m", "hrm_fp32", "hrm", "cpu-local", users=8, context_tokens=900)
    assert est.kv_cache_gb == 0 and est.fits
    assert est.weights_gb == pytest.approx(0.108, rel=0.01)


def test_fit_table_usual_quants_and_alternatives(catalog: Catalog) -> None:
    models = ["deepseek-v3", "hermes-4-405b", "hermes-4-70b", "lfm2-350m", "lfm2-1.2b", "hrm-27m"]
    tiers = ["cpu-local", "minimal", "small", "medium", "large", "enterprise", "h100", "h200"]
    rows = fit_table(catalog, models, tiers)
    assert len(rows) == len(models) * len(tiers)
    by = {(r.model, r.tier): r for r in rows}
    assert not any(by["deepseek-v3", t].fits for t in tiers)
    assert by["deepseek-v3", "h100"].quant == "fp8" and by["deepseek-v3", "cpu-local"].quant == "q4_k_m"
    assert by["hrm-27m", "h100"].backend == "hrm"
    assert by["hermes-4-405b", "enterprise"].fits
    assert all(r.kind == "projected" for r in rows)
    assert any("Fits h100 instead: hermes-4-70b" in n for n in by["deepseek-v3", "h100"].notes)
    for r in rows:
        assert r.margin_gb == pytest.approx(r.available_gb - r.required_gb)
        assert r.required_gb == pytest.approx(r.weights_gb + r.kv_cache_gb + r.overhead_gb)


def test_bad_inputs(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="cannot load"):
        estimate(catalog, "hermes-4-70b", "fp8", "llamacpp", "h100")
    with pytest.raises(ValueError, match="solver"):
        estimate(catalog, "hrm-27m", "hrm_fp32", "solver", "h100")
