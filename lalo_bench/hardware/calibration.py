"""Fit the roofline efficiencies η on measured cells, and say how well they predict (leave-one-out).

A measured cell is self-contained: it carries the numbers its own roofline needs (bytes per token, architecture,
bandwidth and peak of the hardware it ran on), so cells from llama-bench files, from the sweep's MLflow runs or
typed in by hand are treated alike. Calibration is per backend family on one device kind.

Decode: a measured step time ``1 / tok/s`` is modelled as ``ideal / η_mem + layers x overhead``, where ``ideal``
is the step at the bandwidth ceiling (η = 1) and ``overhead`` the fixed cost per layer (launches, syncs, barriers)
that makes small models reach a lower fraction of the bandwidth. Prefill likewise: ``prompt / compute ceiling / η
+ layers x prefill overhead``. Both pairs are fitted by least squares on *relative* residuals (the figure of merit
is a percentage error, so a fast cell must not count for less than a slow one), with the overhead held >= 0. With
a single cell, or cells whose ideal time and layer count are proportional (one model shape only), the two cannot
be told apart and the fit falls back to η alone — the median of measured / ceiling, so one odd cell cannot drag
it. The decode-compute η (large batches) cannot be fitted from batch-1 cells, which are memory-bound, so it stays
at the default and ``Efficiency.source`` says so.

η per weight kernel: on a CPU the matmul kernel of the weight type (:func:`roofline.weight_kernel`) sets how
much of the peak (prefill) and of the bandwidth (decode) is reached, so each kernel with two or more cells gets
its own η beside overheads shared by all kernels; a kernel with fewer gets the pooled η. Prefill may also carry a
cost per prompt token per layer (:func:`fit_prefill`), which cells measured at two prompt lengths can tell from
the per-prompt one. With one kernel and one prompt length in the group (the H200 cells) this is the plain fit
above.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lalo_bench import datafiles
from lalo_bench.config import Architecture, Catalog, ModelSpec, QuantFormat, TierSpec, load_catalog
from lalo_bench.hardware.memory import active_weight_bytes, kv_bytes_for_context
from lalo_bench.hardware.roofline import (
    Efficiency,
    backend_family,
    default_efficiency,
    peak_tflops,
    prefill_flops,
    roofline_pct,
    weight_kernel,
)

# The measured cells ship with lalo-bench (benchmarks/results); these paths are relative to its data root (shipped()).
H200_LLAMA_BENCH = Path("benchmarks/results/gpu/20261126-h200/llama-bench.json")
GPU_RESULTS = Path("benchmarks/results/gpu")
"""One folder per GPU run of ``benchmarks/gpu_cells.sh``; each ``llama-bench.json`` in it is calibration input."""
CPU_CELLS = Path("benchmarks/results/cpu_cells.json")
CPU_BENCH_CELLS = Path("benchmarks/results/cpu_bench_cells.json")


class MeasuredCell(BaseModel):
    """One measured model x quant x backend x hardware point, with what its roofline needs."""

    model_config = ConfigDict(frozen=True)

    model: str
    quant: str
    backend: str = Field(description="backend id or kind; η is fitted per backend family (llamacpp, vllm, …)")
    config: str = Field(default="", description="backend settings that distinguish cells, e.g. 'fa=1'")
    hardware: str = Field(description="tier id, or a label for hardware outside the catalog")
    device_kind: Literal["gpu", "cpu"]
    arch: Architecture
    weight_bytes: float = Field(gt=0, description="bytes read per decoded token (active weights)")
    decode_tok_s: float = Field(gt=0, description="measured batch-1 decode speed")
    decode_context: float = Field(default=0, ge=0, description="mean tokens in the KV cache while decoding")
    prefill_tok_s: float | None = Field(default=None, gt=0, description="measured prompt-processing speed")
    ttft_ms: float | None = Field(default=None, gt=0)
    prompt_tokens: int | None = Field(default=None, gt=0, description="prompt length behind prefill/TTFT")
    bandwidth_gbs: float = Field(gt=0, description="per device: spec sheet (GPU) or STREAM triad (CPU)")
    peak_tflops: float = Field(gt=0, description="per device tensor peak for the format (roofline.peak_tflops)")
    kv_bytes: float = Field(default=2.0, gt=0, description="bytes per cached KV element (2 = fp16 cache)")
    kernel: str | None = Field(default=None, description="main weight type of the matmuls (roofline.weight_kernel)")
    series: str | None = Field(
        default=None,
        description="cells sharing a series are one setup measured at several prompt lengths; leave-one-out "
        "holds them out together",
    )
    source: str = Field(description="where the numbers came from (file, run id, date)")

    @property
    def label(self) -> str:
        cfg = f"[{self.config}]" if self.config else ""
        return f"{self.model}/{self.quant}/{self.backend}{cfg}@{self.hardware}"

    @property
    def group(self) -> str:
        """The calibration group: backend family on a device kind (``llamacpp/gpu``)."""
        return f"{backend_family(self.backend)}/{self.device_kind}"

    def decode_ceiling_tok_s(self, context: float | None = None) -> float:
        """Bandwidth-bound batch-1 decode tok/s (η = 1) at ``context`` cached tokens (default: the measured one)."""
        ctx = round(self.decode_context if context is None else context)
        per_token = self.weight_bytes + kv_bytes_for_context(self.arch, ctx, self.kv_bytes)
        return self.bandwidth_gbs * 1e9 / per_token

    @property
    def roofline_pct(self) -> float:
        """Measured decode as a percentage of its bandwidth-bound ceiling (the issue's per-cell report)."""
        return roofline_pct(self.decode_tok_s, self.decode_ceiling_tok_s())

    def prefill_ceiling_tok_s(self) -> float | None:
        """Compute-bound prompt tok/s (η = 1) for ``prompt_tokens``; None without a prompt length."""
        if self.prompt_tokens is None:
            return None
        flops_per_token = prefill_flops(self.arch, self.prompt_tokens) / self.prompt_tokens
        return self.peak_tflops * 1e12 / flops_per_token

    def measured_prefill_tok_s(self) -> float | None:
        """Measured prefill speed, or one derived from TTFT (TTFT minus one measured decode step)."""
        if self.prefill_tok_s is not None:
            return self.prefill_tok_s
        if self.ttft_ms is None or self.prompt_tokens is None:
            return None
        prefill_ms = self.ttft_ms - 1000.0 / self.decode_tok_s
        return self.prompt_tokens / (prefill_ms / 1000.0) if prefill_ms > 0 else None


def cell_from_measurement(
    model: ModelSpec,
    fmt: QuantFormat,
    quant: str,
    backend: str,
    tier: TierSpec,
    decode_tok_s: float,
    *,
    source: str,
    bandwidth_gbs: float | None = None,
    prefill_tok_s: float | None = None,
    ttft_ms: float | None = None,
    prompt_tokens: int | None = None,
    decode_context: float = 0,
    config: str = "",
    kv_bytes: float = 2.0,
    series: str | None = None,
) -> MeasuredCell:
    """A cell from plain measured numbers (e.g. the sweep's CPU cells read back from MLflow by the caller).

    ``bandwidth_gbs`` overrides the tier's figure — pass the STREAM triad result for a CPU tier, since the
    catalog's CPU bandwidth is a placeholder.
    """
    return MeasuredCell(
        model=model.id,
        quant=quant,
        backend=backend,
        config=config,
        hardware=tier.id,
        device_kind=tier.kind,
        arch=model.arch,
        weight_bytes=active_weight_bytes(model, fmt),
        decode_tok_s=decode_tok_s,
        decode_context=decode_context,
        prefill_tok_s=prefill_tok_s,
        ttft_ms=ttft_ms,
        prompt_tokens=prompt_tokens,
        bandwidth_gbs=bandwidth_gbs or tier.memory_bandwidth_gbs,
        peak_tflops=peak_tflops(tier, fmt),
        kv_bytes=kv_bytes,
        kernel=weight_kernel(fmt, model.arch),
        series=series,
        source=source,
    )


# Shapes of the synthetic-weight GGUFs the GPU cells ran. Parameter counts are overridden by llama-bench's
# model_n_params, which counts what the file really holds (e.g. untied embeddings). A shape the catalog already
# holds is read from it; Llama-3.1-8B has no catalog entry, so its published config.json figures live here.
_CATALOG_SHAPES: dict[str, str] = {"qwen2.5-1.5b": "qwen2.5-coder-1.5b-instruct"}
_OTHER_SHAPES: dict[str, dict[str, object]] = {
    "llama-3.1-8b": dict(
        family="llama",
        params_b=8.03,
        layers=32,
        hidden_size=4096,
        attention_heads=32,
        kv_heads=8,
        head_dim=128,
        context_length=131072,
        vocab_size=128256,
        attention="gqa",
    ),
}


def _arch_for(filename: str, n_params: float | None, catalog: Catalog) -> Architecture:
    stem = Path(filename).name.lower()
    shapes = {key: catalog.model(model_id).arch.model_dump() for key, model_id in _CATALOG_SHAPES.items()}
    shapes.update(_OTHER_SHAPES)
    for key, shape in shapes.items():
        if key in stem:
            fields = dict(shape)
            if n_params:
                fields["params_b"] = n_params / 1e9
            return Architecture.model_validate(fields)
    raise ValueError(f"no known architecture for llama-bench model '{filename}' (known: {', '.join(shapes)})")


def _quant_for(filename: str, catalog: Catalog) -> str:
    stem = Path(filename).name.lower().removesuffix(".gguf")
    matches = [q for q in catalog.quant_formats if re.search(rf"[-_.]{re.escape(q)}$", stem)]
    if not matches:
        raise ValueError(f"cannot tell the quant of '{filename}' from its name")
    return max(matches, key=len)


def _tier_for(gpu_info: str, catalog: Catalog) -> TierSpec:
    """The catalog GPU tier of a device name as the driver reports it.

    The driver's name and the catalog's differ in packaging words ("NVIDIA H100 80GB HBM3" vs "NVIDIA H100 80GB
    SXM5"), so a tier matches when its device holds every model and memory token of the reported name
    (``H100``, ``80GB``) and is the only such single-GPU tier.
    """
    tokens = [t for t in re.findall(r"[a-z]*\d+[a-z]*", gpu_info.lower()) if not t.startswith("hbm")]
    found = [
        t
        for t in catalog.tiers
        if t.kind == "gpu" and t.devices == 1 and tokens and all(tok in t.device.lower().split() for tok in tokens)
    ]
    if len(found) != 1:
        raise ValueError(f"cannot match gpu_info '{gpu_info}' to one catalog tier; pass tier=")
    return found[0]


def shipped(relative: Path) -> Path:
    """A file of the shipped benchmark results, wherever lalo-bench is installed."""
    return datafiles.data_root() / relative


def _label(path: Path) -> str:
    """How a cell names its source file: relative to the data root when shipped, so no machine path is logged."""
    try:
        return path.resolve().relative_to(datafiles.data_root().resolve()).as_posix()
    except ValueError:
        return datafiles.portable(str(path))


def gpu_llama_bench_files(root: Path | None = None) -> list[Path]:
    """Every shipped GPU run's llama-bench file, oldest first (the folders are named by date)."""
    return sorted(((root or datafiles.data_root()) / GPU_RESULTS).glob("*/llama-bench.json"))


def cells_from_llama_bench(
    path: str | Path | None = None,
    tier: TierSpec | None = None,
    backend: str = "llamacpp",
    catalog: Catalog | None = None,
) -> list[MeasuredCell]:
    """Cells from a llama-bench ``-o json`` file: tg rows give decode tok/s, pp rows prefill tok/s.

    Rows are paired per model file and backend settings (flash attention, KV types, depth), one cell each.
    Bytes per token are llama-bench's ``model_size`` (the tensor bytes of the file) and parameters its
    ``model_n_params``; the hardware is the catalog tier whose device matches ``gpu_info`` unless ``tier`` is
    given. Decode context is ``n_depth + n_gen / 2``, the mean fill of the cache over a tg run.
    """
    path = Path(path) if path is not None else shipped(H200_LLAMA_BENCH)
    catalog = catalog or load_catalog()
    rows = json.loads(path.read_text(encoding="utf-8"))
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for row in rows:
        key = (row["model_filename"], row.get("flash_attn"), row.get("type_k"), row.get("type_v"), row.get("n_depth"))
        kind = "tg" if row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0 else "pp"
        if kind == "pp" and (row.get("n_gen", 0) > 0 or row.get("n_prompt", 0) == 0):
            continue  # pg (prompt + generation) rows mix both phases
        groups.setdefault(key, {})[kind] = row
    cells = []
    for (filename, fa, type_k, _type_v, depth), pair in groups.items():
        if "tg" not in pair:
            continue
        tg, pp = pair["tg"], pair.get("pp")
        arch = _arch_for(str(filename), float(tg["model_n_params"]), catalog)
        quant = _quant_for(str(filename), catalog)
        fmt = catalog.quant_formats[quant]
        hw = tier or _tier_for(str(tg.get("gpu_info") or ""), catalog)
        stem = Path(str(filename)).name.removesuffix(".gguf")
        cells.append(
            MeasuredCell(
                model=re.sub(rf"[-_.]{re.escape(quant)}$", "", stem, flags=re.IGNORECASE),
                quant=quant,
                backend=backend,
                config=f"fa={fa}" + (f",kv={type_k}" if type_k not in (None, "f16") else ""),
                hardware=hw.id,
                device_kind=hw.kind,
                arch=arch,
                weight_bytes=float(tg["model_size"]),
                decode_tok_s=float(tg["avg_ts"]),
                decode_context=float(depth or 0) + float(tg["n_gen"]) / 2,
                prefill_tok_s=float(pp["avg_ts"]) if pp else None,
                prompt_tokens=int(pp["n_prompt"]) if pp else None,
                bandwidth_gbs=hw.memory_bandwidth_gbs,
                peak_tflops=peak_tflops(hw, fmt),
                kv_bytes=1.0 if str(type_k).startswith("q8") else 2.0,
                kernel=weight_kernel(fmt, arch),
                source=f"llama-bench {_label(path)} ({tg.get('gpu_info')}, {tg.get('backends')}, "
                f"{tg.get('test_time')})",
            )
        )
    return cells


def _cpu_cells(
    path: Path,
    catalog: Catalog | None,
    bytes_per_token: Literal["catalog", "file"],
    file_bytes_key: str,
    per_row: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> list[MeasuredCell]:
    """The CPU results files' shared reading: one cell per row at the file's STREAM triad; ``per_row`` gives the
    keyword arguments of :func:`cell_from_measurement` that differ between the files."""
    catalog = catalog or load_catalog()
    data = json.loads(path.read_text(encoding="utf-8"))
    bandwidth = float(data["bandwidth"]["triad_gbs"])
    cells = []
    for row in data["cells"]:
        cell = cell_from_measurement(
            catalog.model(row["model"]),
            catalog.quant_formats[row["quant"]],
            row["quant"],
            row["backend"],
            catalog.tier(row["tier"]),
            float(row["decode_tok_s"]),
            bandwidth_gbs=bandwidth,
            **per_row(data, row),
        )
        if bytes_per_token == "file":
            if not row.get(file_bytes_key):
                raise ValueError(f"{row['model']}/{row['quant']}: no {file_bytes_key} in {path}")
            cell = cell.model_copy(update={"weight_bytes": float(row[file_bytes_key])})
        cells.append(cell)
    return cells


def cells_from_cpu_json(
    path: str | Path | None = None,
    catalog: Catalog | None = None,
    bytes_per_token: Literal["catalog", "file"] = "catalog",
) -> list[MeasuredCell]:
    """Cells from ``benchmarks/results/cpu_cells.json`` (written by ``benchmarks/export_cpu_cells.py``).

    The file holds measurements only; architecture comes from the catalog and the bandwidth is the STREAM triad
    recorded in the file. Bytes per token are the catalog's (``params x bits / 8``, the rule the projection uses,
    so η absorbs its bias consistently) unless ``bytes_per_token="file"``, which takes the GGUF size the runs
    logged (closer to the bytes really read for tiny models, whose embeddings stay at a wider type).
    """
    path = Path(path) if path is not None else shipped(CPU_CELLS)
    return _cpu_cells(
        path,
        catalog,
        bytes_per_token,
        "weights_bytes",
        lambda _data, row: dict(
            source=f"{_label(path)} runs {','.join(r[:8] for r in row['run_ids'])} ({', '.join(row['dates'])})",
            prefill_tok_s=row.get("prefill_tok_s"),
            ttft_ms=row.get("ttft_ms"),
            prompt_tokens=row.get("prompt_tokens"),
            decode_context=float(row.get("decode_context") or 0),
        ),
    )


def cells_from_cpu_bench(
    path: str | Path | None = None,
    catalog: Catalog | None = None,
    bytes_per_token: Literal["catalog", "file"] = "catalog",
) -> list[MeasuredCell]:
    """Cells from ``benchmarks/results/cpu_bench_cells.json`` (written by ``benchmarks/cpu_cells_bench.py``).

    One cell per model x quant x prompt length: the medians over the clean repeats of prefill tok/s, TTFT and
    decode tok/s (decoding right after that prompt), at the STREAM triad recorded in the same run. The prompt
    lengths of one GGUF form a ``series``, so leave-one-out holds them out together. Bytes per token as in
    :func:`cells_from_cpu_json`; ``"file"`` takes the GGUF's size.
    """
    path = Path(path) if path is not None else shipped(CPU_BENCH_CELLS)
    return _cpu_cells(
        path,
        catalog,
        bytes_per_token,
        "file_bytes",
        lambda data, row: dict(
            source=f"{path.name} ({data['started_at']}, {row['clean_repeats']} clean repeats)",
            prefill_tok_s=float(row["prefill_tok_s"]),
            ttft_ms=float(row["ttft_ms"]),
            prompt_tokens=int(row["prompt_tokens"]),
            decode_context=float(row["decode_context"]),
            series=f"{path.name}:{row['model']}/{row['quant']}",
        ),
    )


def calibration_id(cells: list[MeasuredCell]) -> str:
    """A short stable hash of the cells, so a projection can cite exactly which measurements it came from."""
    blob = json.dumps(sorted(c.model_dump_json() for c in cells)).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


class OverheadFit(NamedTuple):
    """η and a fixed per-layer cost fitted on measured times; ``method`` says whether the overhead was fitted."""

    eta: float
    overhead_per_layer_s: float
    method: Literal["least squares", "eta only"]
    cells: int

    def describe(self) -> str:
        if self.method == "eta only":
            return f"eta {self.eta:.3g} (median of {self.cells}, no overhead)"
        return f"eta {self.eta:.3g} + {self.overhead_per_layer_s * 1e6:.3g} us/layer (least squares, {self.cells})"


MAX_ETA = 1.5  # Efficiency's bound: a fit beyond it is not physical, so it falls back to η alone
_DEGENERATE = 1e-6  # ~1 - cos² between regressors below which they are treated as proportional (see _well_conditioned)


def fit_eta_overhead(
    ideal_s: Sequence[float], layers: Sequence[float], measured_s: Sequence[float], fit_overhead: bool = True
) -> OverheadFit:
    """Fit ``measured ≈ ideal / η + layers x overhead`` (overhead >= 0) by least squares on relative residuals.

    ``ideal_s`` is each cell's time at the roofline (η = 1). Dividing each row by its measured time makes the
    residuals relative, which is what the leave-one-out error measures. Falls back to η alone (median of
    ideal / measured, overhead 0) with fewer than two cells, when ideal time and layers are proportional over the
    cells (the two terms cannot be separated), when the unconstrained overhead comes out negative (the
    non-negativity bound is active) or when η would leave (0, 1.5].
    """
    if not (len(ideal_s) == len(layers) == len(measured_s)) or not measured_s:
        raise ValueError("need the same, non-zero number of ideal times, layer counts and measured times")
    fit = fit_eta_overhead_by_kernel(ideal_s, measured_s, [None] * len(measured_s), {"layer": layers}, fit_overhead)
    return OverheadFit(fit.eta, fit.overhead("layer"), fit.method, fit.cells)


class KernelFit(NamedTuple):
    """η per weight kernel plus fixed costs shared by all kernels; ``eta`` is the η for kernels not fitted.

    ``overheads`` maps each fixed-cost term to its fitted seconds per unit (``"layer"``: per layer per pass,
    ``"token_layer"``: per prompt token per layer); a term left out of the fit is absent.
    """

    eta: float
    by_kernel: dict[str, float]
    overheads: dict[str, float]
    method: Literal["least squares", "eta only"]
    cells: int

    def overhead(self, term: str) -> float:
        return self.overheads.get(term, 0.0)

    def describe(self) -> str:
        etas = f"eta {self.eta:.3g}"
        if self.by_kernel:
            etas += " (" + ", ".join(f"{k} {eta:.3g}" for k, eta in sorted(self.by_kernel.items())) + ")"
        if self.method == "eta only":
            return f"{etas} (medians of {self.cells}, no overhead)"
        costs = " + ".join(f"{s * 1e6:.3g} us/{term.replace('_', '/')}" for term, s in self.overheads.items())
        return f"{etas} + {costs} (least squares, {self.cells})"


MIN_KERNEL_CELLS = 2  # a weight kernel gets its own η only with at least this many cells


def _well_conditioned(design: np.ndarray) -> bool:
    """Columns independent enough to separate: smallest / largest singular value of the unit-norm columns above
    sqrt(``_DEGENERATE``) (for two columns at angle θ that ratio is about sin θ / 2, so this is 1 - cos² > 4e-6)."""
    cols = design / np.linalg.norm(design, axis=0)
    sv = np.linalg.svd(cols, compute_uv=False)
    return bool(sv[-1] > math.sqrt(_DEGENERATE) * sv[0])


def fit_eta_overhead_by_kernel(
    ideal_s: Sequence[float],
    measured_s: Sequence[float],
    kernels: Sequence[str | None],
    overhead_units: dict[str, Sequence[float]],
    fit_overhead: bool = True,
) -> KernelFit:
    """Fit ``measured ≈ ideal / η_kernel + Σ units x overhead`` with the overheads (>= 0) shared by all kernels.

    ``overhead_units`` gives, per fixed-cost term, each cell's count of it (layers; prompt tokens x layers).
    Each weight kernel with at least :data:`MIN_KERNEL_CELLS` cells gets its own η; the rest share one column,
    so their cells still inform the overheads. Least squares on relative residuals, as :func:`fit_eta_overhead`.
    Every subset of the terms is tried (all first, then fewer, in the order given) and the best fit whose
    columns can be told apart, whose overheads are >= 0 and whose η stay in (0, 1.5] is kept; a later subset
    must fit strictly better, so when two terms are indistinguishable (one prompt length only) the first one
    given stays. With no term left, η per kernel is the median of ideal / measured. ``eta`` is the least-squares
    η over every cell at the chosen overheads: what a kernel without its own η gets.
    """
    n = len(measured_s)
    if not n or len(ideal_s) != n or len(kernels) != n or any(len(x) != n for x in overhead_units.values()):
        raise ValueError("need the same, non-zero number of ideal times, measured times, kernels and overhead units")
    counts = {k: sum(1 for kk in kernels if kk == k) for k in set(kernels) if k is not None}
    own = sorted(k for k, c in counts.items() if c >= MIN_KERNEL_CELLS and len(set(kernels)) > 1)
    measured = np.array(measured_s)
    u = np.array(ideal_s) / measured
    column = [own.index(k) if k in own else len(own) for k in kernels]  # the last column: kernels without their own
    eta_cols = np.zeros((n, len(own) + 1))
    eta_cols[np.arange(n), column] = u
    eta_cols = eta_cols[:, eta_cols.any(axis=0)]
    units = {term: np.array(x, dtype=float) / measured for term, x in overhead_units.items()}
    names = list(units)
    subsets = [c for r in range(len(names), 0, -1) for c in itertools.combinations(names, r)] if fit_overhead else []
    best: tuple[float, dict[str, float], dict[str, float], float] | None = None
    for subset in subsets:
        design = np.column_stack([eta_cols, *(units[t] for t in subset)])
        if design.shape[0] < design.shape[1] or not _well_conditioned(design):
            continue
        solution, *_ = np.linalg.lstsq(design, np.ones(n), rcond=None)
        overheads = dict(zip(subset, (float(x) for x in solution[eta_cols.shape[1] :]), strict=True))
        inverse = solution[: len(own)]
        rest = 1.0 - sum((units[t] * s for t, s in overheads.items()), np.zeros(n))
        pooled = float(u @ u / (u @ rest)) if u @ rest > 0 else math.inf
        if min(overheads.values()) < 0 or (inverse <= 1 / MAX_ETA).any() or not 0 < pooled <= MAX_ETA:
            continue
        residual = float(np.sum((design @ solution - 1.0) ** 2))
        if best is None or residual < best[0] * (1 - 1e-6) - 1e-12:  # ties (within rounding) keep the earlier
            best = (residual, {k: float(1 / x) for k, x in zip(own, inverse, strict=True)}, overheads, pooled)
    if best is None:
        per = {k: statistics.median(u[i] for i, kk in enumerate(kernels) if kk == k) for k in own}
        return KernelFit(statistics.median(u), per, {}, "eta only", n)
    _, per, overheads, pooled = best
    return KernelFit(pooled, per, overheads, "least squares", n)


def fit_decode(cells: Sequence[MeasuredCell], fit_overhead: bool = True, per_kernel: bool = True) -> KernelFit:
    """(η_mem per weight kernel, step overhead per layer) from the cells' decode step times.

    On a CPU, batch-1 decode dequantizes every weight it streams, and the kernels differ in how much of the
    bandwidth they reach (q4_0's repacked kernel vs q4_1's plain dot products on the same model), hence η per
    kernel; ``per_kernel=False`` pools them.
    """
    return fit_eta_overhead_by_kernel(
        [1.0 / c.decode_ceiling_tok_s() for c in cells],
        [1.0 / c.decode_tok_s for c in cells],
        [c.kernel if per_kernel else None for c in cells],
        {"layer": [c.arch.layers for c in cells]},
        fit_overhead,
    )


def fit_prefill(cells: Sequence[MeasuredCell], fit_overhead: bool = True, per_kernel: bool = True) -> KernelFit | None:
    """(η_prefill per weight kernel, prefill overheads) from the cells' prompt times; None where none was measured.

    Two fixed costs are candidates: per layer per prompt (one pass: kernel launches and syncs, which dominate on a
    GPU) and per prompt token per layer (work that grows with the tokens but not with the weights: quantizing each
    token's activations for every matmul, norms, RoPE, the activation function, the short rows of a small model's
    matmuls; on a CPU, measured prefill tok/s barely changes between 128 and 512 tokens, which a per-prompt cost
    cannot produce). Cells at one prompt length cannot tell the two apart, and then the per-prompt term is kept.
    The weight-read floor of :func:`roofline.prefill_s` is left out of the fit: the measured prompts (hundreds of
    tokens) are compute-bound at any plausible η. Kernels differ most here (CPU: tinyBLAS for q8_0/q5_0, repacked
    q4_0, plain dot products for q4_1: 2-3x apart on one model); ``per_kernel=False`` pools them.
    """
    rows = [
        (c.prompt_tokens / ceil, c.prompt_tokens / m, c.kernel if per_kernel else None, c.arch.layers, c.prompt_tokens)
        for c in cells
        if c.prompt_tokens is not None
        and (m := c.measured_prefill_tok_s()) is not None
        and (ceil := c.prefill_ceiling_tok_s()) is not None
    ]
    if not rows:
        return None
    ideal, measured, kernels, layers, prompts = zip(*rows, strict=True)
    units = {"layer": layers, "token_layer": [n * p for n, p in zip(layers, prompts, strict=True)]}
    return fit_eta_overhead_by_kernel(ideal, measured, kernels, units, fit_overhead)


def calibrate(cells: list[MeasuredCell], fit_overhead: bool = True, per_kernel: bool = True) -> Efficiency:
    """Fit (η_mem, step overhead) and (η_prefill, prefill overheads) for one backend family on one device kind.

    η comes per weight kernel where a kernel has :data:`MIN_KERNEL_CELLS` cells (``per_kernel=False``: pooled
    only); ``fit_overhead=False`` reproduces the η-only calibration (medians), kept to show what the overhead buys.
    """
    if not cells:
        raise ValueError("no cells to calibrate on")
    groups = {c.group for c in cells}
    if len(groups) > 1:
        raise ValueError(f"cells mix backends/device kinds {sorted(groups)}; use calibrate_per_backend")
    family, kind = next(iter(groups)).split("/")
    default = default_efficiency(family, kind)
    decode = fit_decode(cells, fit_overhead, per_kernel)
    prefill = fit_prefill(cells, fit_overhead, per_kernel)
    note = f"prefill {prefill.describe()}" if prefill else "eta_prefill default (no prefill measured)"
    return Efficiency(
        eta_mem=decode.eta,
        eta_flops=default.eta_flops,
        eta_prefill=prefill.eta if prefill else default.eta_prefill,
        step_overhead_per_layer_s=decode.overhead("layer"),
        prefill_overhead_per_layer_s=prefill.overhead("layer") if prefill else 0.0,
        prefill_overhead_per_token_layer_s=prefill.overhead("token_layer") if prefill else 0.0,
        eta_mem_by_kernel=decode.by_kernel,
        eta_prefill_by_kernel=prefill.by_kernel if prefill else {},
        source=(
            f"calibrated ({family}/{kind}): decode {decode.describe()}, {note}; eta_flops default "
            f"(batch-1 cells are memory-bound) — {', '.join(sorted({c.label for c in cells}))}"
        ),
        calibration_id=calibration_id(cells),
    )


def calibrate_per_backend(cells: list[MeasuredCell]) -> dict[str, Efficiency]:
    """One :func:`calibrate` per ``backend family/device kind`` group found in the cells."""
    groups: dict[str, list[MeasuredCell]] = {}
    for c in cells:
        groups.setdefault(c.group, []).append(c)
    return {g: calibrate(cs) for g, cs in sorted(groups.items())}


class Projection(BaseModel):
    """What the roofline with a given η says a cell should have measured."""

    model_config = ConfigDict(frozen=True)

    decode_tok_s: float
    prefill_tok_s: float | None
    ttft_ms: float | None


def project_cell(cell: MeasuredCell, eff: Efficiency) -> Projection:
    """Project a cell's own measurements, as :mod:`roofline` does: decode step = 1 / (η_mem x ceiling) + layers x
    step overhead; prefill = prompt / (η_prefill x ceiling), floored by one weight read, + layers x (prefill
    overhead + prompt x per-token prefill overhead); TTFT = prefill of ``prompt_tokens`` + one decode step at that
    context. η is the cell's weight kernel's where calibrated, else the pooled one."""
    layers = cell.arch.layers
    eta_mem, eta_prefill = eff.mem_eta(cell.kernel), eff.prefill_eta(cell.kernel)
    decode = 1.0 / (1.0 / (eta_mem * cell.decode_ceiling_tok_s()) + layers * eff.step_overhead_per_layer_s)
    ceil = cell.prefill_ceiling_tok_s()
    if ceil is None or cell.prompt_tokens is None:
        return Projection(decode_tok_s=decode, prefill_tok_s=None, ttft_ms=None)
    floor_s = cell.weight_bytes / (cell.bandwidth_gbs * 1e9 * eta_mem)
    prefill_time = max(cell.prompt_tokens / (eta_prefill * ceil), floor_s)
    prefill_time += layers * (
        eff.prefill_overhead_per_layer_s + cell.prompt_tokens * eff.prefill_overhead_per_token_layer_s
    )
    step = 1.0 / (eta_mem * cell.decode_ceiling_tok_s(cell.prompt_tokens)) + layers * eff.step_overhead_per_layer_s
    return Projection(
        decode_tok_s=decode,
        prefill_tok_s=cell.prompt_tokens / prefill_time,
        ttft_ms=(prefill_time + step) * 1000.0,
    )


def _abs_pct(projected: float | None, measured: float | None) -> float | None:
    if projected is None or measured is None:
        return None
    return abs(projected - measured) / measured * 100.0


class LooResult(BaseModel):
    """One cell projected with η fitted on the other cells of its group (never on itself)."""

    model_config = ConfigDict(frozen=True)

    cell: str
    prompt_tokens: int | None = None
    kernel: str | None = None
    fitted_on: int = Field(description="number of other cells η came from")
    eta_mem: float = Field(description="the η_mem applied to this cell (its kernel's, else pooled)")
    eta_prefill: float = Field(description="the η_prefill applied to this cell (its kernel's, else pooled)")
    step_overhead_per_layer_s: float = 0.0
    prefill_overhead_per_layer_s: float = 0.0
    prefill_overhead_per_token_layer_s: float = 0.0
    measured_decode_tok_s: float
    projected_decode_tok_s: float
    decode_abs_pct_error: float
    measured_prefill_tok_s: float | None = None
    projected_prefill_tok_s: float | None = None
    prefill_abs_pct_error: float | None = None
    measured_ttft_ms: float | None = None
    projected_ttft_ms: float | None = None
    ttft_abs_pct_error: float | None = None


def project_from(cell: MeasuredCell, eff: Efficiency, fitted_on: int) -> LooResult:
    """A cell's measurement against the projection with ``eff`` (fitted on ``fitted_on`` cells, not this one)."""
    proj = project_cell(cell, eff)
    measured_prefill = cell.measured_prefill_tok_s()
    return LooResult(
        cell=cell.label,
        prompt_tokens=cell.prompt_tokens,
        kernel=cell.kernel,
        fitted_on=fitted_on,
        eta_mem=eff.mem_eta(cell.kernel),
        eta_prefill=eff.prefill_eta(cell.kernel),
        step_overhead_per_layer_s=eff.step_overhead_per_layer_s,
        prefill_overhead_per_layer_s=eff.prefill_overhead_per_layer_s,
        prefill_overhead_per_token_layer_s=eff.prefill_overhead_per_token_layer_s,
        measured_decode_tok_s=cell.decode_tok_s,
        projected_decode_tok_s=proj.decode_tok_s,
        decode_abs_pct_error=_abs_pct(proj.decode_tok_s, cell.decode_tok_s) or 0.0,
        measured_prefill_tok_s=measured_prefill,
        projected_prefill_tok_s=proj.prefill_tok_s if measured_prefill is not None else None,
        prefill_abs_pct_error=_abs_pct(proj.prefill_tok_s, measured_prefill),
        measured_ttft_ms=cell.ttft_ms,
        projected_ttft_ms=proj.ttft_ms if cell.ttft_ms is not None else None,
        ttft_abs_pct_error=_abs_pct(proj.ttft_ms, cell.ttft_ms),
    )


def leave_one_out(cells: list[MeasuredCell], fit_overhead: bool = True, per_kernel: bool = True) -> list[LooResult]:
    """For each cell, refit η (and overheads) on the others of its group and compare with the measurement.

    "The others" excludes the cell's whole ``series`` (the same GGUF at other prompt lengths), which would
    otherwise hand the fit the answer. A cell with nothing left in its group is skipped. The absolute
    percentage errors are the honest error bar to quote beside a projection made with the same calibration.
    """
    out = []
    for i, cell in enumerate(cells):
        others = [
            c
            for j, c in enumerate(cells)
            if j != i and c.group == cell.group and (cell.series is None or c.series != cell.series)
        ]
        if not others:
            continue
        out.append(project_from(cell, calibrate(others, fit_overhead, per_kernel), len(others)))
    return out


def median_abs_error(results: list[LooResult], metric: Literal["decode", "prefill", "ttft"] = "decode") -> float | None:
    """Median absolute percentage error of one metric over leave-one-out results; None where none was measured."""
    errors = [e for r in results if (e := getattr(r, f"{metric}_abs_pct_error")) is not None]
    return statistics.median(errors) if errors else None


class Calibration(BaseModel):
    """Efficiencies per ``backend family/device kind`` group, each with its leave-one-out error."""

    efficiencies: dict[str, Efficiency] = Field(default_factory=dict)
    decode_error_pct: dict[str, float] = Field(default_factory=dict, description="median |error| of decode tok/s")
    ttft_error_pct: dict[str, float] = Field(default_factory=dict, description="median |error| of TTFT, where measured")
    prefill_error_pct: dict[str, float] = Field(default_factory=dict)
    cells: list[MeasuredCell] = Field(default_factory=list, description="the measurements it was fitted on")
    loo: list[LooResult] = Field(default_factory=list, description="leave-one-out, each cell against the others")
    run_id: str | None = Field(default=None, description="the MLflow run it was logged as")

    def for_backend(self, backend_kind: str, tier_kind: str) -> tuple[Efficiency | None, float | None]:
        group = f"{backend_family(backend_kind)}/{tier_kind}"
        return self.efficiencies.get(group), self.decode_error_pct.get(group)


def default_calibration() -> Calibration:
    """Efficiencies fitted on the measured cells shipped with the repository, per backend/device group.

    Today: llama.cpp on an NVIDIA H200 and an H100 (llama-bench, ``benchmarks/results/gpu/*/``) and llama.cpp on this
    2-core machine (``benchmarks/results/cpu_bench_cells.json``: fixed prompts, fresh KV cache, repeats taken
    while no other process ran). The sweep's CPU cells (``cpu_cells.json``) are used only when that file is
    missing: their prompts vary from item to item (a mean TTFT over prompts of different lengths is not the TTFT
    of the mean length), their background load went unrecorded and their bandwidth was measured at another time,
    and the controlled run measures the same model x quant pairs. ``benchmarks/calibration_loo.py`` projects them
    from the controlled calibration as an out-of-sample check. A group without cells keeps the backend's
    uncalibrated default, and its projections say so.
    """
    cells = []
    for path in gpu_llama_bench_files():
        cells += cells_from_llama_bench(path)
    if shipped(CPU_BENCH_CELLS).is_file():
        cells += cells_from_cpu_bench()
    elif shipped(CPU_CELLS).is_file():
        cells += cells_from_cpu_json()
    if not cells:
        return Calibration()
    loo = leave_one_out(cells)
    errors: dict[str, dict[str, float]] = {"decode": {}, "ttft": {}, "prefill": {}}
    group_of = {c.label: c.group for c in cells}
    for group in set(group_of.values()):
        in_group = [r for r in loo if group_of[r.cell] == group]
        for metric, table in errors.items():
            error = median_abs_error(in_group, metric)  # type: ignore[arg-type]
            if error is not None:
                table[group] = error
    return Calibration(
        efficiencies=calibrate_per_backend(cells),
        decode_error_pct=errors["decode"],
        ttft_error_pct=errors["ttft"],
        prefill_error_pct=errors["prefill"],
        cells=cells,
        loo=loo,
    )
