"""Readers of the store meet runs in flight: created, with none of their params logged yet.

A sweep starting a cell, a projection, a load test or a routing run being logged by another process all pass
through that moment. Each test stops the writer exactly there (between ``create_run`` and the run's first
``log_batch``) and reads the store through a second client, as ``lalo-bench results``, the report and the
projection do: no reader fails, the default reads leave the run out, and ``include_unfinished`` shows it with what
it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lalo_bench.config import load_catalog
from lalo_bench.hardware.project_sweep import project_and_log
from lalo_bench.measure.load.importers import import_file
from lalo_bench.report.evidence import sweep_cells
from lalo_bench.results import Cell, ItemRecord
from lalo_bench.sweep import results_table
from lalo_bench.tracking import CELL_PARAMS, SweepRun, Tracker
from tests.conftest import REPO, cell_result, lalo

CELL = Cell(model="smollm2-135m-instruct", quant="q4_1", backend="llamacpp", suite="extraction", tier="cpu-local")
IMPORTS = REPO / "tests" / "data" / "imports"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Tracker, SweepRun]:
    """A sweep with one finished cell; the writer's client is the test's, readers get their own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    writer = Tracker()
    sweep = writer.start_sweep("in-flight", "key", {}, "name: in-flight\n")
    run_id = writer.start_cell(sweep, CELL, {"weights_sha256": "0" * 64})
    record = ItemRecord(item_id="x-1", category="invoice", difficulty=1, output="{}", score=1.0, correct=True)
    writer.finish_cell(run_id, cell_result([record]))
    return writer, sweep


@contextmanager
def paused_before_params(
    writer: Tracker, monkeypatch: pytest.MonkeyPatch, read: Callable[[str], None]
) -> Iterator[list[str]]:
    """Run ``read(run_id)`` each time ``writer`` has created a run and is about to log its first params."""
    created: set[str] = set()
    seen: list[str] = []
    create_run, log_batch = writer.client.create_run, writer.client.log_batch

    def create(*args: Any, **kwargs: Any) -> Any:
        run = create_run(*args, **kwargs)
        created.add(run.info.run_id)
        return run

    def log(run_id: str, *args: Any, **kwargs: Any) -> None:
        if run_id in created:
            created.discard(run_id)
            seen.append(run_id)
            read(run_id)
        log_batch(run_id, *args, **kwargs)

    monkeypatch.setattr(writer.client, "create_run", create)
    monkeypatch.setattr(writer.client, "log_batch", log)
    yield seen


def read_everything(sweep_id: str) -> dict[str, pd.DataFrame]:
    """Every reader of the store, through a client of its own (another process, as far as MLflow can tell)."""
    reader = Tracker()
    assert reader.latest_sweep_id("in-flight") == sweep_id
    assert sweep_id not in {s.run_id for s in reader.finished_sweeps()}  # a sweep under way is not finished
    return {
        "cells": reader.cells_frame(sweep_id),
        "cells+": reader.cells_frame(sweep_id, include_unfinished=True),
        "items": reader.sweep_items_frame(sweep_id),
        "results": results_table(reader, sweep_id),
        "report_cells": sweep_cells(reader, [sweep_id]),
        "projected": reader.projected_cells_frame(sweep_id),
        "projected+": reader.projected_cells_frame(sweep_id, include_unfinished=True),
        "load_points": reader.load_points_frame(),
        "load_points+": reader.load_points_frame(include_unfinished=True),
        "routing": reader.routing_runs_frame(),
        "routing+": reader.routing_runs_frame(include_unfinished=True),
    }


def test_a_cell_starting_is_skipped_or_shown_with_what_it_has(
    store: tuple[Tracker, SweepRun], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    writer, sweep = store
    frames: dict[str, pd.DataFrame] = {}
    cli: list[tuple[int, str, str]] = []

    def read(_run_id: str) -> None:
        frames.update(read_everything(sweep.run_id))
        cli.append(lalo("results", monkeypatch=monkeypatch, capsys=capsys))

    second = CELL.model_copy(update={"suite": "reasoning"})
    with paused_before_params(writer, monkeypatch, read) as seen:
        writer.start_cell(sweep, second, {})
    assert len(seen) == 1
    starting = seen[0]

    assert starting not in set(frames["cells"]["run_id"])
    assert len(frames["cells"]) == len(frames["results"]) == len(frames["report_cells"]) == 1
    assert len(frames["items"]) == 1

    shown = frames["cells+"].set_index("run_id")
    assert len(shown) == 2 and shown.loc[starting, "status"] == "RUNNING"
    assert shown.loc[starting, "cell_key"] == second.key  # its tags came with the run; its params not yet
    assert set(CELL_PARAMS) <= set(shown.columns) and shown.loc[starting, list(CELL_PARAMS)].isna().all()
    assert frames["cells+"]["run_id"].iloc[-1] == starting  # what it lacks sorts last

    code, out, err = cli[0]
    assert code == 0 and err == "" and "smollm2-135m-instruct" in out and "Traceback" not in out


def test_a_sweep_with_only_a_cell_starting_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    writer = Tracker()
    sweep = writer.start_sweep("in-flight", "key", {}, "name: in-flight\n")
    cli: list[tuple[int, str, str]] = []
    frames: dict[str, pd.DataFrame] = {}

    def read(_run_id: str) -> None:
        reader = Tracker()
        frames["cells+"] = reader.cells_frame(sweep.run_id, include_unfinished=True)
        frames["results"] = results_table(reader, sweep.run_id)
        cli.append(lalo("results", monkeypatch=monkeypatch, capsys=capsys))

    with paused_before_params(writer, monkeypatch, read):
        writer.start_cell(sweep, CELL, {})
    assert frames["results"].empty and len(frames["cells+"]) == 1
    code, _out, err = cli[0]
    assert code != 0 and "has no finished cells yet" in err and err.strip().count("\n") == 0


def test_a_projection_being_logged_is_skipped_or_shown(
    store: tuple[Tracker, SweepRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, sweep = store
    snapshots: list[dict[str, pd.DataFrame]] = []
    with paused_before_params(writer, monkeypatch, lambda _r: snapshots.append(read_everything(sweep.run_id))) as seen:
        cells = project_and_log(load_catalog(), writer, sweep.run_id, ["enterprise"], calibration=None)
    assert cells and len(seen) == len(cells)
    first = snapshots[0]
    assert first["projected"].empty and len(first["projected+"]) == 1
    assert first["projected+"]["status"].iloc[0] == "RUNNING" and pd.isna(first["projected+"]["tier"].iloc[0])
    assert len(first["cells"]) == 1  # the measured cell is still read as before
    after = Tracker().projected_cells_frame(sweep.run_id)
    assert len(after) == len(cells) and set(after["tier"]) == {"enterprise"}


def test_a_load_test_being_logged_is_skipped_or_shown(
    store: tuple[Tracker, SweepRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, sweep = store
    report = import_file(IMPORTS / "vllm_sync.json")
    snapshots: list[dict[str, pd.DataFrame]] = []
    with paused_before_params(writer, monkeypatch, lambda _r: snapshots.append(read_everything(sweep.run_id))) as seen:
        writer.log_load_report(report, "vllm-sync")
    assert len(seen) == 1 + len(report.points)  # the load test's own run, then each point
    point_starting = snapshots[1]
    assert point_starting["load_points"].empty
    shown = point_starting["load_points+"]
    assert len(shown) == 1 and shown["status"].iloc[0] == "RUNNING" and pd.isna(shown["target"].iloc[0])
    assert len(Tracker().load_points_frame()) == len(report.points)


def test_a_routing_run_starting_is_skipped_or_shown(
    store: tuple[Tracker, SweepRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, sweep = store
    snapshots: list[dict[str, pd.DataFrame]] = []
    with paused_before_params(writer, monkeypatch, lambda _r: snapshots.append(read_everything(sweep.run_id))):
        run_id = writer.start_routing(sweep.run_id, "routing", {"objective": "0.9"})
    assert snapshots[0]["routing"].empty
    shown = snapshots[0]["routing+"]
    assert list(shown["run_id"]) == [run_id] and shown["sweep_run_id"].iloc[0] == sweep.run_id
    writer.fail_routing(run_id, "stopped")
    assert Tracker().routing_runs_frame().empty  # a failed routing run is never read as a policy
    assert Tracker().routing_runs_frame(include_unfinished=True)["status"].tolist() == ["FAILED"]
