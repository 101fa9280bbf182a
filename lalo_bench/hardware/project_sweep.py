"""Project a sweep's measured cells onto tiers that are not at hand.

Each finished cell (model × quant × backend × suite, measured on the sweep's
tier) becomes one projected cell per target tier: fit and speed from
:func:`~lalo_bench.hardware.projection.project` with the backend's calibrated
efficiencies, the calibration's leave-one-out error as its expected error, and
the quality of the measured run — quality does not change with hardware, and
the projected cell says where it came from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field

from lalo_bench.config import Catalog
from lalo_bench.hardware.calibration import LooResult, MeasuredCell
from lalo_bench.hardware.projection import Projection, project
from lalo_bench.hardware.roofline import Efficiency, backend_family

REPO = Path(__file__).resolve().parents[2]
H200_FILE = Path("benchmarks/results/gpu/20261126-h200/llama-bench.json")
CPU_FILE = Path("benchmarks/results/cpu_cells.json")


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


class ProjectedCell(BaseModel):
    """A sweep cell as it would run on another tier; ``measured`` is always False."""

    measured_run_id: str
    model: str
    quant: str
    backend: str
    suite: str
    suite_label: str
    tier: str
    measured: bool = False
    quality: float | None = Field(description="from the measured run of the same model, quant and suite")
    projection: Projection
    calibration_id: str | None
    calibration_run_id: str | None = Field(default=None, description="MLflow run holding the calibration")
    expected_error_pct: float | None = Field(description="leave-one-out median |error| of the calibration used")


def project_cells(
    catalog: Catalog, measured: pd.DataFrame, tiers: list[str], calibration: Calibration | None = None
) -> list[ProjectedCell]:
    """One projected cell per (finished measured cell × target tier other than its own)."""
    calibration = calibration or Calibration()
    out: list[ProjectedCell] = []
    for row in measured.itertuples(index=False):
        backend = catalog.backend(row.backend)
        if backend.kind not in ("llamacpp", "llamacpp_server", "vllm_server"):
            continue  # reference backends (solver) and HRM have no token speed to project
        for tier_id in tiers:
            if tier_id == row.tier:
                continue
            tier = catalog.tier(tier_id)
            eff, error = calibration.for_backend(backend.kind, tier.kind)
            p = project(catalog, row.model, tier_id, quant=row.quant, backend_id=row.backend, eff=eff)
            out.append(
                ProjectedCell(
                    measured_run_id=row.run_id,
                    model=row.model,
                    quant=row.quant,
                    backend=row.backend,
                    suite=row.suite,
                    suite_label=getattr(row, "suite_label", row.suite) or row.suite,
                    tier=tier_id,
                    quality=getattr(row, "quality", None),
                    projection=p,
                    calibration_id=p.efficiency.calibration_id,
                    calibration_run_id=calibration.run_id if eff is not None else None,
                    expected_error_pct=error,
                )
            )
    return out


def default_calibration() -> Calibration:
    """Efficiencies fitted on the measured cells shipped with the repository, per backend/device group.

    Today: llama.cpp on an NVIDIA H200 (llama-bench, ``benchmarks/results/gpu``) and llama.cpp on this
    2-core machine (sweep cells, ``benchmarks/results/cpu_cells.json``). A group without cells keeps the
    backend's uncalibrated default, and its projections say so.
    """
    from lalo_bench.hardware.calibration import (
        calibrate_per_backend,
        cells_from_cpu_json,
        cells_from_llama_bench,
        leave_one_out,
        median_abs_error,
    )

    cells = []
    if (REPO / H200_FILE).is_file():
        cells += cells_from_llama_bench(REPO / H200_FILE)
    if (REPO / CPU_FILE).is_file():
        cells += cells_from_cpu_json(REPO / CPU_FILE)
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
