"""CPU calibration: η per weight kernel, prompt-length series in leave-one-out, the controlled CPU cells file.

Behaviour only, on synthetic cells or the shipped measurements; nothing here runs a model or asserts a speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lalo_bench.config import Catalog
from lalo_bench.hardware import calibration, roofline

REPO = Path(__file__).resolve().parents[1]
BENCH_FILE = calibration.shipped(calibration.CPU_BENCH_CELLS)
MODELS = ("smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")


def _truth() -> roofline.Efficiency:
    return roofline.Efficiency(
        eta_mem=0.5,
        eta_flops=0.3,
        eta_prefill=0.2,
        step_overhead_per_layer_s=40e-6,
        prefill_overhead_per_layer_s=200e-6,
        eta_mem_by_kernel={"q8_0": 0.6, "q4_0": 0.45},
        eta_prefill_by_kernel={"q8_0": 0.25, "q4_0": 0.15},
        source="synthetic",
    )


def _cells(
    catalog: Catalog, eff: roofline.Efficiency, pairs: list[tuple[str, str]], prompts: tuple[int, ...] = (128, 512)
) -> list[calibration.MeasuredCell]:
    """Cells whose 'measurements' are the model's own projection with ``eff`` (a fit must give ``eff`` back)."""
    tier = catalog.tier("cpu-local")
    cells = []
    for model_id, quant in pairs:
        for p in prompts:
            blank = calibration.cell_from_measurement(
                catalog.model(model_id),
                catalog.quant_formats[quant],
                quant,
                "llamacpp",
                tier,
                1.0,
                source="synthetic",
                bandwidth_gbs=20.0,
                prompt_tokens=p,
                decode_context=p + 32,
                series=f"synthetic:{model_id}/{quant}",
            )
            proj = calibration.project_cell(blank, eff)
            cells.append(
                blank.model_copy(
                    update={
                        "decode_tok_s": proj.decode_tok_s,
                        "prefill_tok_s": proj.prefill_tok_s,
                        "ttft_ms": proj.ttft_ms,
                    }
                )
            )
    return cells


def test_weight_kernel_follows_llama_cpp_fallback(catalog: Catalog) -> None:
    q = catalog.quant_formats
    small, large = catalog.model("smollm2-135m-instruct").arch, catalog.model("qwen2.5-coder-1.5b-instruct").arch
    assert roofline.weight_kernel(q["q4_k_m"], large) == "q4_k"  # 1536 columns: real k-quant blocks
    assert roofline.weight_kernel(q["q4_k_m"], small) == "q5_0"  # 576 columns: the quantizer falls back
    assert roofline.weight_kernel(q["q2_k"], small) == "q4_0"
    assert roofline.weight_kernel(q["q8_0"], small) == roofline.weight_kernel(q["q8_0"], large) == "q8_0"
    assert roofline.weight_kernel(q["q4_1"], small) == "q4_1"
    assert roofline.weight_kernel(q["bf16_hf"], large) is None


def test_per_kernel_fit_recovers_known_parameters(catalog: Catalog) -> None:
    truth = _truth()
    pairs = [(m, q) for m in MODELS[:3] for q in ("q8_0", "q4_0")]
    eff = calibration.calibrate(_cells(catalog, truth, pairs))
    assert eff.eta_prefill_by_kernel == pytest.approx(truth.eta_prefill_by_kernel, rel=1e-3)
    assert eff.eta_mem_by_kernel == pytest.approx(truth.eta_mem_by_kernel, rel=1e-3)
    assert eff.prefill_overhead_per_layer_s == pytest.approx(200e-6, rel=1e-3)
    assert eff.step_overhead_per_layer_s == pytest.approx(40e-6, rel=1e-3)
    # pooled: one η for both kernels, between them
    assert 0.15 < eff.eta_prefill < 0.25 and 0.45 < eff.eta_mem < 0.6
    loo = calibration.leave_one_out(_cells(catalog, truth, pairs))
    assert max(r.prefill_abs_pct_error or 0 for r in loo) == pytest.approx(0, abs=1e-6)


def test_prefill_cost_per_token_is_told_from_cost_per_prompt(catalog: Catalog) -> None:
    truth = _truth().model_copy(
        update={"prefill_overhead_per_layer_s": 0.0, "prefill_overhead_per_token_layer_s": 20e-6}
    )
    pairs = [(m, q) for m in MODELS[:3] for q in ("q8_0", "q4_0")]
    eff = calibration.calibrate(_cells(catalog, truth, pairs))
    assert eff.prefill_overhead_per_token_layer_s == pytest.approx(20e-6, rel=1e-3)
    assert eff.prefill_overhead_per_layer_s == pytest.approx(0, abs=1e-9)
    assert eff.eta_prefill_by_kernel == pytest.approx(truth.eta_prefill_by_kernel, rel=1e-3)
    # the projection carries the per-token cost too
    model, fmt, tier = catalog.model(MODELS[0]), catalog.quant_formats["q8_0"], catalog.tier("cpu-local")
    without = eff.model_copy(update={"prefill_overhead_per_token_layer_s": 0.0})
    extra = roofline.prefill_s(model, fmt, tier, 256, eff) - roofline.prefill_s(model, fmt, tier, 256, without)
    assert extra == pytest.approx(256 * model.arch.layers * eff.prefill_overhead_per_token_layer_s)
    # one prompt length cannot tell the two apart: the per-prompt term is kept
    single = calibration.calibrate(_cells(catalog, truth, pairs, prompts=(512,)))
    assert single.prefill_overhead_per_token_layer_s == 0 and single.prefill_overhead_per_layer_s > 0


def test_kernel_with_one_cell_falls_back_to_pooled(catalog: Catalog) -> None:
    truth = _truth().model_copy(update={"eta_prefill_by_kernel": {"q8_0": 0.25, "q4_0": 0.15, "q4_1": 0.08}})
    pairs = [(m, q) for m in MODELS[:3] for q in ("q8_0", "q4_0")] + [("smollm2-135m-instruct", "q4_1")]
    cells = _cells(catalog, truth, pairs)
    lone = next(c for c in cells if c.kernel == "q4_1")
    eff = calibration.calibrate([c for c in cells if c.kernel != "q4_1" or c is lone])
    assert "q4_1" not in eff.eta_prefill_by_kernel and set(eff.eta_prefill_by_kernel) == {"q8_0", "q4_0"}
    assert eff.prefill_eta("q4_1") == eff.eta_prefill  # pooled
    assert eff.prefill_eta("q8_0") == pytest.approx(0.25, rel=0.05)
    # with both prompt lengths of q4_1 (two cells) it gets its own
    assert "q4_1" in calibration.calibrate(cells).eta_prefill_by_kernel


def test_one_kernel_is_the_plain_fit(catalog: Catalog) -> None:
    truth = _truth()
    cells = _cells(catalog, truth, [(m, "q8_0") for m in MODELS[:3]])
    per_kernel, pooled = calibration.calibrate(cells), calibration.calibrate(cells, per_kernel=False)
    assert per_kernel.eta_prefill_by_kernel == {} and per_kernel.eta_mem_by_kernel == {}
    assert per_kernel.eta_prefill == pytest.approx(pooled.eta_prefill)
    assert per_kernel.eta_prefill == pytest.approx(0.25, rel=1e-3)


def test_loo_holds_out_the_whole_series(catalog: Catalog) -> None:
    pairs = [(m, q) for m in MODELS[:3] for q in ("q8_0", "q4_0")]
    cells = _cells(catalog, _truth(), pairs)
    loo = calibration.leave_one_out(cells)
    assert len(loo) == len(cells) and all(r.fitted_on == len(cells) - 2 for r in loo)
    assert {r.prompt_tokens for r in loo} == {128, 512}


def test_prefill_skips_the_vocabulary_table_but_for_the_last_token(catalog: Catalog) -> None:
    arch = catalog.model("gemma3-270m").arch
    table = arch.vocab_size * arch.hidden_size  # type: ignore[operator]
    one = roofline.prefill_flops(arch, 1)
    assert one == pytest.approx(2 * arch.active_params)  # a single token still computes its logits
    per_token = roofline.prefill_flops(arch, 3) - roofline.prefill_flops(arch, 2)
    assert per_token - 2 * (arch.active_params - table) < 0.01 * per_token  # only attention on top


def test_kernel_eta_reaches_the_projection(catalog: Catalog) -> None:
    model, tier = catalog.model("qwen2.5-coder-0.5b-instruct"), catalog.tier("cpu-local")
    fmt = catalog.quant_formats["q8_0"]
    eff = _truth()
    slow = eff.model_copy(update={"eta_prefill_by_kernel": {"q8_0": 0.125}, "prefill_overhead_per_layer_s": 0.0})
    fast = eff.model_copy(update={"eta_prefill_by_kernel": {"q8_0": 0.25}, "prefill_overhead_per_layer_s": 0.0})
    ratio = roofline.prefill_s(model, fmt, tier, 512, slow) / roofline.prefill_s(model, fmt, tier, 512, fast)
    assert ratio == pytest.approx(2.0)
    step = roofline.decode_step_s(model, fmt, tier, eff=eff)
    assert step.t_mem == pytest.approx(step.bytes_read / (tier.memory_bandwidth_gbs * 1e9 * 0.6))


def test_cpu_bench_file_loads_into_plausible_cells(catalog: Catalog) -> None:
    if not BENCH_FILE.exists():
        pytest.skip("no controlled CPU cells")
    cells = calibration.cells_from_cpu_bench(BENCH_FILE, catalog=catalog)
    assert len(cells) >= 8 and {c.group for c in cells} == {"llamacpp/cpu"}
    assert len({c.kernel for c in cells}) >= 3
    assert all(c.series and c.prompt_tokens and c.prefill_tok_s and c.ttft_ms for c in cells)
    for c in cells:
        assert c.prompt_tokens is not None and c.prefill_tok_s is not None and c.ttft_ms is not None
        assert 0 < c.roofline_pct <= 100
        assert c.prefill_tok_s < (c.prefill_ceiling_tok_s() or 0)
        assert c.ttft_ms >= 1000 * c.prompt_tokens / c.prefill_tok_s * 0.99  # TTFT contains the prefill
        assert c.decode_context > c.prompt_tokens
    series = {c.series for c in cells}
    assert len(series) < len(cells)  # several prompt lengths per GGUF
    by_file = calibration.cells_from_cpu_bench(BENCH_FILE, catalog=catalog, bytes_per_token="file")
    assert all(0 < c.roofline_pct <= 100 for c in by_file)


def test_default_calibration_uses_the_controlled_cpu_cells() -> None:
    if not BENCH_FILE.exists():
        pytest.skip("no controlled CPU cells")
    cal = calibration.default_calibration()
    cpu = [c for c in cal.cells if c.group == "llamacpp/cpu"]
    assert cpu and all(c.series for c in cpu)
    eff, err = cal.for_backend("llamacpp", "cpu")
    assert eff is not None and eff.calibrated and err is not None
    assert eff.eta_prefill_by_kernel  # several kernels measured
    assert "llamacpp/cpu" in cal.ttft_error_pct and "llamacpp/cpu" in cal.prefill_error_pct
