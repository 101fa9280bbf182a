"""The sweep: expand model × quant × backend × suite (× tier), run each cell, log each to MLflow.

Where cells run is the executor's business (:mod:`lalo_bench.executors`: this machine, or the nodes of a Ray
cluster); what is logged is decided here, by one recorder on the machine that runs the sweep, so both executors
write the same schema.

Resumable: the sweep is identified by a hash of its spec. Started again after a
kill, or after it ended with failed cells, it finds its parent run, retires cell
runs a kill left RUNNING (they never count), skips cells that already FINISHED,
and runs the rest (``--new`` starts over). A cell's metrics are only written when it completes, so nothing partial
is ever counted, and no cell is counted twice. An attempt whose Ray node was
lost is retired the same way (KILLED, ``lalo.node_lost``) before it is retried.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lalo_bench.backends import SWEEPABLE_KINDS
from lalo_bench.config import Catalog, SweepSpec, SweepSuite, load_sweep
from lalo_bench.errors import ConfigError, LaloError
from lalo_bench.executors import CellOutcome, CellTask, Executor, NodeInfo, get_executor
from lalo_bench.executors.node import node_bandwidth_gbs
from lalo_bench.results import Cell
from lalo_bench.suites import ORACLES, get_suite, suite_ids
from lalo_bench.tracking import SweepRun, Tracker

ORACLE_QUANT = "exact"
"""The quant label of a reference-backend cell, which has no weights."""

RESULT_COLUMNS = {
    "tier": "tier",
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
    """The cells of the matrix, in the order they run (tier, model, quant, backend, suite).

    Reference backends (oracles) answer the same on any hardware, so they run once, on the first tier.
    """

    def cell(model: str, quant: str, backend: str, suite: SweepSuite, tier: str) -> Cell:
        return Cell(
            model=model,
            quant=quant,
            backend=backend,
            suite=suite.suite,
            tier=tier,
            limit=suite.limit,
            options=suite.options,
            max_tokens=suite.max_tokens,
        )

    cells = [
        cell(sm.model, quant, backend, suite, tier)
        for tier in spec.run_tiers
        for sm in spec.models
        if sm.tiers is None or tier in sm.tiers
        for quant in sm.quants or [catalog.model(sm.model).default_quant]
        for backend in spec.backends
        for suite in spec.suites
    ]
    cells += [
        cell(oracle, ORACLE_QUANT, oracle, suite, spec.run_tiers[0])
        for oracle in spec.oracles
        for suite in spec.suites
        if suite.suite in ORACLES[oracle]
    ]
    return cells


def sweep_key(spec: SweepSpec) -> str:
    """A hash of the spec. Fields added after sweeps were logged are left out while unset, so old keys still match."""
    data = spec.model_dump(mode="json")
    if data.get("tiers") is None:
        data.pop("tiers", None)
    for model in data["models"]:
        if model.get("tiers") is None:
            model.pop("tiers", None)
    # the same bytes pydantic's model_dump_json wrote when the key was first defined
    return hashlib.sha256(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()[:16]


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
    lost: int = 0


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


def run_sweep(
    spec: SweepSpec,
    catalog: Catalog,
    new: bool = False,
    console: Console | None = None,
    executor: Executor | None = None,
) -> SweepOutcome:
    console = console or Console(stderr=True)
    executor = executor or get_executor("local")
    if executor.name == "local" and len(spec.run_tiers) > 1:
        raise LaloError(
            f"sweep '{spec.name}' spans tiers {', '.join(spec.run_tiers)}, and this machine is one node of one tier; "
            "run it on a Ray cluster with --executor ray (see docs/multi-node.md)"
        )
    executor.connect()
    cells = expand(spec, catalog)
    tracker = Tracker(spec.experiment)
    spec_yaml = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    tier_param = ",".join(spec.run_tiers)
    sweep = tracker.start_sweep(
        spec.name, sweep_key(spec), {"sweep": spec.name, "tier": tier_param, "cells": str(len(cells))}, spec_yaml, new
    )
    tracker.tag_sweep(sweep, "lalo.executor", executor.name)
    if executor.name == "local" and catalog.tier(spec.tier).kind == "cpu":
        bandwidth = node_bandwidth_gbs()  # cached: the cells measured here reuse it
        console.print(f"memory bandwidth (STREAM triad): {bandwidth:.1f} GB/s")
        tracker.tag_sweep(sweep, "lalo.stream_triad_gbs", f"{bandwidth:.2f}")
    retired = tracker.retire_unfinished(sweep.run_id) if sweep.resumed else 0
    done = tracker.finished_cells(sweep.run_id) if sweep.resumed else {}
    if sweep.resumed:
        console.print(
            f"[bold]resuming[/] sweep {sweep.run_id}: {len(done)} cell(s) already finished, "
            f"{retired} interrupted cell run(s) retired and redone"
        )
    tasks = [CellTask(cell=c, generation=spec.generation) for c in cells if c.key not in done]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        cells_task = progress.add_task("cells", total=len(cells), completed=len(cells) - len(tasks), note="")
        recorder = _Recorder(tracker, sweep, executor.name, console, progress, cells_task)
        executor.run(catalog, tasks, recorder)
    projected = _project(spec, catalog, tracker, sweep.run_id, console)
    tracker.finish_sweep(sweep, recorder.failed)
    return SweepOutcome(
        sweep.run_id,
        sweep.resumed,
        recorder.ran,
        len(cells) - len(tasks),
        recorder.failed,
        retired,
        results_table(tracker, sweep.run_id),
        projected,
        recorder.lost_attempts,
    )


class _Recorder:
    """The sweep's listener: every cell event becomes MLflow runs (through the Tracker) and progress on the console."""

    def __init__(
        self,
        tracker: Tracker,
        sweep: SweepRun,
        executor: str,
        console: Console,
        progress: Progress,
        cells_task: TaskID,
    ) -> None:
        self.tracker, self.sweep, self.executor = tracker, sweep, executor
        self.console, self.progress, self.cells_task = console, progress, cells_task
        self.runs: dict[tuple[str, int], str] = {}
        self.bars: dict[tuple[str, int], TaskID] = {}
        self.scores: dict[tuple[str, int], list[float]] = {}
        self.ran = self.failed = self.lost_attempts = 0

    @staticmethod
    def _ident(task: CellTask) -> tuple[str, int]:
        return task.cell.key, task.attempt

    def _params(self, task: CellTask) -> dict[str, str]:
        cell = task.cell
        return {
            **{f"gen.{k}": str(v) for k, v in task.generation.model_dump().items()},
            **({"gen.max_tokens": str(cell.max_tokens)} if cell.max_tokens else {}),
        }

    def _start(self, task: CellTask, node: NodeInfo | None) -> str:
        return self.tracker.start_cell(
            self.sweep, task.cell, self._params(task), node=node, attempt=task.attempt, executor=self.executor
        )

    def started(self, task: CellTask, node: NodeInfo) -> None:
        ident = self._ident(task)
        self.runs[ident] = self._start(task, node)
        where = "" if self.executor == "local" else f" @ {node.name}"
        retry = f" (attempt {task.attempt})" if task.attempt > 1 else ""
        self.bars[ident] = self.progress.add_task(f"  {task.cell.label}{where}{retry}", total=None, note="weights")

    def weights_progress(self, task: CellTask, done: int, total: int | None) -> None:
        bar = self.bars.get(self._ident(task))
        if bar is not None:
            total_mb = (total or 0) // 2**20 or None
            self.progress.update(bar, completed=done // 2**20, total=total_mb, note="MiB of weights")

    def item_done(self, task: CellTask, score: float) -> None:
        ident = self._ident(task)
        scores = self.scores.setdefault(ident, [])
        if not scores and ident in self.bars:
            self.progress.update(self.bars[ident], completed=0, total=task.cell.limit)
        scores.append(score)
        if ident in self.bars:
            self.progress.update(self.bars[ident], advance=1, note=f"quality so far {sum(scores) / len(scores):.2f}")

    def _close_bar(self, ident: tuple[str, int]) -> None:
        bar = self.bars.pop(ident, None)
        if bar is not None:
            self.progress.remove_task(bar)
        self.scores.pop(ident, None)

    def finished(self, task: CellTask, outcome: CellOutcome) -> None:
        ident = self._ident(task)
        self._close_bar(ident)
        run_id = self.runs.pop(ident, None) or self._start(task, outcome.node)
        where = f" on {outcome.node.name}" if outcome.node is not None and self.executor != "local" else ""
        label = escape(task.cell.label)
        if outcome.result is not None:
            result = outcome.result
            self.tracker.finish_cell(run_id, result, outcome.params)
            self.ran += 1
            self.console.print(
                f"[green]done[/] {label}{where}: quality {result.quality:.3f} over "
                f"{len(result.records)} items, {result.wall_s:.0f} s"
            )
        else:
            message = outcome.error or "no result and no error (a bug; please report it)"
            self.tracker.fail_cell(run_id, message, outcome.params)
            self.failed += 1
            shown = message.removeprefix(f"{task.cell.label}: ")
            self.console.print(f"[red]failed[/] {label}{where}: {escape(shown)}")
        self.progress.advance(self.cells_task)

    def note(self, text: str) -> None:
        self.console.print(escape(text))

    def lost(self, task: CellTask, reason: str) -> None:
        ident = self._ident(task)
        self._close_bar(ident)
        run_id = self.runs.pop(ident, None)
        if run_id is not None:
            self.tracker.lose_cell(run_id, reason)
        self.lost_attempts += 1
        self.console.print(f"[yellow]lost[/] {escape(task.cell.label)}: {escape(reason)}")


def _project(spec: SweepSpec, catalog: Catalog, tracker: Tracker, sweep_id: str, console: Console) -> int:
    """Project the finished cells onto the tiers not at hand (once per cell and tier, also across resumes)."""
    from lalo_bench.hardware.calibration import default_calibration
    from lalo_bench.hardware.project_sweep import project_and_log

    tiers = spec.project_to
    if tiers is None:
        tiers = [t.id for t in catalog.tiers if t.id not in spec.run_tiers]
    cells = project_and_log(catalog, tracker, sweep_id, tiers, default_calibration())
    if cells:
        console.print(f"projected {len(cells)} cell(s) onto {len(tiers)} tier(s) not at hand (lalo.measured=false)")
    return len(cells)


def results_table(tracker: Tracker, sweep_id: str) -> pd.DataFrame:
    """The finished cells of a sweep, with the headline columns."""
    frame = tracker.cells_frame(sweep_id)
    if frame.empty:
        return frame
    frame["suite_label"] = frame["suite_label"].fillna(frame["suite"])  # runs logged before suite options existed
    cols = [c for c in RESULT_COLUMNS if c in frame.columns]
    if "tier" in cols and frame["tier"].nunique() < 2:
        cols.remove("tier")  # one tier: the column says nothing
    table = frame[cols].copy()
    if "items" in table:
        table["items"] = table["items"].astype(int)
    return table.rename(columns=RESULT_COLUMNS)
