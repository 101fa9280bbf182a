"""One cell on the node that runs it: fetch its weights through the sha256-verified store, run it, rate it.

The same code runs under both executors, so a cell's params and metrics do not depend on where it ran.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from lalo_bench.backends import runtime_info
from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.executors.base import CellOutcome, CellTask, NodeInfo
from lalo_bench.models import quantize, store
from lalo_bench.models.store import ByteProgress
from lalo_bench.results import Cell, CellResult, ItemRecord
from lalo_bench.runner import CellJob, run_cell_isolated
from lalo_bench.suites import ORACLES


def execute_cell(
    catalog: Catalog,
    task: CellTask,
    node: NodeInfo,
    on_bytes: ByteProgress = lambda done, total: None,
    on_item: Callable[[ItemRecord], None] = lambda record: None,
) -> CellOutcome:
    """Run ``task`` here. A failure the user can act on comes back as the outcome's one-line error."""
    cell = task.cell
    backend = catalog.backend(cell.backend)
    tier = catalog.tier(cell.tier)
    try:
        weights, params = cell_weights(catalog, cell, on_bytes)
        params = {**params, **runtime_info(backend)}
        gpu_layers = _gpu_layers(backend.kind, tier.kind)
    except LaloError as exc:
        return CellOutcome(error=str(exc), node=node)
    generation = task.generation
    if cell.max_tokens is not None:
        generation = generation.model_copy(update={"max_tokens": cell.max_tokens})
    job = CellJob(cell=cell, weights=weights, backend=backend, generation=generation, gpu_layers=gpu_layers)
    try:
        result = run_cell_isolated(job, on_item)
    except LaloError as exc:
        return CellOutcome(error=str(exc), params=params, node=node)
    bandwidth = node_bandwidth_gbs() if tier.kind == "cpu" else None
    return CellOutcome(result=with_roofline(result, bandwidth, params.get("weights_bytes")), params=params, node=node)


def cell_weights(catalog: Catalog, cell: Cell, on_bytes: ByteProgress) -> tuple[str | None, dict[str, str]]:
    """The verified weights file of a cell (pulled or derived on first use) and the params that pin it."""
    if cell.backend in ORACLES:
        return None, {"weights_sha256": "none (reference backend)"}
    artifact = quantize.ensure(catalog, cell.model, cell.quant, progress=on_bytes)
    params = {
        "weights_sha256": artifact.sha256,
        "weights_bytes": str(artifact.size_bytes),
        "weights_origin": artifact.origin,
        "requantized": str(artifact.requantized),
    }
    return str(store.model_dir(cell.model) / artifact.file), params


def _gpu_layers(backend_kind: str, tier_kind: str) -> int:
    """All layers on the GPU on a GPU tier; refused where this node's llama.cpp was built without GPU support."""
    if backend_kind != "llamacpp" or tier_kind != "gpu":
        return 0
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        raise LaloError(
            "this node's llama-cpp-python has no GPU support, so a GPU-tier cell would run on its CPU; reinstall it "
            "with CMAKE_ARGS=-DGGML_CUDA=on"
        )
    return -1


@functools.cache
def node_bandwidth_gbs() -> float:
    """This machine's STREAM-triad bandwidth, measured once per process (a few seconds)."""
    from lalo_bench.hardware.stream import measure_triad

    return measure_triad().gbs


def with_roofline(result: CellResult, bandwidth_gbs: float | None, weights_bytes: str | None) -> CellResult:
    """Decode speed against the bandwidth-bound ceiling: every decoded token reads the whole weights file once.

    (The KV cache read is left out: at these contexts it is under 1% of a weights pass.)
    """
    if bandwidth_gbs is None:
        return result
    result = result.model_copy(update={"stream_triad_gbs": bandwidth_gbs})
    decode = result.latency.decode_tok_s
    if not weights_bytes or not decode:
        return result
    ceiling = bandwidth_gbs * 1e9 / int(weights_bytes)
    return result.model_copy(update={"roofline_ceiling_tok_s": ceiling, "roofline_pct": 100.0 * decode / ceiling})
