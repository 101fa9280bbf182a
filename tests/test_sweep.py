"""The sweep end to end on a real model: MLflow schema, and kill -9 then resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lalo_bench.config import Catalog
from lalo_bench.sweep import expand, load
from lalo_bench.tracking import CELL_METRICS, Tracker
from tests.conftest import REPO, SMOL, wait_for

pytestmark = pytest.mark.slow


def spec_file(tmp_path: Path, quants: list[str], limit: int, name: str = "t") -> Path:
    spec = {
        "name": name,
        "tier": "cpu-local",
        "models": [{"model": SMOL, "quants": quants}],
        "backends": ["llamacpp"],
        "suites": [{"suite": "extraction", "limit": limit}],
        "generation": {"max_tokens": 48, "n_ctx": 1024},
        "experiment": "test",
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def sweep_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(config)]


def test_sweep_logs_the_schema(tmp_path: Path, store_uri: str, smollm2: Path, catalog: Catalog) -> None:
    config = spec_file(tmp_path, ["q4_1"], limit=3)
    proc = subprocess.run(sweep_cmd(config), capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "mlflow ui --backend-store-uri" in proc.stdout

    tracker = Tracker("test")
    sweep_id = tracker.latest_sweep_id("t")
    assert sweep_id is not None
    frame = tracker.cells_frame(sweep_id)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["model"], row["quant"], row["backend"], row["tier"], row["suite"]) == (
        SMOL,
        "q4_1",
        "llamacpp",
        "cpu-local",
        "extraction",
    )
    for metric in CELL_METRICS:
        assert metric in frame.columns and row[metric] == row[metric], metric  # present and not NaN
    assert 0.0 <= row["quality"] <= 1.0
    assert row["decode_tok_s"] > 0 and row["ttft_ms_p50"] > 0 and row["peak_rss_mb"] > 50
    # measured against this machine's STREAM bandwidth: decode cannot beat reading the weights once per token
    assert 0 < row["roofline_pct"] <= 100
    weights = int(tracker.client.get_run(row["run_id"]).data.params["weights_bytes"])
    triad = float(tracker.client.get_run(sweep_id).data.tags["lalo.stream_triad_gbs"])
    assert row["roofline_ceiling_tok_s"] == pytest.approx(triad * 1e9 / weights, rel=1e-3)
    # the cell projected onto every other tier, labelled, pointing at the measured run and the calibration
    projected = tracker.projected_cells_frame(sweep_id)
    assert sorted(projected["tier"]) == sorted(t.id for t in catalog.tiers if t.id != "cpu-local")
    assert (projected["projected_from"] == row["run_id"]).all() and (projected["quality"] == row["quality"]).all()
    assert "projected 7 cell(s)" in proc.stderr

    run = tracker.client.get_run(row["run_id"])
    assert run.data.tags["lalo.measured"] == "true"
    assert run.data.params["weights_sha256"] == catalog.model(SMOL).quants["q4_1"].source.sha256
    items = tracker.items_frame(row["run_id"])
    assert len(items) == 3
    assert {"item_id", "output", "score", "ttft_ms", "e2e_ms", "output_tokens"} <= set(items.columns)
    assert items["score"].mean() == pytest.approx(row["quality"])


def test_kill_and_resume(tmp_path: Path, store_uri: str, smollm2: Path, catalog: Catalog) -> None:
    config = spec_file(tmp_path, ["q4_1", "q8_0", "q4_0"], limit=6, name="resume")
    cells = expand(load(config, catalog), catalog)
    assert len(cells) == 3

    tracker = Tracker("test")  # create the store first: two processes migrating one new sqlite file collide
    proc = subprocess.Popen(
        sweep_cmd(config), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: tracker.latest_sweep_id("resume") is not None, 120, "the sweep run", every_s=0.5)
        sweep_id = tracker.latest_sweep_id("resume")

        def a_cell_done_and_the_next_running() -> bool:
            runs = tracker.cells_frame(sweep_id, include_unfinished=True)
            return not runs.empty and (runs["status"] == "FINISHED").sum() >= 1 and (runs["status"] == "RUNNING").any()

        wait_for(a_cell_done_and_the_next_running, 600, "a finished cell and a running one", every_s=0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: the sweep and its cell worker
        proc.wait()

    before = tracker.cells_frame(sweep_id, include_unfinished=True)
    finished_before = before[before["status"] == "FINISHED"]
    running_before = before[before["status"] == "RUNNING"]
    assert 0 < len(finished_before) < 3
    assert len(running_before) == 1, "a sweep runs one cell at a time"
    kept_runs = set(finished_before["run_id"])
    interrupted = running_before.iloc[0]["run_id"]

    proc2 = subprocess.run(sweep_cmd(config), capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc2.returncode == 0, proc2.stderr
    assert "resuming" in proc2.stderr
    assert f"{len(finished_before)} already done" in proc2.stdout

    after = tracker.cells_frame(sweep_id, include_unfinished=True)
    finished = after[after["status"] == "FINISHED"]
    assert len(finished) == 3, "every cell counted exactly once"
    assert sorted(finished["quant"]) == ["q4_0", "q4_1", "q8_0"]
    assert kept_runs <= set(finished["run_id"]), "finished cells were not redone"
    assert tracker.client.get_run(interrupted).info.status == "KILLED", "the partial run never counts"
    assert interrupted not in set(finished["run_id"])
    assert tracker.client.get_run(sweep_id).info.status == "FINISHED"
    assert set(tracker.cells_frame(sweep_id)["run_id"]) == set(finished["run_id"])
