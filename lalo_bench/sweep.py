"""The sweep: expand model × quant × backend × suite, run each cell on this machine, log each to MLflow.

Resumable: the sweep is identified by a hash of its spec. Started again after a
kill, it finds its unfinished parent run, retires cell runs the kill left
RUNNING (they never count), skips cells that already FINISHED, and runs the
rest. A cell's metrics are only written when it completes, so nothing partial
is ever counted, and no cell is counted twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lalo_bench.backends import SWEEPABLE_KINDS, runtime_info
from lalo_bench.config import Catalog, SweepSpec, SweepSuite, load_sweep
from lalo_bench.errors import ConfigError, LaloError
from lalo_bench.models import quantize, store
from lalo_bench.models.store import ByteProgress
from lalo_bench.results import Cell, CellResult, ItemRecord
from lalo_bench.runner import CellJob, run_cell_isolated
from lalo_bench.suites import ORACLES, get_suite, suite_ids
from lalo_bench.tracking import Tracker

ORACLE_QUANT = "exact"
"""The quant label of a reference-backend cell, which has no weights."""

RESULT_COLUMNS = {
    "suite_label": "suite",
    "model": "model",
    "quant": "quant",
    "backend": "backend",
    "items": "items",
    "quality": "quality",
    "decode_tok_s": "decode tok/s",
    "roofline_pct": "% of roofline",
    "prefill_tok_s": "prefill tok/s",
    "ttft_ms_p50": "TTFT p50 ms",
    "e2e_ms_p50": "e2e p50 ms",
    "peak_rss_mb": "peak RSS MB",
}


def expand(spec: SweepSpec, catalog: Catalog) -> list[Cell]:
    """The cells of the matrix, in the order they run (model, quant, backend, suite)."""

    def cell(model: str, quant: str, backend: str, suite: SweepSuite) -> Cell:
        return Cell(
            model=model,
            quant=quant,
            backend=backend,
            suite=suite.suite,
            tier=spec.tier,
            limit=suite.limit,
            options=suite.options,
            max_tokens=suite.max_tokens,
        )

    cells = [
        cell(sm.model, quant, backend, suite)
        for sm in spec.models
        for quant in sm.quants or [catalog.model(sm.model).default_quant]
        for backend in spec.backends
        for suite in spec.suites
    ]
    cells += [
        cell(oracle, ORACLE_QUANT, oracle, suite)
        for oracle in spec.oracles
        for suite in spec.suites
        if suite.suite in ORACLES[oracle]
    ]
    return cells


def sweep_key(spec: SweepSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class SweepOutcome:
    run_id: str
    resumed: bool
    ran: int
    skipped: int
    failed: int
    retired: int
    table: pd.DataFrame
    projected: int = 0


def load(path: Path, catalog: Catalog) -> SweepSpec:
    spec = load_sweep(path, catalog, suite_ids())
    for i, s in enumerate(spec.suites):
        try:
            get_suite(s.suite, s.options)
        except LaloError as exc:
            raise ConfigError(str(path), f"suites[{i}]", str(exc)) from None
    for i, b in enumerate(spec.backends):
        kind = catalog.backend(b).kind
        if kind not in SWEEPABLE_KINDS:
            raise ConfigError(
                str(path), f"backends[{i}]", f"backend '{b}' ({kind}) cannot run sweep cells yet; use: llamacpp"
            )
    return spec


def run_sweep(spec: SweepSpec, catalog: Catalog, new: bool = False, console: Console | None = None) -> SweepOutcome:
    console = console or Console(stderr=True)
    cells = expand(spec, catalog)
    tracker = Tracker(spec.experiment)
    spec_yaml = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    sweep = tracker.start_sweep(
        spec.name, sweep_key(spec), {"sweep": spec.name, "tier": spec.tier, "cells": str(len(cells))}, spec_yaml, new
    )
    bandwidth_gbs = _stream_bandwidth(catalog, spec.tier, console)
    if bandwidth_gbs is not None:
        tracker.tag_sweep(sweep, "lalo.stream_triad_gbs", f"{bandwidth_gbs:.2f}")
    retired = tracker.retire_unfinished(sweep.run_id) if sweep.resumed else 0
    done = tracker.finished_cells(sweep.run_id) if sweep.resumed else {}
    if sweep.resumed:
        console.print(
            f"[bold]resuming[/] sweep {sweep.run_id}: {len(done)} cell(s) already finished, "
            f"{retired} interrupted cell run(s) retired and redone"
        )
    ran = failed = skipped = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        cells_task = progress.add_task("cells", total=len(cells), note="")
        items_task = progress.add_task("items", total=None, note="", visible=False)
        for cell in cells:
            if cell.key in done:
                skipped += 1
                progress.advance(cells_task)
                continue
            progress.update(cells_task, note=cell.label)
            progress.update(items_task, description="  weights", completed=0, total=None, visible=True, note="")

            def on_bytes(done_b: int, total_b: int | None) -> None:
                total_mb = (total_b or 0) // 2**20 or None
                progress.update(items_task, completed=done_b // 2**20, total=total_mb, note="MiB")

            backend = catalog.backend(cell.backend)
            try:
                weights, weight_params = _weights(catalog, cell, on_bytes)
            except LaloError as exc:
                tracker.fail_cell(tracker.start_cell(sweep, cell, {}), str(exc))
                console.print(f"[red]failed[/] {escape(cell.label)}: {escape(str(exc))}")
                failed += 1
                progress.advance(cells_task)
                continue
            params = {
                **weight_params,
                **{f"gen.{k}": str(v) for k, v in spec.generation.model_dump().items()},
                **({"gen.max_tokens": str(cell.max_tokens)} if cell.max_tokens else {}),
                **runtime_info(backend),
            }
            run_id = tracker.start_cell(sweep, cell, params)
            generation = spec.generation
            if cell.max_tokens is not None:
                generation = generation.model_copy(update={"max_tokens": cell.max_tokens})
            job = CellJob(cell=cell, weights=weights, backend=backend, generation=generation)
            progress.update(items_task, description="  items", completed=0, total=cell.limit, note="")
            scores: list[float] = []

            def on_item(record: ItemRecord, scores: list[float] = scores) -> None:
                scores.append(record.score)
                progress.update(items_task, advance=1, note=f"quality so far {sum(scores) / len(scores):.2f}")

            try:
                result = run_cell_isolated(job, on_item)
            except LaloError as exc:
                tracker.fail_cell(run_id, str(exc))
                console.print(f"[red]failed[/] {escape(cell.label)}: {escape(str(exc))}")
                failed += 1
            else:
                result = _with_roofline(result, bandwidth_gbs, weight_params.get("weights_bytes"))
                tracker.finish_cell(run_id, result)
                ran += 1
                console.print(
                    f"[green]done[/] {escape(cell.label)}: quality {result.quality:.3f} over "
                    f"{len(result.records)} items, {result.wall_s:.0f} s"
                )
            progress.advance(cells_task)
        progress.update(items_task, visible=False)
    projected = _project(spec, catalog, tracker, sweep.run_id, console)
    tracker.finish_sweep(sweep, failed)
    return SweepOutcome(
        sweep.run_id, sweep.resumed, ran, skipped, failed, retired, results_table(tracker, sweep.run_id), projected
    )


def _project(spec: SweepSpec, catalog: Catalog, tracker: Tracker, sweep_id: str, console: Console) -> int:
    """Project the finished cells onto the tiers not at hand (once per cell and tier, also across resumes)."""
    from lalo_bench.hardware.calibration import default_calibration
    from lalo_bench.hardware.project_sweep import project_and_log

    tiers = spec.project_to if spec.project_to is not None else [t.id for t in catalog.tiers if t.id != spec.tier]
    cells = project_and_log(catalog, tracker, sweep_id, tiers, default_calibration())
    if cells:
        console.print(f"projected {len(cells)} cell(s) onto {len(tiers)} tier(s) not at hand (lalo.measured=false)")
    return len(cells)


def _stream_bandwidth(catalog: Catalog, tier_id: str, console: Console) -> float | None:
    """This machine's memory bandwidth (STREAM triad), measured once per sweep on a CPU tier — the tier at hand."""
    if catalog.tier(tier_id).kind != "cpu":
        return None
    from lalo_bench.hardware.stream import measure_triad

    result = measure_triad()
    console.print(f"memory bandwidth (STREAM triad): {result.gbs:.1f} GB/s")
    return result.gbs


def _with_roofline(result: CellResult, bandwidth_gbs: float | None, weights_bytes: str | None) -> CellResult:
    """Decode speed against the bandwidth-bound ceiling: every decoded token reads the whole weights file once.

    (The KV cache read is left out: at these contexts it is under 1% of a weights pass.)
    """
    decode = result.latency.decode_tok_s
    if bandwidth_gbs is None or not weights_bytes or not decode:
        return result
    ceiling = bandwidth_gbs * 1e9 / int(weights_bytes)
    return result.model_copy(update={"roofline_ceiling_tok_s": ceiling, "roofline_pct": 100.0 * decode / ceiling})


def _weights(catalog: Catalog, cell: Cell, on_bytes: ByteProgress) -> tuple[str | None, dict[str, str]]:
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


def results_table(tracker: Tracker, sweep_id: str) -> pd.DataFrame:
    """The finished cells of a sweep, with the headline columns."""
    frame = tracker.cells_frame(sweep_id)
    if frame.empty:
        return frame
    if "suite_label" not in frame:  # runs logged before suite options existed
        frame["suite_label"] = frame["suite"]
    frame["suite_label"] = frame["suite_label"].fillna(frame["suite"])
    cols = [c for c in RESULT_COLUMNS if c in frame.columns]
    table = frame[cols].copy()
    if "items" in table:
        table["items"] = table["items"].astype(int)
    return table.rename(columns=RESULT_COLUMNS)
