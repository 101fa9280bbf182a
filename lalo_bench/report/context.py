"""Everything a report's notebooks show, read once from the tracking store: what each notebook calls first."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lalo_bench.config import Catalog, load_catalog
from lalo_bench.hardware.calibration import default_calibration
from lalo_bench.profiles import ClientProfile, load_profile
from lalo_bench.recommend import Recommendation, Settings, recommend, write_recommendation
from lalo_bench.report.evidence import Gathered, gather
from lalo_bench.routing.policy import write_policy
from lalo_bench.tracking import Tracker

RECOMMENDATION_FILE = "recommendation.json"
POLICY_FILE = "routing_policy.json"
SOURCES_FILE = "sources.json"


@dataclass
class ReportContext:
    profile: ClientProfile
    catalog: Catalog
    gathered: Gathered
    cells: pd.DataFrame
    load_points: pd.DataFrame
    recommendation: Recommendation
    workdir: Path


def parse_sweeps(sweeps: str | list[str] | None) -> list[str] | None:
    """A papermill parameter: comma-separated ids or names; empty means every finished sweep."""
    if sweeps is None or isinstance(sweeps, list):
        return sweeps or None
    return [s.strip() for s in sweeps.split(",") if s.strip()] or None


def load_context(
    profile: str,
    sweeps: str | list[str] | None = None,
    workdir: str | Path = ".",
    catalog_path: str | None = None,
    settings: Settings | None = None,
) -> ReportContext:
    """Read the sweeps, routing and calibration for ``profile`` and run the recommendation."""
    catalog = load_catalog(catalog_path or None)
    client = load_profile(profile, catalog)
    tracker = Tracker()
    work = Path(workdir)
    gathered = gather(tracker, catalog, client, default_calibration(), work / ".inputs", parse_sweeps(sweeps), settings)
    return ReportContext(
        profile=client,
        catalog=catalog,
        gathered=gathered,
        cells=gathered.cells,
        load_points=tracker.load_points_frame(),
        recommendation=recommend(client, catalog, gathered.evidence, settings),
        workdir=work,
    )


def write_outputs(ctx: ReportContext, out: str | Path) -> list[Path]:
    """``recommendation.json``, ``routing_policy.json`` (with its weights) and ``sources.json`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_recommendation(ctx.recommendation, folder / RECOMMENDATION_FILE)]
    policy, source = ctx.gathered.policy, ctx.gathered.sources.policy_file
    if policy is not None and source is not None:
        if policy.router.weights is not None:
            weights = Path(source).with_name(policy.router.weights.path)
            written.append(Path(shutil.copy2(weights, folder / weights.name)))
        # The client's privacy setting travels with the policy: a gateway uses the cloud only where it says so.
        shipped = policy.model_copy(update={"cloud_fallback": ctx.profile.privacy.cloud_fallback})
        written.append(write_policy(shipped, folder / POLICY_FILE))
    sources = folder / SOURCES_FILE
    sources.write_text(ctx.gathered.sources.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return [*written, sources]
