"""``lalo-bench report``: run the three notebooks with papermill, render one self-contained HTML, log the run.

The folder ``reports/NAME/`` ends up with the executed notebooks, ``report.html`` (the three notebooks without
their code, plotly.js inline once, so it opens offline and stays interactive), ``recommendation.json``,
``routing_policy.json`` (and its weights) and ``sources.json``. The same files become the artifacts of an
MLflow report run (``lalo.kind=report``) whose tags name the sweep, routing and calibration runs behind it.
"""

from __future__ import annotations

import copy
import html
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from pydantic import BaseModel

from lalo_bench import datafiles
from lalo_bench.errors import LaloError
from lalo_bench.recommend import Recommendation, load_recommendation
from lalo_bench.report.context import RECOMMENDATION_FILE, SOURCES_FILE
from lalo_bench.report.evidence import Sources
from lalo_bench.report.summary import headline
from lalo_bench.tracking import Tracker

NOTEBOOKS = ("01_sweep", "02_routing_thresholds", "03_recommendation")
HTML_FILE = "report.html"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class ReportResult(BaseModel):
    profile: str
    folder: str
    files: list[str]
    headline: str
    run_id: str | None
    seconds: float


def notebook_dir() -> Path:
    folder = datafiles.notebooks()
    if not (folder / f"{NOTEBOOKS[0]}.ipynb").is_file():
        raise LaloError(
            f"the report notebooks are not in {folder}; reinstall lalo-bench or restore notebooks/ from git"
        )
    return folder


def execute(name: str, out: Path, parameters: dict[str, str], cwd: Path) -> Path:
    """Run one notebook with papermill; a failing cell is one line naming the notebook and the error."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target = out / f"{name}.ipynb"
    try:
        pm.execute_notebook(
            str(notebook_dir() / f"{name}.ipynb"),
            str(target),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(cwd),
        )
    except PapermillExecutionError as exc:
        failed = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        raise LaloError(f"notebook {name} failed in {failed} (see {target})") from None
    make_portable(target)
    return target


def make_portable(path: Path) -> None:
    """Take this machine's paths out of a file that ships: papermill's metadata and parameters, library warnings."""
    text = path.read_text(encoding="utf-8")
    if (portable := datafiles.portable(text)) != text:
        path.write_text(portable, encoding="utf-8")


def _plotly_as_html(nb: nbformat.NotebookNode) -> None:
    """Figures kept as plotly JSON in the notebooks become divs drawn by the page's one copy of plotly.js."""
    import plotly.io as pio

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # Library warnings on stderr (tqdm, MLflow) stay in the executed notebooks, not in the client's report.
        cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
        for output in cell["outputs"]:
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                fig = data.pop(PLOTLY_MIME)
                data.pop("text/plain", None)
                data["text/html"] = pio.to_html(
                    fig, include_plotlyjs=False, full_html=False, validate=False, config={"displaylogo": False}
                )


def render_html(notebooks: list[Path], title: str) -> str:
    """The notebooks one after another, code hidden, plotly.js inline once; no request leaves the page."""
    import plotly.offline
    from nbconvert import HTMLExporter

    merged = nbformat.v4.new_notebook()
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if "parameters" in cell.metadata.get("tags", []) or "injected-parameters" in cell.metadata.get("tags", []):
                continue
            merged.cells.append(copy.deepcopy(cell))
    merged.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    merged.metadata["title"] = title
    _plotly_as_html(merged)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(merged)
    # The template's only remote scripts are require.js and MathJax; the report needs neither.
    body = re.sub(r"<script[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", body)
    body = re.sub(r"<script[^>]*>\s*MathJax\.Hub\.Config.*?</script>", "", body, flags=re.S)
    plotly_js = f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
    return body.replace("</head>", f"<title>{html.escape(title)}</title>\n{plotly_js}\n</head>", 1)


def build_report(
    profile: str,
    out: Path,
    sweeps: list[str] | None = None,
    catalog: str | None = None,
    log: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Run the notebooks for ``profile`` into ``out``, render the HTML, log the report run."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd()
    params = {"profile": profile, "sweeps": ",".join(sweeps or []), "output_dir": str(out), "catalog": catalog or ""}
    executed = []
    for name in NOTEBOOKS:
        say(f"running {name}.ipynb")
        executed.append(execute(name, out, params, cwd))
    for needed in (RECOMMENDATION_FILE, SOURCES_FILE):
        if not (out / needed).is_file():
            raise LaloError(f"notebook 03_recommendation did not write {needed} into {out}")
    rec = load_recommendation(out / RECOMMENDATION_FILE)
    sources = Sources.model_validate_json((out / SOURCES_FILE).read_text(encoding="utf-8"))
    say(f"rendering {HTML_FILE}")
    (out / HTML_FILE).write_text(render_html(executed, f"lalo-bench report: {rec.profile}"), encoding="utf-8")
    run_id = None
    if log:
        say("logging the report run to MLflow")
        run_id = log_report(rec, sources, out)
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    return ReportResult(
        profile=rec.profile,
        folder=str(out),
        files=files,
        headline=headline(rec),
        run_id=run_id,
        seconds=time.perf_counter() - started,
    )


def log_report(rec: Recommendation, sources: Sources, folder: Path) -> str:
    """The report's files as an MLflow run, tagged with the runs it was built from."""
    inputs = {"sweep_run_ids": ",".join(sources.sweep_run_ids)}
    if sources.routing_run_id:
        inputs["routing_run_id"] = sources.routing_run_id
    if sources.calibration_run_id:
        inputs["calibration_run_id"] = sources.calibration_run_id
    choice = rec.choice
    params = {"status": rec.status, "tier": choice.tier if choice else "", "headline": headline(rec)}
    if choice:
        params["deployments"] = json.dumps([f"{d.model}:{d.quant}@{d.backend}" for d in choice.deployments])
    metrics: dict[str, float] = {"peak_rps": rec.load.peak_rps, "peak_concurrency": rec.load.peak_concurrency}
    if choice:
        metrics.update(hardware_usd=choice.hardware_usd, utilisation=choice.utilisation, mix_quality=choice.mix_quality)
    for c in rec.cost.clouds if rec.cost else []:
        if c.break_even_month is not None:
            metrics[f"break_even_month.{c.cloud}"] = float(c.break_even_month)
    return Tracker().log_report(rec.profile, inputs, params, metrics, folder)
