"""Project a sweep's measured cells onto tiers that are not at hand.

Each finished cell (model × quant × backend × suite, measured on the sweep's
tier) becomes one projected cell per target tier: fit and speed from
:func:`~lalo_bench.hardware.projection.project` with the backend's calibrated
efficiencies, the calibration's leave-one-out error as its expected error, and
the quality of the measured run — quality does not change with hardware, and
the projected cell says where it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, Field

from lalo_bench.config import Catalog
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.hardware.projection import Projection, project

if TYPE_CHECKING:
    from lalo_bench.tracking import Tracker


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
            p = project(catalog, row.model, tier_id, quant=row.quant, backend_id=row.backend, calibration=calibration)
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
                    calibration_run_id=calibration.run_id if p.efficiency.calibrated else None,
                    expected_error_pct=p.expected_error_pct,
                )
            )
    return out


def project_and_log(
    catalog: Catalog,
    tracker: Tracker,
    sweep_id: str,
    tiers: list[str],
    calibration: Calibration | None,
    skip_done: bool = True,
) -> list[ProjectedCell]:
    """Project a sweep's finished cells onto ``tiers`` and log them, with the calibration they used as its own run.

    ``skip_done`` leaves (measured run, tier) pairs already projected alone, so a resumed sweep adds only what is
    new; ``lalo-bench project-sweep`` turns it off to project again (e.g. after a new calibration).
    """
    measured = tracker.cells_frame(sweep_id)
    if not tiers or measured.empty:
        return []
    before = tracker.projected_cells_frame(sweep_id) if skip_done else pd.DataFrame()
    done = set() if before.empty else set(zip(before["projected_from"], before["tier"], strict=True))
    cells = [c for c in project_cells(catalog, measured, tiers, calibration) if (c.measured_run_id, c.tier) not in done]
    if cells and calibration is not None and calibration.efficiencies and calibration.run_id is None:
        run_id = tracker.log_calibration(calibration)
        cells = [c.model_copy(update={"calibration_run_id": run_id}) if c.calibration_id else c for c in cells]
    tracker.log_projected_cells(sweep_id, cells)
    return cells
