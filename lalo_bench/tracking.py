"""The only module that talks to MLflow: write sweeps and cells, read them back as DataFrames.

Schema: one parent run per sweep (tag ``lalo.kind=sweep``) and one child run per
cell (tag ``lalo.kind=cell``) with params ``model quant backend tier suite``,
the metrics of :data:`CELL_METRICS`, tag ``lalo.measured=true`` and the per-item
table ``items.json``. A cell's metrics are logged at its end, and its run is
marked FINISHED last: a run that is not FINISHED never counts as a result.

Load tests (``lalo-bench loadtest`` and ``lalo-bench import``) are one parent
run (``lalo.kind=loadtest``, ``lalo.source`` naming the tool, the report as
``report.json``, the server log when lalo-bench started the server) and one
child run per load point (``lalo.kind=load_point``) with the metrics of
:func:`~lalo_bench.measure.load.schemas.flat_metrics` and ``requests.jsonl``.

Routing runs (``lalo-bench route calibrate``) are children of the sweep they learned from
(``lalo.kind=routing``, ``lalo.sweep_run_id``) with the comparison's metrics, the policy and its weights.

Readers run while other processes write: a run may exist with none of its params yet. Each ``*_frame`` reader
returns FINISHED runs unless asked for the rest (``include_unfinished``), and always has its identifying columns.

The default store is a sqlite file under ``./mlflow/`` with artifacts beside it;
``MLFLOW_TRACKING_URI`` overrides it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from lalo_bench import datafiles
from lalo_bench.errors import LaloError
from lalo_bench.executors.base import NodeInfo
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.hardware.project_sweep import ProjectedCell
from lalo_bench.measure.load.schemas import LoadReport, flat_metrics
from lalo_bench.results import Cell, CellResult

CELL_METRICS = (
    "quality",
    "ttft_ms_p50",
    "ttft_ms_p95",
    "itl_ms_p50",
    "itl_ms_p95",
    "tpot_ms_p50",
    "e2e_ms_p50",
    "e2e_ms_p95",
    "decode_tok_s",
    "prefill_tok_s",
    "peak_rss_mb",
)
CELL_PARAMS = ("model", "quant", "backend", "tier", "suite", "suite_options", "suite_label", "limit")
"""The params :meth:`Tracker.start_cell` logs; a reader's frame always has these columns, logged yet or not."""
CELL_ORDER = ["suite", "model", "quant", "backend", "tier"]
PROJECTED_PARAMS = ("model", "quant", "backend", "tier", "suite", "suite_label", "fits", "notes")
ITEMS_TABLE = "items.json"
DEFAULT_DIR = Path("mlflow")
FINISHED_ONLY = " AND attributes.status = 'FINISHED'"


def default_uri() -> str:
    return f"sqlite:///{(DEFAULT_DIR / 'mlflow.db').resolve()}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def portable_uri(uri: str | None = None) -> str:
    """The store's URI as a shipped or shared file records it: no path of this machine, no password.

    ``sqlite:////home/ann/lalo/mlflow/mlflow.db`` becomes ``sqlite:///mlflow/mlflow.db`` (relative, as MLflow reads
    it, to the folder lalo-bench runs in); a server's ``user:secret@`` becomes ``user:***@``.
    """
    uri = uri or tracking_uri()
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        uri = urlunsplit(parts._replace(netloc=netloc))
    return datafiles.portable(uri)


def _artifact_root(uri: str) -> str | None:
    """Keep artifacts next to a sqlite store instead of MLflow's default ``./mlruns``; servers decide their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


def _client():
    warnings.filterwarnings("ignore", module="mlflow")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # after the import: mlflow sets its own levels when imported
        logging.getLogger(name).setLevel(logging.WARNING)

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


@dataclass
class SweepRun:
    run_id: str
    experiment_id: str
    resumed: bool


@dataclass(frozen=True)
class SweepInfo:
    run_id: str
    name: str
    start_ms: int


class Tracker:
    """A session with the tracking store for one experiment."""

    def __init__(self, experiment: str = "lalo-bench") -> None:
        self.client = _client()
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=_artifact_root(tracking_uri())
            )
        else:
            self.experiment_id = found.experiment_id

    # ------------------------------------------------------------ sweeps

    def start_sweep(self, name: str, key: str, params: dict[str, str], spec_yaml: str, new: bool = False) -> SweepRun:
        """Resume the newest sweep with this key that did not finish every cell, or start one.

        A sweep that was killed, or that ended with failed cells (a lost node, a missing model), is resumed: its
        finished cells stand and only the rest run again.
        """
        if not new:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`lalo.kind` = 'sweep' AND tags.`lalo.sweep_key` = '{key}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            incomplete = runs and (
                runs[0].info.status != "FINISHED" or runs[0].data.tags.get("lalo.failed_cells", "0") != "0"
            )
            if incomplete:
                run_id = runs[0].info.run_id
                self.client.update_run(run_id, status="RUNNING")
                return SweepRun(run_id, self.experiment_id, resumed=True)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"sweep-{name}",
            tags={"lalo.kind": "sweep", "lalo.sweep_key": key, "lalo.sweep_name": name},
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=_params(params))
        self.client.log_text(run_id, spec_yaml, "sweep.yaml")
        return SweepRun(run_id, self.experiment_id, resumed=False)

    def tag_sweep(self, sweep: SweepRun, key: str, value: str) -> None:
        """A fact about this run of the sweep (a tag, so a resumed sweep may record it again)."""
        self.client.set_tag(sweep.run_id, key, value)

    def finish_sweep(self, sweep: SweepRun, failed_cells: int) -> None:
        self.client.set_tag(sweep.run_id, "lalo.failed_cells", str(failed_cells))
        self.client.set_terminated(sweep.run_id, "FINISHED")

    def _children(self, sweep_id: str, extra: str = "") -> list:
        flt = f"tags.`mlflow.parentRunId` = '{sweep_id}' AND tags.`lalo.kind` = 'cell'{extra}"
        return self.client.search_runs([self.experiment_id], filter_string=flt, max_results=10000)

    def finished_cells(self, sweep_id: str) -> dict[str, str]:
        """cell key → run id of its FINISHED run."""
        return {r.data.tags["lalo.cell_key"]: r.info.run_id for r in self._children(sweep_id, FINISHED_ONLY)}

    def retire_unfinished(self, sweep_id: str) -> int:
        """Mark cell runs left RUNNING by a killed sweep as KILLED so they never count; returns how many."""
        stale = self._children(sweep_id, " AND attributes.status = 'RUNNING'")
        for r in stale:
            self._retire(r.info.run_id)
        return len(stale)

    def _retire(self, run_id: str, **tags: str) -> None:
        """KILLED and partial: an attempt that never counts, whether its sweep was killed or its node lost."""
        from mlflow.entities import RunTag

        tags = {"lalo.partial": "true", **tags}
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(run_id, "KILLED")

    # ------------------------------------------------------------ cells

    def start_cell(
        self,
        sweep: SweepRun,
        cell: Cell,
        params: dict[str, str],
        node: NodeInfo | None = None,
        attempt: int = 1,
        executor: str = "local",
    ) -> str:
        """A RUNNING run for one attempt at ``cell``, tagged with the node it runs on (none: it never reached one)."""
        tags = {
            "mlflow.parentRunId": sweep.run_id,
            "lalo.kind": "cell",
            "lalo.cell_key": cell.key,
            "lalo.measured": "true",
            "lalo.executor": executor,
            "lalo.attempt": str(attempt),
        }
        if node is not None:
            tags |= {"lalo.node": node.name, "lalo.node_host": node.host}
            if node.tier is not None:
                tags["lalo.node_tier"] = node.tier
            if node.ray_node_id is not None:
                tags["lalo.ray_node_id"] = node.ray_node_id
        run = self.client.create_run(self.experiment_id, run_name=cell.label, tags=tags)
        base = {
            "model": cell.model,
            "quant": cell.quant,
            "backend": cell.backend,
            "tier": cell.tier,
            "suite": cell.suite,
            "suite_options": json.dumps(cell.options, sort_keys=True) if cell.options else "",
            "suite_label": cell.suite_label,
            "limit": str(cell.limit),
        }
        self.client.log_batch(run.info.run_id, params=_params({**base, **params}))
        return run.info.run_id

    def finish_cell(self, run_id: str, result: CellResult, params: dict[str, str] | None = None) -> None:
        """Log the result (and ``params`` learned on the node: the weights' pin, runtime versions), then FINISHED."""
        from mlflow.entities import Metric

        values: dict[str, float | None] = {
            **result.latency.model_dump(exclude={"requests"}),
            "quality": result.quality,
            "error_rate": result.error_rate,
            "peak_rss_mb": result.memory.peak_rss_mb,
            "baseline_rss_mb": result.memory.baseline_rss_mb,
            "peak_vram_mb": result.memory.peak_vram_mb,
            "items": float(len(result.records)),
            "load_s": result.load_s,
            "wall_s": result.wall_s,
            "roofline_ceiling_tok_s": result.roofline_ceiling_tok_s,
            "roofline_pct": result.roofline_pct,
            "stream_triad_gbs": result.stream_triad_gbs,
            **{f"suite.{k}": v for k, v in result.suite_metrics.items()},
        }
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None]
        self.client.log_batch(run_id, metrics=metrics, params=_params({**(params or {}), **result.runtime}))
        table = pd.DataFrame([r.model_dump() for r in result.records])
        table["details"] = table["details"].map(lambda d: {k: float(v) for k, v in d.items()})
        self.client.log_table(run_id, data=table, artifact_file=ITEMS_TABLE)
        self.client.set_terminated(run_id, "FINISHED")

    def fail_cell(self, run_id: str, message: str, params: dict[str, str] | None = None) -> None:
        if params:
            self.client.log_batch(run_id, params=_params(params))
        self.client.set_tag(run_id, "lalo.error", message[:5000])
        self.client.set_terminated(run_id, "FAILED")

    def lose_cell(self, run_id: str, reason: str) -> None:
        """An attempt whose node was lost: retired like a run a killed sweep left, so it never counts."""
        self._retire(run_id, **{"lalo.node_lost": "true", "lalo.error": reason[:5000]})

    # ------------------------------------------------------------ projected cells

    def log_calibration(self, calibration: Calibration) -> str:
        """The calibration as a run of its own (``lalo.kind=calibration``): η per group, leave-one-out errors, cells.

        Projected cells point at this run, so every projection can be traced to the measurements behind it.
        """
        from mlflow.entities import Metric

        tags = {"lalo.kind": "calibration", "lalo.calibration_key": _calibration_key(calibration)}
        run = self.client.create_run(self.experiment_id, run_name="calibration", tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params, metrics = {}, []
        for group, eff in calibration.efficiencies.items():
            params[f"{group}.calibration_id"] = eff.calibration_id or "uncalibrated"
            params[f"{group}.source"] = eff.source
            for name in ("eta_mem", "eta_prefill", "step_overhead_per_layer_s", "prefill_overhead_per_layer_s"):
                metrics.append(Metric(f"{group}.{name}", float(getattr(eff, name)), now, 0))
        for metric, table in (
            ("loo_decode_abs_pct_error", calibration.decode_error_pct),
            ("loo_ttft_abs_pct_error", calibration.ttft_error_pct),
            ("loo_prefill_abs_pct_error", calibration.prefill_error_pct),
        ):
            metrics += [Metric(f"{group}.{metric}", float(v), now, 0) for group, v in table.items()]
        self.client.log_batch(run_id, metrics=metrics, params=_params(params))
        self.client.log_text(run_id, calibration.model_dump_json(indent=2, exclude={"run_id"}), "calibration.json")
        self.client.set_terminated(run_id, "FINISHED")
        calibration.run_id = run_id
        return run_id

    def calibration_run(self, calibration: Calibration) -> str:
        """The run of this calibration (same fitted efficiencies): the logged one, or a new one."""
        flt = f"tags.`lalo.kind` = 'calibration' AND tags.`lalo.calibration_key` = '{_calibration_key(calibration)}'"
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"], max_results=1
        )
        if runs:
            calibration.run_id = runs[0].info.run_id
            return calibration.run_id
        return self.log_calibration(calibration)

    def log_projected_cells(self, sweep_id: str, cells: list[ProjectedCell]) -> int:
        """Projected cells as children of the sweep: ``lalo.kind=projected_cell``, ``lalo.measured=false``.

        Tags name the measured run the quality came from and the calibration the speed came from, with its
        expected error. A kind of their own keeps them out of the sweep's resume bookkeeping.
        """
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for c in cells:
            p = c.projection
            tags = {
                "mlflow.parentRunId": sweep_id,
                "lalo.kind": "projected_cell",
                "lalo.measured": "false",
                "lalo.projected_from": c.measured_run_id,
                "lalo.quality_source": f"measured run {c.measured_run_id} (same model, quant and suite)",
                "lalo.calibration_id": c.calibration_id or "uncalibrated",
                "lalo.calibration_run_id": c.calibration_run_id or "none",
                "lalo.efficiency_source": p.efficiency.source[:5000],
            }
            name = f"{c.model}:{c.quant}/{c.backend}/{c.suite_label}@{c.tier} (projected)"
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            params = {
                "model": c.model, "quant": c.quant, "backend": c.backend, "tier": c.tier, "suite": c.suite,
                "suite_label": c.suite_label, "fits": str(p.fits), "notes": " | ".join(p.notes),
            }  # fmt: skip
            values = {
                "quality": c.quality,
                "fits": float(p.fits),
                "memory_required_gb": p.memory_required_gb,
                "memory_available_gb": p.memory_available_gb,
                "decode_tok_s": p.decode_tok_s,
                "ttft_ms_p50": p.ttft_ms,
                "users_at_slo": float(p.users_at_slo) if p.users_at_slo is not None else None,
                "expected_error_pct": c.expected_error_pct,
            }
            metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None]
            self.client.log_batch(run_id, metrics=metrics, params=_params(params))
            self.client.set_terminated(run_id, "FINISHED")
        return len(cells)

    def projected_cells_frame(self, sweep_id: str, include_unfinished: bool = False) -> pd.DataFrame:
        """The projected cells of a sweep (never mixed into :meth:`cells_frame`); FINISHED ones by default."""
        flt = f"tags.`mlflow.parentRunId` = '{sweep_id}' AND tags.`lalo.kind` = 'projected_cell'"
        flt += "" if include_unfinished else FINISHED_ONLY
        runs = self.client.search_runs([self.experiment_id], filter_string=flt, max_results=10000)
        rows = [
            {
                "run_id": r.info.run_id,
                "status": r.info.status,
                "measured": False,
                "projected_from": r.data.tags.get("lalo.projected_from"),
                "calibration_id": r.data.tags.get("lalo.calibration_id"),
                **r.data.params,
                **r.data.metrics,
            }
            for r in runs
        ]
        return _frame(rows, ["run_id", "status", "measured", "projected_from", "calibration_id", *PROJECTED_PARAMS])

    # ------------------------------------------------------------ load tests

    def log_load_report(
        self, report: LoadReport, name: str, params: dict[str, str] | None = None, artifacts: list[Path] | None = None
    ) -> str:
        """One parent run (``lalo.kind=loadtest``) and a child run per load point (``lalo.kind=load_point``).

        Imported results (vLLM, GuideLLM, llama-bench) use the same schema with
        ``lalo.source`` naming the tool, so they compare side by side. Returns the parent run id.
        """
        from mlflow.entities import Metric

        tags = {"lalo.kind": "loadtest", "lalo.source": report.source, "lalo.measured": "true"}
        parent = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        top = {
            "model": report.model,
            "url": report.url or "",
            "backend": report.backend or "",
            "hardware": report.hardware or "",
            "tool_version": report.tool_version or "",
            "workload": report.workload.model_dump_json() if report.workload else "",
            "slo": report.slo.label() if report.slo else "",
            **(params or {}),
        }
        self.client.log_batch(parent, params=_params(top))
        if report.max_rate_meeting_slo is not None:
            self.client.log_metric(parent, "max_rate_meeting_slo", report.max_rate_meeting_slo)
        self.client.log_text(parent, report.summary_json(), "report.json")
        for path in artifacts or []:
            self.client.log_artifact(parent, str(path))
        now = int(time.time() * 1000)
        for i, point in enumerate(report.points):
            child = self.client.create_run(
                self.experiment_id,
                run_name=f"{name}/{point.target.label()}",
                tags={**tags, "lalo.kind": "load_point", "mlflow.parentRunId": parent, "lalo.point": str(i)},
            ).info.run_id
            target = {k: str(v) for k, v in point.target.model_dump().items() if v is not None}
            point_params = {"model": report.model, "backend": report.backend or "", "target": point.target.label()}
            if point.stop_reason:
                point_params["stop_reason"] = point.stop_reason
            point_params.update({f"point.{k}": v for k, v in point.params.items()})
            metrics = [Metric(k, v, now, 0) for k, v in flat_metrics(point).items()]
            self.client.log_batch(child, metrics=metrics, params=_params({**point_params, **target}))
            if point.records:
                lines = "\n".join(r.model_dump_json() for r in point.records)
                self.client.log_text(child, lines + "\n", "requests.jsonl")
            self.client.set_terminated(child, "FINISHED")
        self.client.set_terminated(parent, "FINISHED")
        return parent

    def load_points_frame(self, source: str | None = None, include_unfinished: bool = False) -> pd.DataFrame:
        """Every load point of every load test (optionally of one tool), newest first: params and metrics.

        A load test being logged right now has points that are not FINISHED yet; they are left out by default.
        """
        flt = "tags.`lalo.kind` = 'load_point'" + (f" AND tags.`lalo.source` = '{source}'" if source else "")
        flt += "" if include_unfinished else FINISHED_ONLY
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"], max_results=10000
        )
        rows = [
            {
                "run_id": r.info.run_id,
                "status": r.info.status,
                "parent_run_id": r.data.tags.get("mlflow.parentRunId"),
                "source": r.data.tags.get("lalo.source"),
                **r.data.params,
                **r.data.metrics,
            }
            for r in runs
        ]
        return _frame(rows, ["run_id", "status", "parent_run_id", "source", "model", "backend", "target"])

    # ------------------------------------------------------------ reading back

    def latest_sweep_id(self, name: str | None = None) -> str | None:
        flt = "tags.`lalo.kind` = 'sweep'" + (f" AND tags.`lalo.sweep_name` = '{name}'" if name else "")
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"], max_results=1
        )
        return runs[0].info.run_id if runs else None

    def finished_sweeps(self) -> list[SweepInfo]:
        """Every FINISHED sweep, newest first."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string="tags.`lalo.kind` = 'sweep' AND attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1000,
        )
        return [SweepInfo(r.info.run_id, r.data.tags.get("lalo.sweep_name", ""), r.info.start_time) for r in runs]

    def cells_frame(self, sweep_id: str, include_unfinished: bool = False) -> pd.DataFrame:
        """One row per cell run: run id, status, params and metrics (FINISHED runs only by default).

        An unfinished run may not have logged its params yet (a sweep is starting its cell): it is a row with
        what it has, its params empty, and the columns of :data:`CELL_PARAMS` are there whatever the runs hold.
        """
        rows = []
        for r in self._children(sweep_id, "" if include_unfinished else FINISHED_ONLY):
            rows.append(
                {
                    "run_id": r.info.run_id,
                    "status": r.info.status,
                    "error": r.data.tags.get("lalo.error"),
                    "cell_key": r.data.tags.get("lalo.cell_key"),
                    "attempt": int(r.data.tags.get("lalo.attempt", "1")),
                    "node": r.data.tags.get("lalo.node"),
                    "node_tier": r.data.tags.get("lalo.node_tier"),
                    "node_lost": r.data.tags.get("lalo.node_lost") == "true",
                    **r.data.params,
                    **r.data.metrics,
                }
            )
        columns = ["run_id", "status", "error", "cell_key", "attempt", "node", "node_tier", "node_lost", *CELL_PARAMS]
        return _frame(rows, columns, order=CELL_ORDER)

    def items_frame(self, run_id: str) -> pd.DataFrame:
        """The per-item table of one cell run (MLflow's ``load_table`` would consult the global URI instead)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, ITEMS_TABLE, tmp)
            table = json.loads(Path(path).read_text())
        return pd.DataFrame(table["data"], columns=table["columns"])

    def sweep_items_frame(self, sweep_id: str) -> pd.DataFrame:
        """Every item of every FINISHED cell of a sweep, one row each, beside its cell's run id and params."""
        cells = self.cells_frame(sweep_id)
        keep = ["model", "quant", "backend", "tier", "suite", "suite_options", "suite_label", "weights_sha256"]
        frames = []
        for _, cell in cells.iterrows():
            items = self.items_frame(cell["run_id"]).drop(columns=["output", "details"], errors="ignore")
            params = {k: cell.get(k) for k in keep}
            if not isinstance(params["suite_label"], str):  # runs logged before suite labels existed
                params["suite_label"] = params["suite"]
            frames.append(items.assign(cell_run_id=cell["run_id"], **params))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # ------------------------------------------------------------ routing

    def start_routing(self, sweep_id: str, name: str, params: dict[str, str]) -> str:
        """A routing run (``lalo.kind=routing``) as a child of the sweep it learned from; returns its id."""
        tags = {"mlflow.parentRunId": sweep_id, "lalo.kind": "routing", "lalo.sweep_run_id": sweep_id}
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self.client.log_batch(run_id, params=_params(params))
        return run_id

    def finish_routing(self, run_id: str, metrics: dict[str, float], files: list[Path]) -> None:
        """Metrics of the comparison, the policy and its weights, the tables; then mark the run FINISHED."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)]
        for start in range(0, len(values), 900):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(run_id, metrics=values[start : start + 900])
        for path in files:
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")

    def fail_routing(self, run_id: str, message: str) -> None:
        self.client.set_tag(run_id, "lalo.error", message[:5000])
        self.client.set_terminated(run_id, "FAILED")

    def routing_policy_file(self, run_id: str, dest: Path) -> Path:
        """Download a routing run's policy and the files it names (its weights) into ``dest``; returns the policy."""
        dest.mkdir(parents=True, exist_ok=True)
        names = [a.path for a in self.client.list_artifacts(run_id)]
        policies = [n for n in names if n.endswith(".json") and not n.endswith(".report.json")]
        if not policies:
            raise LaloError(f"routing run {run_id} holds no policy file; calibrate the routing again")
        stem = Path(policies[0]).stem
        for name in names:
            if Path(name).name.startswith(stem):
                self.client.download_artifacts(run_id, name, str(dest))
        return dest / Path(policies[0]).name

    # ------------------------------------------------------------ reports

    def log_report(
        self, profile: str, inputs: dict[str, str], params: dict[str, str], metrics: dict[str, float], folder: Path
    ) -> str:
        """A report run (``lalo.kind=report``): the folder's files as artifacts, its inputs' run ids as tags.

        ``inputs`` maps a role (``sweep_run_ids``, ``routing_run_id``, ``calibration_run_id``) to run ids, so
        the MLflow UI leads from a recommendation to every run behind it.
        """
        from mlflow.entities import Metric

        tags = {"lalo.kind": "report", "lalo.profile": profile, **{f"lalo.input.{k}": v for k, v in inputs.items()}}
        run_id = self.client.create_run(self.experiment_id, run_name=f"report-{profile}", tags=tags).info.run_id
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _flat("", metrics).items()],
            params=_params(params),
        )
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def routing_runs_frame(self, sweep_id: str | None = None, include_unfinished: bool = False) -> pd.DataFrame:
        """Routing runs (optionally of one sweep), newest first: params and metrics; FINISHED ones by default."""
        flt = "tags.`lalo.kind` = 'routing'" + (f" AND tags.`lalo.sweep_run_id` = '{sweep_id}'" if sweep_id else "")
        flt += "" if include_unfinished else FINISHED_ONLY
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"], max_results=1000
        )
        rows = [
            {"run_id": r.info.run_id, "status": r.info.status, "sweep_run_id": r.data.tags.get("lalo.sweep_run_id"),
             **r.data.params, **r.data.metrics}
            for r in runs
        ]  # fmt: skip
        return _frame(rows, ["run_id", "status", "sweep_run_id"])


def _frame(rows: list[dict[str, object]], columns: list[str], order: list[str] | None = None) -> pd.DataFrame:
    """``rows`` with at least ``columns``, logged yet or not: a reader meeting a run in flight never misses one.

    Sorted by ``order``, with the gaps of runs still starting last.
    """
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=[*columns, *(c for c in frame.columns if c not in columns)])
    if order and not frame.empty:
        frame = frame.sort_values(order, na_position="last").reset_index(drop=True)
    return frame


def _flat(prefix: str, values: dict[str, float | None]) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def _calibration_key(calibration: Calibration) -> str:
    """Identifies a calibration by what it was fitted on: the ids of its groups' cell sets."""
    ids = sorted(f"{g}={e.calibration_id or 'uncalibrated'}" for g, e in calibration.efficiencies.items())
    return hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]


def _params(values: dict[str, str]) -> list:
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in values.items()]
