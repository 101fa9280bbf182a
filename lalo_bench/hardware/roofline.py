"""Roofline speed projection: decode step, prefill, TTFT and users at an SLO, for tiers not at hand.

Every number from this module is a PROJECTION (DESIGN.md: measured vs projected, always labelled). Its quality
rests on the efficiencies η, which :mod:`lalo_bench.hardware.calibration` fits on measured cells; the
:data:`DEFAULT_EFFICIENCY` table is an uncalibrated fallback and says so in ``Efficiency.source``. A calibration
may carry η_mem and η_prefill per weight kernel (:func:`weight_kernel`: the ggml type of most matmul weights);
a format whose kernel was not measured gets the pooled η.

Decode step (one token for each of ``batch`` sequences), per device::

    bytes  = active weight bytes / TP  +  batch x KV bytes for `context` tokens / TP
    flops  = batch x (2 x active params  +  4 x kv_layers x attn_width x context)
    t_mem  = bytes / (bandwidth x η_mem)
    t_comp = flops / (peak x TP x η_flops)
    t_comm = 2 all-reduces per layer of (hidden x batch x 2 bytes), ring cost 2(TP-1)/TP, plus a latency each
    t_over = layers x step_overhead_per_layer_s
    step   = max(t_mem, t_comp) + t_comm + t_over

``t_over`` is the fixed cost of a forward pass that does not scale with bytes or FLOPs: kernel launches and
synchronisation between ops (GPU), thread barriers between ops (CPU), sampling. It is why a small model reaches a
lower fraction of the bandwidth than a large one; it is counted per layer because the number of ops (launches,
barriers) grows with the layers. Prefill pays its own ``layers x prefill_overhead_per_layer_s`` once per prompt.

``2 x active params`` is one multiply-add per weight touched (MoE: only the routed + shared experts); a prompt
skips the vocabulary table except for its last token (:func:`prefill_flops`);
``4 x attn_width x context`` per layer is q·K over the cached keys plus p·V over the cached values, with
``attn_width = heads x head_dim`` (MLA, absorbed form: heads x (kv_lora_rank + rope dims) for q·K and
heads x kv_lora_rank for p·V). Sliding-window layers attend to at most the window.

Without tensor parallelism a multi-device tier splits layers (llama.cpp's ``--split-mode layer``, pipeline
parallel): devices run one after another for a single sequence, so the step is timed on one device's bandwidth
with all the bytes. The communication term is never overlapped with compute (vLLM's TP decode puts each
all-reduce on the critical path).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lalo_bench.config import Architecture, ModelSpec, QuantFormat, TierSpec
from lalo_bench.hardware.memory import active_weight_bytes, kv_bytes_for_context

ALLREDUCE_LATENCY_S = 10e-6
"""Fixed cost of one small all-reduce (launch + synchronisation). NCCL's small-message all-reduce latency is of
the order of 10 µs within an NVLink node and more over PCIe; for decode-sized messages (KBs) this term, not the
bandwidth term, dominates t_comm. A rule-of-thumb constant, not measured here."""

ALLREDUCES_PER_LAYER = 2  # Megatron-style TP: one after attention's output projection, one after the MLP


class Efficiency(BaseModel):
    """Fractions of the roofline a backend reaches; ``source`` says whether they were measured or assumed."""

    model_config = ConfigDict(frozen=True)

    eta_mem: float = Field(gt=0, le=1.5, description="decode: achieved / peak memory bandwidth")
    eta_flops: float = Field(gt=0, le=1.5, description="decode compute (large batch): achieved / peak FLOPs")
    eta_prefill: float = Field(gt=0, le=1.5, description="prefill: achieved / peak FLOPs")
    step_overhead_per_layer_s: float = Field(
        default=0.0, ge=0, description="decode: fixed seconds per layer per step (launches, syncs, sampling)"
    )
    prefill_overhead_per_layer_s: float = Field(
        default=0.0, ge=0, description="prefill: fixed seconds per layer per prompt, on top of the FLOPs term"
    )
    prefill_overhead_per_token_layer_s: float = Field(
        default=0.0,
        ge=0,
        description="prefill: seconds per prompt token per layer that do not scale with the weights (CPU: "
        "activation quantization, norms, RoPE, short matmul rows)",
    )
    eta_mem_by_kernel: dict[str, float] = Field(
        default_factory=dict, description="eta_mem per weight kernel (weight_kernel) where calibrated; else eta_mem"
    )
    eta_prefill_by_kernel: dict[str, float] = Field(
        default_factory=dict, description="eta_prefill per weight kernel where calibrated; else eta_prefill"
    )
    source: str = Field(description="'default (uncalibrated): …' or 'calibrated: …' with the cells behind it")
    calibration_id: str | None = Field(default=None, description="hash of the measured cells; None for defaults")

    @property
    def calibrated(self) -> bool:
        return self.calibration_id is not None

    def mem_eta(self, kernel: str | None) -> float:
        """η_mem for weights in ``kernel`` (see :func:`weight_kernel`): its own where fitted, else the pooled one."""
        return self.eta_mem_by_kernel.get(kernel or "", self.eta_mem)

    def prefill_eta(self, kernel: str | None) -> float:
        """η_prefill for weights in ``kernel``: its own where fitted, else the pooled one."""
        return self.eta_prefill_by_kernel.get(kernel or "", self.eta_prefill)


def _default(
    eta_mem: float,
    eta_flops: float,
    eta_prefill: float,
    basis: str,
    step_overhead_per_layer_s: float = 0.0,
    prefill_overhead_per_layer_s: float = 0.0,
) -> Efficiency:
    return Efficiency(
        eta_mem=eta_mem,
        eta_flops=eta_flops,
        eta_prefill=eta_prefill,
        step_overhead_per_layer_s=step_overhead_per_layer_s,
        prefill_overhead_per_layer_s=prefill_overhead_per_layer_s,
        source=f"default (uncalibrated): {basis}",
        calibration_id=None,
    )


# Uncalibrated defaults, keyed by (backend family, tier kind). Rules of thumb, not measurements; a projection
# made with them must be labelled uncalibrated. eta_flops for decode cannot be fitted from batch-1 cells (they are
# memory-bound), so even a calibrated Efficiency inherits it from here. The per-layer overheads are guesses too
# (positional arguments 5 and 6: decode step, prefill); each basis says where the number comes from.
DEFAULT_EFFICIENCY: dict[tuple[str, str], Efficiency] = {
    ("llamacpp", "gpu"): _default(
        0.4,
        0.3,
        0.1,
        "llama.cpp CUDA decode: ~40% of HBM/GDDR bandwidth plus ~40 us per layer per step of launches and syncs "
        "(~8-10 kernels per layer at ~5 us; a two-model fit of the H200 cells in benchmarks/results/gpu gave "
        "eta 0.39 and 48 us/layer); prefill with quantized MMQ kernels is a small fraction of the int8 tensor peak "
        "(0.04-0.07 on the H200 at pp512), no separate prefill overhead assumed",
        40e-6,
    ),
    ("llamacpp", "cpu"): _default(
        0.7,
        0.3,
        0.3,
        "llama.cpp CPU decode typically streams weights at 60-80% of a STREAM-triad bandwidth, plus ~20 us per "
        "layer per step of thread barriers between ops (guess); prefill runs AVX-512/VNNI dot products well "
        "below their nominal peak",
        20e-6,
    ),
    ("vllm", "gpu"): _default(
        0.7,
        0.5,
        0.5,
        "vLLM with CUDA graphs on 7B+ models reaches ~70% of HBM bandwidth at batch 1, with ~5 us per layer per "
        "step left after graph replay (guess); prefill GEMMs ~50% MFU",
        5e-6,
    ),
    ("vllm", "cpu"): _default(0.5, 0.3, 0.3, "vLLM's CPU build: assumed below llama.cpp's CPU path"),
    ("generic", "gpu"): _default(0.5, 0.3, 0.2, "unknown GPU backend: a middle-of-the-road guess"),
    ("generic", "cpu"): _default(0.5, 0.3, 0.2, "unknown CPU backend: a middle-of-the-road guess"),
}

_BACKEND_FAMILY = {"llamacpp": "llamacpp", "llamacpp_server": "llamacpp", "vllm_server": "vllm", "vllm": "vllm"}


def backend_family(backend_kind: str) -> str:
    """Collapse a backend kind or id (``llamacpp_server``, ``vllm_server``, ``llamacpp-server``) to its family."""
    key = backend_kind.replace("-", "_")
    return _BACKEND_FAMILY.get(key, "llamacpp" if key.startswith("llamacpp") else "generic")


def default_efficiency(backend_kind: str, tier_kind: Literal["gpu", "cpu"]) -> Efficiency:
    """The uncalibrated default for a backend on a tier kind (labelled as such in ``source``)."""
    return DEFAULT_EFFICIENCY[(backend_family(backend_kind), tier_kind)]


def peak_tflops(tier: TierSpec, fmt: QuantFormat) -> float:
    """Per-device dense tensor peak (TFLOPS or TOPS) that matmuls in ``fmt`` run at.

    GGUF quantized formats compute on int8 dot products (llama.cpp's MMQ kernels on CUDA, VNNI / maddubs on
    CPU, against int8-quantized activations), so they get ``int8_tops``; an 8-bit float format gets
    ``fp8_tflops`` where the device has FP8 tensor cores; everything else (f16/bf16/f32, and AWQ/GPTQ int4 whose
    kernels dequantize to fp16) gets ``fp16_tflops``. Calibration and projection must use this same rule so that
    η absorbs any mismatch consistently.
    """
    if fmt.file_format == "gguf" and fmt.bits_per_weight < 16:
        return tier.int8_tops
    if fmt.file_format == "safetensors" and fmt.bits_per_weight == 8:
        return tier.fp8_tflops or tier.fp16_tflops
    return tier.fp16_tflops


# llama.cpp's main tensor type per file type (llama_ftype), and its quantizer's fallback when a tensor's row
# length is not a multiple of the 256-weight k-quant block (llama-quant.cpp, tensor_type_fallback)
_FTYPE_KERNEL = {"F16": "f16", "BF16": "bf16", "Q8_0": "q8_0", "Q6_K": "q6_k", "Q5_K_M": "q5_k", "Q5_K_S": "q5_k"}
_FTYPE_KERNEL |= {"Q5_0": "q5_0", "Q5_1": "q5_1", "Q4_K_M": "q4_k", "Q4_K_S": "q4_k", "Q4_0": "q4_0", "Q4_1": "q4_1"}
_FTYPE_KERNEL |= {"Q3_K_M": "q3_k", "Q3_K_S": "q3_k", "Q2_K": "q2_k"}
_K_FALLBACK = {"q2_k": "q4_0", "q3_k": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0"}
QK_K = 256


def weight_kernel(fmt: QuantFormat, arch: Architecture) -> str | None:
    """The ggml weight type that carries most of a GGUF model's matmuls: the kernel its prefill (and decode) run.

    On a CPU the speed of a matmul depends on the weight type's kernel far more than on its bits (llama.cpp runs
    q8_0/q5_0 through llamafile's tinyBLAS, repacks q4_0/q4_k into interleaved blocks, and leaves q4_1 on plain
    dot products), so η is calibrated per kernel. A k-quant's main type falls back to a 32-block type when the
    model's hidden size (the row length of the q/k/v/gate/up weights) is not a multiple of 256: llama.cpp's
    quantizer does the same (q4_k -> q5_0, q6_k -> q8_0, ...). None for formats that are not GGUF file types.
    """
    if fmt.file_format != "gguf" or fmt.llama_ftype is None:
        return None
    kernel = _FTYPE_KERNEL.get(fmt.llama_ftype.upper())
    if kernel in _K_FALLBACK and arch.hidden_size % QK_K:
        return _K_FALLBACK[kernel]
    return kernel


class StepBreakdown(BaseModel):
    """One projected decode step for ``batch`` sequences, with each roofline term so a reader can see the limit."""

    model_config = ConfigDict(frozen=True)

    batch: int
    context: int
    tensor_parallel: int
    bytes_read: float = Field(description="bytes each device reads per step")
    flops: float = Field(description="FLOPs of the whole step, all devices together")
    t_mem: float = Field(description="seconds")
    t_compute: float = Field(description="seconds")
    t_comm: float = Field(description="seconds (tensor-parallel all-reduces; 0 without TP)")
    t_overhead: float = Field(default=0.0, description="seconds: layers x Efficiency.step_overhead_per_layer_s")
    step_s: float = Field(description="max(t_mem, t_compute) + t_comm + t_overhead")
    bound: Literal["memory", "compute"]
    per_user_tok_s: float = Field(description="1 / step_s: each sequence's decode speed")
    aggregate_tok_s: float = Field(description="batch / step_s")
    efficiency_source: str
    projected: Literal[True] = True


def _check_tp(tier: TierSpec, tensor_parallel: int | None) -> int:
    tp = tensor_parallel or 1
    if tp < 1 or tp > tier.devices:
        raise ValueError(f"tensor_parallel={tp} but tier '{tier.id}' has {tier.devices} device(s)")
    if tp > 1 and tier.interconnect_gbs is None:
        raise ValueError(f"tier '{tier.id}' has no interconnect_gbs for tensor parallelism")
    return tp


def _attn_terms(arch: Architecture) -> tuple[float, int, int, int]:
    """(FLOPs per layer per cached token, global layers, sliding-window layers, window) for attention."""
    if arch.attention == "none":
        return 0.0, 0, 0, 0
    if arch.mla is not None:
        per_ctx = 2.0 * arch.attention_heads * (2 * arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim)
    else:
        per_ctx = 4.0 * arch.attention_heads * arch.head_dim
    kv_layers = arch.kv_layers or arch.layers
    sliding = min(arch.sliding_window_layers or 0, kv_layers) if arch.sliding_window else 0
    return per_ctx, kv_layers - sliding, sliding, arch.sliding_window or 0


def _attn_flops_per_token(arch: Architecture, context: int) -> float:
    """FLOPs for one new token attending to ``context`` cached tokens, all layers (see module docstring)."""
    per_ctx, global_layers, sliding, window = _attn_terms(arch)
    return per_ctx * (global_layers * context + sliding * min(context, window))


def _allreduce_s(tier: TierSpec, tp: int, layers: int, message_bytes: float) -> float:
    if tp <= 1:
        return 0.0
    assert tier.interconnect_gbs is not None
    ring = 2 * (tp - 1) / tp * message_bytes / (tier.interconnect_gbs * 1e9)
    return layers * ALLREDUCES_PER_LAYER * (ring + ALLREDUCE_LATENCY_S)


def decode_step_s(
    model: ModelSpec,
    fmt: QuantFormat,
    tier: TierSpec,
    batch: int = 1,
    context: int = 0,
    eff: Efficiency | None = None,
    tensor_parallel: int | None = None,
    kv_bytes: float = 2.0,
) -> StepBreakdown:
    """Project one decode step. ``context`` is the tokens already in each sequence's KV cache.

    ``eff`` defaults to the uncalibrated llama.cpp default for the tier's kind. ``kv_bytes`` is bytes per cached
    element (2 for an fp16 cache).
    """
    if batch < 1 or context < 0:
        raise ValueError("batch must be >= 1 and context >= 0")
    eff = eff or default_efficiency("llamacpp", tier.kind)
    tp = _check_tp(tier, tensor_parallel)
    arch = model.arch
    bytes_read = (active_weight_bytes(model, fmt) + batch * kv_bytes_for_context(arch, context, kv_bytes)) / tp
    flops = batch * (2 * arch.active_params + _attn_flops_per_token(arch, context))
    t_mem = bytes_read / (tier.memory_bandwidth_gbs * 1e9 * eff.mem_eta(weight_kernel(fmt, arch)))
    t_compute = flops / (peak_tflops(tier, fmt) * 1e12 * tp * eff.eta_flops)
    t_comm = _allreduce_s(tier, tp, arch.layers, arch.hidden_size * batch * 2.0)
    t_overhead = arch.layers * eff.step_overhead_per_layer_s
    step = max(t_mem, t_compute) + t_comm + t_overhead
    return StepBreakdown(
        batch=batch,
        context=context,
        tensor_parallel=tp,
        bytes_read=bytes_read,
        flops=flops,
        t_mem=t_mem,
        t_compute=t_compute,
        t_comm=t_comm,
        t_overhead=t_overhead,
        step_s=step,
        bound="memory" if t_mem >= t_compute else "compute",
        per_user_tok_s=1.0 / step,
        aggregate_tok_s=batch / step,
        efficiency_source=eff.source,
    )


def prefill_flops(arch: Architecture, prompt_tokens: int) -> float:
    """Matmul FLOPs of a prompt: 2 x active params per token, except the vocabulary table, plus causal attention.

    The token embedding is a row lookup, not a matmul, and the output projection (the same table when tied) runs
    for the last prompt token only: llama.cpp and vLLM compute logits just for the positions that sample. So the
    ``vocab x hidden`` table costs ``2 x vocab x hidden`` once per prompt, not per token (for Gemma 3 270M it is
    63% of the weights). Attention: token i attends to the i tokens before it (or its window).
    """
    per_ctx, global_layers, sliding, window = _attn_terms(arch)
    p = prompt_tokens
    causal = p * (p - 1) / 2  # sum of i for i in 0..p-1
    windowed = causal if p - 1 <= window else window * (window + 1) / 2 + (p - 1 - window) * window
    table = min(float((arch.vocab_size or 0) * arch.hidden_size), arch.active_params)
    matmul = 2 * (arch.active_params - table) * p + 2 * table
    return matmul + per_ctx * (global_layers * causal + sliding * windowed)


def prefill_s(
    model: ModelSpec,
    fmt: QuantFormat,
    tier: TierSpec,
    prompt_tokens: int,
    eff: Efficiency | None = None,
    tensor_parallel: int | None = None,
) -> float:
    """Project the time to prefill one prompt: compute-bound, floored by reading the weights once.

    ``prefill_flops / (peak x TP x η_prefill)``, but never less than one pass over the active weights at
    ``bandwidth x η_mem`` (a short prompt cannot beat a decode step), plus the TP all-reduces of
    ``hidden x prompt_tokens x 2 bytes``, plus ``layers x prefill_overhead_per_layer_s`` (one forward pass's
    fixed cost; llama.cpp runs one pass per ``n_ubatch`` tokens, which the calibrated figure absorbs for the
    prompt lengths it was fitted on), plus ``prompt_tokens x layers x prefill_overhead_per_token_layer_s``
    (per-token work that does not scale with the weights, which the CPU calibration finds).
    """
    if prompt_tokens < 1:
        raise ValueError("prompt_tokens must be >= 1")
    eff = eff or default_efficiency("llamacpp", tier.kind)
    tp = _check_tp(tier, tensor_parallel)
    kernel = weight_kernel(fmt, model.arch)
    compute = prefill_flops(model.arch, prompt_tokens) / (peak_tflops(tier, fmt) * 1e12 * tp * eff.prefill_eta(kernel))
    floor = active_weight_bytes(model, fmt) / tp / (tier.memory_bandwidth_gbs * 1e9 * eff.mem_eta(kernel))
    comm = _allreduce_s(tier, tp, model.arch.layers, model.arch.hidden_size * prompt_tokens * 2.0)
    overhead = eff.prefill_overhead_per_layer_s + prompt_tokens * eff.prefill_overhead_per_token_layer_s
    return max(compute, floor) + comm + model.arch.layers * overhead


def ttft_ms(
    model: ModelSpec,
    fmt: QuantFormat,
    tier: TierSpec,
    prompt_tokens: int,
    eff: Efficiency | None = None,
    tensor_parallel: int | None = None,
) -> float:
    """Projected time to first token for a lone request: prefill plus one decode step at the prompt's context."""
    step = decode_step_s(model, fmt, tier, 1, prompt_tokens, eff, tensor_parallel).step_s
    return (prefill_s(model, fmt, tier, prompt_tokens, eff, tensor_parallel) + step) * 1000.0


def users_at_slo(
    model: ModelSpec,
    fmt: QuantFormat,
    tier: TierSpec,
    eff: Efficiency | None,
    ttft_ms_max: float,
    itl_ms_max: float,
    prompt_tokens: int,
    context: int,
    tensor_parallel: int | None = None,
    max_batch: int = 4096,
) -> int:
    """Largest number of concurrent users (decode batch) that meets both latency objectives; 0 if none does.

    Simple, deliberately conservative model:

    * ITL: a decode step at batch B with every sequence at ``context`` cached tokens must take <= ``itl_ms_max``.
    * TTFT: the worst case is a burst — all B users submit at once and prefills run one after another (as in
      llama.cpp's server without chunked prefill), so the last request waits B prefills and then one decode step
      at batch B: ``B x prefill_s(prompt) + step_s(B)`` <= ``ttft_ms_max``.

    Both sides grow with B, so the answer is found by bisection. KV-cache memory is not checked here (the memory
    side of the sizing caps B separately).
    """

    def ok(b: int) -> bool:
        step = decode_step_s(model, fmt, tier, b, context, eff, tensor_parallel).step_s
        if step * 1000.0 > itl_ms_max:
            return False
        return (b * pf + step) * 1000.0 <= ttft_ms_max

    pf = prefill_s(model, fmt, tier, prompt_tokens, eff, tensor_parallel)
    if not ok(1):
        return 0
    lo, hi = 1, max_batch
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def bandwidth_ceiling_tok_s(
    model: ModelSpec, fmt: QuantFormat, tier_bandwidth_gbs: float, context: int = 0, kv_bytes: float = 2.0
) -> float:
    """Batch-1 decode tok/s if every byte moved at full bandwidth (η = 1): the roofline a measured cell is held to."""
    per_token = active_weight_bytes(model, fmt) + kv_bytes_for_context(model.arch, context, kv_bytes)
    return tier_bandwidth_gbs * 1e9 / per_token


def roofline_pct(measured_decode_tok_s: float, ceiling: float) -> float:
    """A measured decode speed as a percentage of its bandwidth-bound ceiling (100 = at the roofline)."""
    if ceiling <= 0 or not math.isfinite(ceiling):
        raise ValueError("ceiling must be a positive, finite tok/s")
    return 100.0 * measured_decode_tok_s / ceiling
