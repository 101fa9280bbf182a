"""One answer for a model on a tier: does it fit, how fast, how many users — always labelled projected.

Joins the memory model (:mod:`~lalo_bench.hardware.memory`) and the roofline
(:mod:`~lalo_bench.hardware.roofline`); the efficiencies are the backend's
calibrated ones when given, else its documented defaults, and the result says
which.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.hardware.memory import (
    MemoryEstimate,
    engine_for,
    estimate,
    max_users,
    usual_backend,
    usual_quant,
)
from lalo_bench.hardware.roofline import Efficiency, decode_step_s, default_efficiency, ttft_ms, users_at_slo

PLAN_MODELS = ("deepseek-v3", "hermes-4-405b", "hermes-4-70b", "lfm2-350m", "lfm2-1.2b", "hrm-27m")
PLAN_TIERS = ("minimal", "small", "medium", "large", "enterprise")
"""The plan's five hardware tiers (RTX 4060 Ti to 8x A100 80 GB)."""


class Projection(BaseModel):
    """Fit and speed of one model × quant × backend on one tier, never measured here."""

    model: str
    quant: str
    backend: str
    tier: str
    measured: bool = Field(default=False, description="always False: a projection, not a measurement")
    fits: bool
    memory_required_gb: float
    memory_available_gb: float
    memory: MemoryEstimate
    users: int
    context_tokens: int
    prompt_tokens: int
    decode_tok_s: float | None = Field(description="per user at `users` concurrent decodes; None when it does not fit")
    aggregate_tok_s: float | None
    ttft_ms: float | None = Field(description="one request's prompt on an idle server")
    bound: str | None = Field(description="memory or compute, for the decode step")
    users_at_slo: int | None = Field(
        description="concurrent users within the TTFT and ITL objectives, over all the tier's replicas"
    )
    replicas: int = Field(default=1, description="copies of the deployment the tier's devices hold side by side")
    slo_ttft_ms: float
    slo_itl_ms: float
    efficiency: Efficiency
    expected_error_pct: float | None = Field(
        default=None, description="leave-one-out median |error| of decode tok/s of the calibration used"
    )
    notes: list[str] = Field(default_factory=list)


def project(
    catalog: Catalog,
    model_id: str,
    tier_id: str,
    quant: str | None = None,
    backend_id: str | None = None,
    users: int = 1,
    context_tokens: int = 4096,
    prompt_tokens: int = 512,
    slo_ttft_ms: float = 2000.0,
    slo_itl_ms: float = 100.0,
    eff: Efficiency | None = None,
    calibration: Calibration | None = None,
) -> Projection:
    """Project ``model_id`` on ``tier_id``; quant and backend default to the tier's usual ones.

    Efficiencies: ``eff`` when given, else the calibration's for this backend and device kind, else the
    backend's uncalibrated defaults.
    """
    try:
        model, tier = catalog.model(model_id), catalog.tier(tier_id)
    except KeyError as exc:
        raise LaloError(str(exc.args[0])) from None
    quant = quant or usual_quant(model, tier)
    if quant not in model.quants:
        raise LaloError(f"model '{model_id}' has no quant '{quant}' (it has: {', '.join(model.quants)})")
    backend_id = backend_id or usual_backend(catalog, quant, tier)
    backend = catalog.backend(backend_id)
    fmt = catalog.quant_formats[quant]
    mem = estimate(catalog, model_id, quant, backend_id, tier_id, users=users, context_tokens=context_tokens)
    expected_error: float | None = None
    if eff is None and calibration is not None:
        eff, expected_error = calibration.for_backend(backend.kind, tier.kind)
    eff = eff or default_efficiency(backend.kind, tier.kind)
    decode = aggregate = first = None
    bound: str | None = None
    carried: int | None = None
    replicas = 1
    notes = list(mem.notes)
    if mem.fits and backend.kind != "hrm":
        # vLLM's tensor parallelism reads each GPU's share at once; llama.cpp's layer split runs the GPUs one
        # after another for a token, so its step is one GPU's bandwidth over all the weights
        split = mem.devices_used > 1
        tp = mem.devices_used if split and engine_for(backend, fmt) == "vllm" else None
        if split and tp is None:
            notes.append(
                f"llama.cpp splits layers over {mem.devices_used} GPUs: each token passes through them in turn, "
                "so decode and prompt speed are those of one GPU reading all the weights"
            )
        step = decode_step_s(model, fmt, tier, batch=users, context=context_tokens, eff=eff, tensor_parallel=tp)
        decode, aggregate, bound = step.per_user_tok_s, step.aggregate_tok_s, step.bound
        first = ttft_ms(model, fmt, tier, prompt_tokens, eff, tp)
        carried = users_at_slo(model, fmt, tier, eff, slo_ttft_ms, slo_itl_ms, prompt_tokens, context_tokens, tp)
        # a deployment that needs fewer devices than the tier has is served as replicas, each carrying as many
        replicas = max(1, tier.devices // max(1, mem.devices_used))
        room = max_users(catalog, model_id, quant, backend_id, tier_id, context_tokens, devices=mem.devices_used)
        if room < carried:
            notes.append(
                f"speed would carry {carried} users within the SLO, memory only {room} at {context_tokens} tokens"
            )
            carried = room
        if replicas > 1:
            notes.append(
                f"{replicas} replicas of {mem.devices_used} device(s) each: users at SLO counted over all of them"
            )
            carried *= replicas
        if mem.offload_gb > 0:
            notes.append(
                f"{mem.offload_gb:.0f} GB of weights sit in system RAM: decode speed is bounded by the host "
                "memory path, which this projection does not model — treat its speed as an upper bound"
            )
    elif backend.kind == "hrm":
        notes.append(
            "HRM answers a puzzle in one pass of its recurrent modules, not token by token: no speed projected"
        )
    if not eff.calibrated:
        notes.append(f"efficiencies are {eff.source}: an uncalibrated projection")
    return Projection(
        model=model_id,
        quant=quant,
        backend=backend_id,
        tier=tier_id,
        fits=mem.fits,
        memory_required_gb=mem.required_gb,
        memory_available_gb=mem.available_gb,
        memory=mem,
        users=users,
        context_tokens=context_tokens,
        prompt_tokens=prompt_tokens,
        decode_tok_s=decode,
        aggregate_tok_s=aggregate,
        ttft_ms=first,
        replicas=replicas,
        bound=bound,
        users_at_slo=carried,
        slo_ttft_ms=slo_ttft_ms,
        slo_itl_ms=slo_itl_ms,
        efficiency=eff,
        expected_error_pct=expected_error,
        notes=notes,
    )


def plan_table(
    catalog: Catalog,
    models: tuple[str, ...] = PLAN_MODELS,
    tiers: tuple[str, ...] = PLAN_TIERS,
    slo_ttft_ms: float = 2000.0,
    calibration: Calibration | None = None,
) -> list[Projection]:
    """The plan's models on the plan's tiers at their usual quantizations, one user, 4k context."""
    return [project(catalog, m, t, slo_ttft_ms=slo_ttft_ms, calibration=calibration) for t in tiers for m in models]
