"""MLflow runs → the typed evidence :func:`lalo_bench.recommend.recommend` reads, with the run id behind each number.

* **Quality**: every FINISHED cell of the chosen sweeps whose suite is a task of the mix. One cell per model ×
  quant × task: the one with the most items (the tightest interval), then the higher score — a suite run in
  two modes (tool calls native and prompted) is a deployment choice, and the better mode is the one deployed;
  the note names it. Cells of the same items in two sweeps are never pooled (their items overlap).
* **Speed**: the roofline projection of every such model × quant on every candidate tier, sized for the
  profile's peak (:func:`lalo_bench.recommend.project_for_profile`), each pointing at the calibration run it
  came from. Speed measured on the bench machine is a measurement of *that* machine, which is not for sale;
  the figures show it beside the projections, and the calibration is fitted on such measurements.
* **Routing**: the newest FINISHED routing run of the chosen sweeps, read back as its policy file.

Oracles (the exact puzzle solver) score the suite's ceiling; they are evidence of the suite, not deployable
models, and are left out of the quality evidence.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lalo_bench import datafiles
from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.hardware.calibration import Calibration
from lalo_bench.profiles import ClientProfile
from lalo_bench.recommend import (
    Evidence,
    QualityEvidence,
    RoutingEvidence,
    Settings,
    SpeedEvidence,
    candidate_tiers,
    plan_projections,
    project_for_profile,
)
from lalo_bench.routing.policy import RoutingPolicy, load_policy
from lalo_bench.tracking import Tracker, portable_uri

TASKS = ("tool_calls", "extraction", "reasoning", "puzzles")
ORACLE_BACKENDS = {"solver"}


class Sources(BaseModel):
    """The runs a report was built from: what its MLflow report run links to."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(description="the store, without this machine's paths (tracking.portable_uri)")
    sweep_run_ids: list[str]
    routing_run_id: str | None = None
    calibration_run_id: str | None = None
    policy_file: str | None = Field(default=None, description="the routing policy read back from its run")


class Gathered(BaseModel):
    """Evidence for one profile and where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    evidence: Evidence
    sources: Sources
    policy: RoutingPolicy | None = None
    policy_path: Path | None = Field(default=None, description="where the policy was read back to, for its tables")
    cells: pd.DataFrame = Field(repr=False, description="the sweeps' finished cells the quality came from")


def resolve_sweeps(tracker: Tracker, sweeps: list[str] | None) -> list[str]:
    """Run ids of the sweeps to read: the given ids or sweep names, or every FINISHED sweep, newest first."""
    found = tracker.finished_sweeps()
    if not found:
        raise LaloError(
            "no finished sweep in the tracking store: run one first "
            "(lalo-bench sweep --config examples/routing_ladder.yaml)"
        )
    if not sweeps:
        return [s.run_id for s in found]
    chosen: list[str] = []
    for wanted in sweeps:
        match = [s.run_id for s in found if wanted in (s.run_id, s.name)]
        if not match:
            names = ", ".join(sorted({f"{s.name} ({s.run_id[:8]})" for s in found}))
            raise LaloError(f"no finished sweep '{wanted}' in the tracking store (finished sweeps: {names})")
        chosen.append(match[0])  # newest of that name
    return list(dict.fromkeys(chosen))


def sweep_cells(tracker: Tracker, sweep_ids: list[str]) -> pd.DataFrame:
    """FINISHED cells of the sweeps, one frame, with their sweep's run id."""
    frames = [tracker.cells_frame(s).assign(sweep_run_id=s) for s in sweep_ids]
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise LaloError(f"the sweeps {', '.join(sweep_ids)} hold no finished cell; run or resume them first")
    cells = pd.concat(frames, ignore_index=True)
    cells["suite_label"] = cells["suite_label"].fillna(cells["suite"])  # runs logged before suite options existed
    return cells


def quality_evidence(cells: pd.DataFrame) -> list[QualityEvidence]:
    """One measured quality per model × quant × task (rules in the module docstring)."""
    rows = cells[cells["suite"].isin(TASKS) & ~cells["backend"].isin(ORACLE_BACKENDS) & cells["quality"].notna()]
    out: list[QualityEvidence] = []
    for (model, quant, suite), group in rows.groupby(["model", "quant", "suite"], sort=True):
        best = group.sort_values(["items", "quality"], ascending=False).iloc[0]
        modes = sorted(set(group["suite_label"]))
        note = f"{best['suite_label']}" + (f" (best of {', '.join(modes)})" if len(modes) > 1 else "")
        out.append(
            QualityEvidence(
                model=model,
                quant=quant,
                suite=suite,
                quality=float(best["quality"]),
                source="measured",
                run_id=best["run_id"],
                items=int(best["items"]),
                note=note,
            )
        )
    return out


def speed_evidence(
    catalog: Catalog,
    profile: ClientProfile,
    quality: list[QualityEvidence],
    settings: Settings,
    calibration: Calibration,
    calibration_run_id: str | None,
) -> list[SpeedEvidence]:
    """Each model × quant with quality evidence, projected on every candidate tier for the profile's peak."""
    known = {m.id for m in catalog.models}
    pairs = sorted({(q.model, q.quant) for q in quality if q.model in known})
    return [
        SpeedEvidence.from_projection(
            project_for_profile(catalog, profile, model, tier.id, quant=quant, calibration=calibration),
            calibration_run_id,
        )
        for tier in candidate_tiers(catalog, profile, settings)
        for model, quant in pairs
        if quant in catalog.model(model).quants
    ]


def routing_evidence(
    tracker: Tracker, sweep_ids: list[str], workdir: Path
) -> tuple[RoutingEvidence | None, RoutingPolicy | None, str | None, Path | None]:
    """The newest finished routing run of these sweeps, its policy read back from MLflow (None when none)."""
    runs = tracker.routing_runs_frame()  # FINISHED ones, newest first
    finished = runs[runs["sweep_run_id"].isin(sweep_ids)]
    if finished.empty:
        return None, None, None, None
    run_id = str(finished.iloc[0]["run_id"])
    path = tracker.routing_policy_file(run_id, workdir)
    policy = load_policy(path)
    return RoutingEvidence.from_policy(policy, f"routing run {run_id}"), policy, run_id, path


def gather(
    tracker: Tracker,
    catalog: Catalog,
    profile: ClientProfile,
    calibration: Calibration,
    workdir: Path,
    sweeps: list[str] | None = None,
    settings: Settings | None = None,
) -> Gathered:
    """Quality, speed and routing evidence for ``profile`` from the tracking store."""
    settings = settings or Settings()
    sweep_ids = resolve_sweeps(tracker, sweeps)
    cells = sweep_cells(tracker, sweep_ids)
    quality = quality_evidence(cells)
    if not quality:
        raise LaloError(
            f"the sweeps {', '.join(s[:8] for s in sweep_ids)} scored no model on a task suite "
            f"({', '.join(TASKS)}); sweep at least one of them"
        )
    calibration_run_id = tracker.calibration_run(calibration)
    speed = speed_evidence(catalog, profile, quality, settings, calibration, calibration_run_id)
    speed += [s for s in plan_projections(catalog, profile, calibration, calibration_run_id) if s not in speed]
    routing, policy, routing_run_id, policy_path = routing_evidence(tracker, sweep_ids, workdir)
    return Gathered(
        evidence=Evidence(quality=quality, speed=speed, routing=routing),
        sources=Sources(
            tracking_uri=portable_uri(),
            sweep_run_ids=sweep_ids,
            routing_run_id=routing_run_id,
            calibration_run_id=calibration_run_id,
            policy_file=datafiles.portable(str(policy_path)) if policy_path else None,
        ),
        policy=policy,
        policy_path=policy_path,
        cells=cells,
    )
