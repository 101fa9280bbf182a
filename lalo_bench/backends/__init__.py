"""Backends by catalog kind. Each module implements :class:`~lalo_bench.backends.base.Backend`."""

from __future__ import annotations

from pathlib import Path

from lalo_bench.backends.base import Backend
from lalo_bench.config import BackendSpec, GenerationSettings
from lalo_bench.errors import BackendError

SWEEPABLE_KINDS = ("llamacpp", "solver", "hrm")
"""Backend kinds a sweep can start by itself today; server kinds arrive with the load-testing work."""


def open_backend(spec: BackendSpec, weights: Path | None, settings: GenerationSettings, gpu_layers: int = 0) -> Backend:
    """Load ``weights`` into the backend ``spec`` describes (reference backends take none)."""
    if spec.kind == "solver":
        from lalo_bench.backends.solver import SolverBackend

        return SolverBackend()
    if weights is None:
        raise BackendError(f"backend '{spec.id}' needs a weights file")
    if spec.kind == "llamacpp":
        from lalo_bench.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(
            weights, n_ctx=settings.n_ctx, n_threads=settings.n_threads, seed=settings.seed, gpu_layers=gpu_layers
        )
    if spec.kind == "hrm":
        from lalo_bench.backends.hrm import HrmBackend

        return HrmBackend(weights)
    raise BackendError(
        f"backend '{spec.id}' (kind {spec.kind}) cannot run sweep cells yet; use one of: {', '.join(SWEEPABLE_KINDS)}"
    )


def runtime_info(spec: BackendSpec) -> dict[str, str]:
    """Versions worth logging beside a cell's results."""
    if spec.kind == "llamacpp":
        import llama_cpp

        return {"llama_cpp_python": llama_cpp.__version__}
    if spec.kind == "hrm":
        import torch

        return {"torch": torch.__version__}
    return {}
