"""Projected sweep cells: one per measured cell and target tier, labelled, never mixed with measured ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lalo_bench.config import Catalog
from lalo_bench.hardware.calibration import default_calibration
from lalo_bench.hardware.project_sweep import project_cells
from lalo_bench.results import Cell


def _measured() -> pd.DataFrame:
    rows = [
        {"run_id": "m1", "model": "qwen2.5-coder-1.5b-instruct", "quant": "q4_k_m", "backend": "llamacpp",
         "tier": "cpu-local", "suite": "extraction", "suite_label": "extraction", "quality": 0.9},
        {"run_id": "m2", "model": "smollm2-135m-instruct", "quant": "q4_1", "backend": "solver",
         "tier": "cpu-local", "suite": "puzzles", "suite_label": "puzzles", "quality": 1.0},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_each_measured_cell_is_projected_to_every_other_tier(catalog: Catalog) -> None:
    cells = project_cells(catalog, _measured(), ["cpu-local", "h100", "minimal"], default_calibration())
    assert [(c.measured_run_id, c.tier) for c in cells] == [("m1", "h100"), ("m1", "minimal")]  # solver: no speed
    for c in cells:
        assert c.measured is False and c.projection.measured is False and c.quality == 0.9
        assert c.projection.fits and c.projection.decode_tok_s and c.projection.decode_tok_s > 0
    gpu = cells[0]
    assert gpu.calibration_id is not None and gpu.expected_error_pct is not None  # the H200 cells calibrate GPUs


def test_projected_cells_are_logged_apart_from_measured_ones(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    from lalo_bench.tracking import Tracker

    tracker = Tracker("t")
    sweep = tracker.start_sweep("s", "key", {}, "name: s\n")
    cell = Cell(model="qwen2.5-coder-1.5b-instruct", quant="q4_k_m", backend="llamacpp", tier="cpu-local",
                suite="extraction", limit=1)  # fmt: skip
    run_id = tracker.start_cell(sweep, cell, {})
    tracker.client.set_terminated(run_id, "FINISHED")
    measured = _measured().iloc[:1].assign(run_id=run_id)
    calibration = default_calibration()
    calibration_run = tracker.log_calibration(calibration)
    cells = project_cells(catalog, measured, ["h100", "large"], calibration)
    assert tracker.log_projected_cells(sweep.run_id, cells) == 2
    logged = tracker.client.get_run(calibration_run).data.metrics
    assert logged["llamacpp/gpu.loo_decode_abs_pct_error"] == pytest.approx(
        calibration.decode_error_pct["llamacpp/gpu"]
    )
    tags = tracker.client.get_run(tracker.projected_cells_frame(sweep.run_id)["run_id"][0]).data.tags
    assert tags["lalo.calibration_run_id"] == calibration_run and tags["lalo.measured"] == "false"
    projected = tracker.projected_cells_frame(sweep.run_id)
    assert sorted(projected["tier"]) == ["h100", "large"]
    assert (projected["measured"] == False).all() and (projected["projected_from"] == run_id).all()  # noqa: E712
    assert (projected["quality"] == 0.9).all() and (projected["expected_error_pct"] > 0).all()
    assert list(tracker.cells_frame(sweep.run_id)["run_id"]) == [run_id]
    assert tracker.finished_cells(sweep.run_id) == {cell.key: run_id}  # resume bookkeeping ignores projections
