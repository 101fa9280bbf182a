"""Roofline projection, STREAM triad and η calibration (issue 5, speed side). All fast: no model is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lalo_bench.config import Catalog
from lalo_bench.hardware import calibration, roofline
from lalo_bench.hardware.memory import active_weight_bytes, weight_bytes
from lalo_bench.hardware.stream import measure_triad

REPO = Path(__file__).resolve().parents[1]
H200_FILE = calibration.shipped(calibration.H200_LLAMA_BENCH)
DENSE = "qwen2.5-coder-1.5b-instruct"


def test_triad_gives_sane_bandwidth() -> None:
    r = measure_triad(size_mb=32, repeats=3, max_seconds=2.0)
    assert 0.5 < r.gbs < 500
    assert r.repeats >= 1 and r.threads >= 1 and r.seconds < 5


def test_dense_decode_memory_bound_at_batch_1_compute_bound_at_large_batch(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model(DENSE), catalog.quant_formats["q4_k_m"], catalog.tier("h200")
    one = roofline.decode_step_s(model, fmt, tier, batch=1, context=128)
    many = roofline.decode_step_s(model, fmt, tier, batch=1024, context=128)
    assert one.bound == "memory" and one.t_mem > one.t_compute
    assert many.bound == "compute" and many.t_compute > many.t_mem
    assert one.projected and one.per_user_tok_s == pytest.approx(1 / one.step_s)
    assert many.aggregate_tok_s > one.aggregate_tok_s
    assert many.per_user_tok_s < one.per_user_tok_s


def test_kv_reads_grow_with_context(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model(DENSE), catalog.quant_formats["q4_k_m"], catalog.tier("h200")
    short = roofline.decode_step_s(model, fmt, tier, batch=4, context=0)
    long = roofline.decode_step_s(model, fmt, tier, batch=4, context=16384)
    assert short.bytes_read == pytest.approx(active_weight_bytes(model, fmt))
    assert long.bytes_read > short.bytes_read and long.step_s > short.step_s


def test_moe_reads_only_active_params(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model("deepseek-v3"), catalog.quant_formats["fp8"], catalog.tier("enterprise")
    step = roofline.decode_step_s(model, fmt, tier, batch=1, context=0)
    assert step.bytes_read == pytest.approx(37e9)  # 37B active at 8 bits, not 671B
    assert step.bytes_read < weight_bytes(model, fmt) / 10
    assert step.flops == pytest.approx(2 * 37e9)


def test_tensor_parallel_cuts_t_mem_and_adds_comm(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model("deepseek-v3"), catalog.quant_formats["fp8"], catalog.tier("enterprise")
    single = roofline.decode_step_s(model, fmt, tier, batch=8, context=2048)
    tp8 = roofline.decode_step_s(model, fmt, tier, batch=8, context=2048, tensor_parallel=8)
    assert single.t_comm == 0 and tp8.t_comm > 0
    assert tp8.t_mem == pytest.approx(single.t_mem / 8)
    assert tp8.step_s < single.step_s
    with pytest.raises(ValueError, match="device"):
        roofline.decode_step_s(model, fmt, catalog.tier("h200"), tensor_parallel=2)


def test_prefill_ttft_and_users_at_slo(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model(DENSE), catalog.quant_formats["q4_k_m"], catalog.tier("h200")
    eff = roofline.default_efficiency("llamacpp-server", "gpu")
    assert eff.calibration_id is None and eff.source.startswith("default (uncalibrated)")
    short, long = roofline.prefill_s(model, fmt, tier, 64, eff), roofline.prefill_s(model, fmt, tier, 4096, eff)
    assert long > short > 0
    ttft = roofline.ttft_ms(model, fmt, tier, 512, eff)
    step = roofline.decode_step_s(model, fmt, tier, 1, 512, eff).step_s
    assert ttft == pytest.approx((roofline.prefill_s(model, fmt, tier, 512, eff) + step) * 1000)
    users = roofline.users_at_slo(
        model, fmt, tier, eff, ttft_ms_max=2000, itl_ms_max=50, prompt_tokens=512, context=2048
    )
    assert users >= 1
    # the answer is the largest batch meeting both objectives: one more user breaks one of them
    pf = roofline.prefill_s(model, fmt, tier, 512, eff)
    for b, should_pass in ((users, True), (users + 1, False)):
        s = roofline.decode_step_s(model, fmt, tier, b, 2048, eff).step_s
        assert (s * 1000 <= 50 and (b * pf + s) * 1000 <= 2000) is should_pass
    assert roofline.users_at_slo(model, fmt, tier, eff, 0.001, 50, 512, 2048) == 0


def test_ceiling_and_roofline_pct(catalog: Catalog) -> None:
    model, fmt = catalog.model(DENSE), catalog.quant_formats["q4_k_m"]
    ceiling = roofline.bandwidth_ceiling_tok_s(model, fmt, 4800, context=0)
    assert ceiling == pytest.approx(4800e9 / active_weight_bytes(model, fmt))
    assert roofline.roofline_pct(ceiling, ceiling) == pytest.approx(100.0)
    assert roofline.roofline_pct(ceiling / 4, ceiling) == pytest.approx(25.0)


def test_peak_follows_weight_format(catalog: Catalog) -> None:
    q, h100, a100 = catalog.quant_formats, catalog.tier("h100"), catalog.tier("large")
    assert roofline.peak_tflops(h100, q["q4_k_m"]) == h100.int8_tops
    assert roofline.peak_tflops(h100, q["fp8"]) == h100.fp8_tflops
    assert roofline.peak_tflops(a100, q["fp8"]) == a100.fp16_tflops  # no FP8 tensor cores on Ampere
    assert roofline.peak_tflops(h100, q["bf16_hf"]) == h100.fp16_tflops


def test_calibrate_on_h200_llama_bench(catalog: Catalog) -> None:
    cells = calibration.cells_from_llama_bench(H200_FILE, catalog=catalog)
    assert len(cells) == 4  # 2 models x flash attention off/on, each with tg128 and pp512
    assert {c.hardware for c in cells} == {"h200"}
    assert all(c.prefill_tok_s and c.prompt_tokens == 512 for c in cells)
    assert all(0 < c.roofline_pct < 100 for c in cells)
    eff = calibration.calibrate(cells)
    assert 0 < eff.eta_mem < 1 and 0 < eff.eta_prefill < 1
    assert eff.calibration_id and eff.source.startswith("calibrated")
    loo = calibration.leave_one_out(cells)
    assert len(loo) == 4 and all(r.fitted_on == 3 for r in loo)
    err = calibration.median_abs_error(loo)
    assert err is not None and err >= 0
    assert calibration.median_abs_error(loo, "prefill") is not None
    assert calibration.median_abs_error(loo, "ttft") is None  # llama-bench measures no TTFT


def test_cells_from_plain_numbers(catalog: Catalog) -> None:
    model, fmt, tier = catalog.model(DENSE), catalog.quant_formats["q4_k_m"], catalog.tier("cpu-local")
    cells = [
        calibration.cell_from_measurement(
            model,
            fmt,
            "q4_k_m",
            "llamacpp",
            tier,
            tok_s,
            source="test",
            bandwidth_gbs=10.0,
            ttft_ms=ttft,
            prompt_tokens=200,
        )
        for tok_s, ttft in ((6.0, 900.0), (7.0, 800.0), (5.0, 1000.0))
    ]
    ceiling = 10e9 / active_weight_bytes(model, fmt)
    eff = calibration.calibrate(cells)
    assert eff.eta_mem == pytest.approx(6.0 / ceiling)
    assert "llamacpp/cpu" in eff.source
    loo = calibration.leave_one_out(cells)
    assert calibration.median_abs_error(loo, "ttft") is not None
    with pytest.raises(ValueError, match="mix"):
        calibration.calibrate([*cells, *calibration.cells_from_llama_bench(H200_FILE, catalog=catalog)])


# ---------------------------------------------------------------- fixed per-layer overhead


def _synthetic_cells(catalog: Catalog, eff: roofline.Efficiency) -> list[calibration.MeasuredCell]:
    """Cells whose 'measurements' are the model's own projection with ``eff``: a fit must give ``eff`` back."""
    tier, fmt = catalog.tier("h200"), catalog.quant_formats["q4_k_m"]
    cells = []
    for model_id in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", DENSE, "gemma3-270m"):
        model = catalog.model(model_id)
        blank = calibration.cell_from_measurement(
            model, fmt, "q4_k_m", "llamacpp", tier, 1.0, source="synthetic", prompt_tokens=512, decode_context=64
        )
        proj = calibration.project_cell(blank, eff)
        cells.append(blank.model_copy(update={"decode_tok_s": proj.decode_tok_s, "prefill_tok_s": proj.prefill_tok_s}))
    return cells


def test_overhead_fit_recovers_known_parameters(catalog: Catalog) -> None:
    truth = roofline.Efficiency(
        eta_mem=0.4,
        eta_flops=0.3,
        eta_prefill=0.08,
        step_overhead_per_layer_s=50e-6,
        prefill_overhead_per_layer_s=300e-6,
        source="synthetic",
    )
    eff = calibration.calibrate(_synthetic_cells(catalog, truth))
    assert eff.eta_mem == pytest.approx(0.4, rel=0.01)
    assert eff.step_overhead_per_layer_s == pytest.approx(50e-6, rel=0.01)
    assert eff.eta_prefill == pytest.approx(0.08, rel=0.01)
    assert eff.prefill_overhead_per_layer_s == pytest.approx(300e-6, rel=0.01)
    assert "least squares" in eff.source
    # the projection uses the same step: layers x overhead on top of the memory time
    model, fmt, tier = catalog.model(DENSE), catalog.quant_formats["q4_k_m"], catalog.tier("h200")
    step = roofline.decode_step_s(model, fmt, tier, 1, 64, eff)
    assert step.t_overhead == pytest.approx(model.arch.layers * eff.step_overhead_per_layer_s)
    assert step.step_s == pytest.approx(max(step.t_mem, step.t_compute) + step.t_comm + step.t_overhead)


def test_overhead_fit_falls_back_to_eta_when_it_cannot_separate_the_terms() -> None:
    one = calibration.fit_eta_overhead([1e-3], [28], [2e-3])
    assert one.method == "eta only" and one.eta == pytest.approx(0.5) and one.overhead_per_layer_s == 0
    # one model shape measured twice: ideal time and layers are proportional, so the split is arbitrary
    same = calibration.fit_eta_overhead([1e-3, 1e-3], [28, 28], [2e-3, 2.2e-3])
    assert same.method == "eta only"
    # larger models relatively *slower* would need a negative overhead: clamped, η alone
    neg = calibration.fit_eta_overhead([1e-3, 4e-3], [28, 32], [2e-3, 12e-3])
    assert neg.method == "eta only" and neg.overhead_per_layer_s == 0
    assert calibration.fit_eta_overhead([1e-3, 4e-3], [28, 32], [3e-3, 6e-3], fit_overhead=False).method == "eta only"


def test_loo_on_h200_overhead_beats_eta_only(catalog: Catalog) -> None:
    cells = calibration.cells_from_llama_bench(H200_FILE, catalog=catalog)
    with_overhead = calibration.leave_one_out(cells)
    eta_only = calibration.leave_one_out(cells, fit_overhead=False)
    assert all(r.fitted_on == 3 and r.step_overhead_per_layer_s > 0 for r in with_overhead)
    assert all(r.step_overhead_per_layer_s == 0 for r in eta_only)
    decode, decode_eta = calibration.median_abs_error(with_overhead), calibration.median_abs_error(eta_only)
    prefill, prefill_eta = (calibration.median_abs_error(r, "prefill") for r in (with_overhead, eta_only))
    assert decode is not None and decode_eta is not None and decode < decode_eta
    assert prefill is not None and prefill_eta is not None and prefill < prefill_eta
    assert decode <= 15.0  # issue 5's target on these cells (13.2% when written)


def test_cpu_cells_file_loads_with_plausible_roofline(catalog: Catalog) -> None:
    path = calibration.shipped(calibration.CPU_CELLS)
    if not path.exists():
        pytest.skip("no exported CPU cells")
    cells = calibration.cells_from_cpu_json(path, catalog=catalog)
    assert cells and {c.group for c in cells} == {"llamacpp/cpu"}
    assert all(0 < c.roofline_pct <= 100 for c in cells)
    assert all(c.prefill_tok_s and c.prompt_tokens and "runs" in c.source for c in cells)
    by_file = calibration.cells_from_cpu_json(path, catalog=catalog, bytes_per_token="file")
    assert all(0 < c.roofline_pct <= 100 for c in by_file)
