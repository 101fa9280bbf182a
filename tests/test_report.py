"""``lalo-bench report`` end to end: a tiny real sweep → the three papermill notebooks → HTML checked in Chromium.

A notebook that breaks fails here, so it fails CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from lalo_bench.profiles import profile_path
from lalo_bench.recommend import load_recommendation
from lalo_bench.report.build import HTML_FILE, NOTEBOOKS, PLOTLY_MIME
from lalo_bench.routing.policy import load_policy
from tests.conftest import REPO, SMOL
from tests.test_routing_cli import _log_sweep, lalo

pytestmark = pytest.mark.slow


def _figures(notebook: Path) -> list[dict]:
    nb = nbformat.read(notebook, as_version=4)
    return [o["data"][PLOTLY_MIME] for c in nb.cells for o in c.get("outputs", []) if PLOTLY_MIME in o.get("data", {})]


def _errors(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [o["ename"] for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> tuple[Path, str]:
    """SmolLM2 on three items of each task suite, really run, in a store of its own."""
    root = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{root}/mlflow.db"
    spec = {
        "name": "tiny",
        "tier": "cpu-local",
        "models": [{"model": SMOL, "quants": ["q4_1"]}],
        "backends": ["llamacpp"],
        "suites": [
            {"suite": "extraction", "limit": 3},
            {"suite": "tool_calls", "limit": 3, "options": {"mode": "prompt"}},
            {"suite": "reasoning", "limit": 3},
        ],
        "generation": {"max_tokens": 64, "n_ctx": 2048},
        "project_to": [],
    }
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(spec))
    env = {"MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(config)],
        capture_output=True, text=True, cwd=REPO, timeout=900, env={**os.environ, **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return root, uri


def test_report_from_a_tiny_real_sweep(tiny_sweep: tuple[Path, str]) -> None:
    root, uri = tiny_sweep
    # The shipped small profile (SmolLM2 cannot reach its floors) and one with no floors (anything fits).
    lenient = yaml.safe_load(profile_path("small").read_text())
    lenient.update(name="lenient", quality_floor={})
    lenient_file = root / "lenient.yaml"
    lenient_file.write_text(yaml.safe_dump(lenient))
    out = root / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", "report", "--profile", "small", "--profile", str(lenient_file),
         "--out", str(out), "--check"],
        capture_output=True, text=True, cwd=REPO, timeout=900, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "small: nothing fits" in proc.stdout and "lenient: tier minimal" in proc.stdout

    for name, status in (("small", "nothing_fits"), ("lenient", "recommended")):
        folder = out / name
        for nb in NOTEBOOKS:
            assert _errors(folder / f"{nb}.ipynb") == [], nb
        assert len(_figures(folder / "01_sweep.ipynb")) == 3  # Pareto, tokens/s, memory fit
        assert len(_figures(folder / "03_recommendation.ipynb")) == 2  # latency margins, cost
        rec = load_recommendation(folder / "recommendation.json")
        assert rec.status == status
        sources = json.loads((folder / "sources.json").read_text())
        assert len(sources["sweep_run_ids"]) == 1 and sources["calibration_run_id"]
        html = (folder / HTML_FILE).read_text()
        assert '<script src="http' not in html and "Plotly.newPlot" in html
        assert (folder / "report.png").stat().st_size > 10_000  # the --check screenshot
    small = load_recommendation(out / "small" / "recommendation.json")
    assert {m.need for m in small.missing} == {"quality_floor"}
    lenient_rec = load_recommendation(out / "lenient" / "recommendation.json")
    assert lenient_rec.choice is not None and lenient_rec.choice.deployments[0].model == SMOL
    assert lenient_rec.choice.deployments[0].speed_source == "projected"
    assert lenient_rec.cost is not None and lenient_rec.cost.clouds

    # The report runs, linked to the sweep they read, with the files as artifacts.
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`lalo.kind` = 'report'", max_results=10
    )
    assert sorted(r.data.tags["lalo.profile"] for r in runs) == ["lenient", "small"]
    for run in runs:
        assert run.data.tags["lalo.input.sweep_run_ids"] == sources["sweep_run_ids"][0]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"recommendation.json", HTML_FILE, "03_recommendation.ipynb", "sources.json"} <= artifacts


def test_routing_notebook_draws_the_learned_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep with a routing run: notebook 02 draws every router's curve and the chosen point; the policy ships."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    sweep_id = _log_sweep()
    args = ("--sweep", sweep_id, "--target-quality", "0.9", "--features", "tfidf", "--bootstrap", "50")
    code, _, stderr = lalo("route", "calibrate", *args, "--out", str(tmp_path / "p.json"), monkeypatch=monkeypatch,
                           capsys=capsys)  # fmt: skip
    assert code == 0, stderr
    out = tmp_path / "report"
    code, _, stderr = lalo("report", "--profile", "small", "--out", str(out), "--no-log", monkeypatch=monkeypatch,
                                capsys=capsys)  # fmt: skip
    assert code == 0, stderr
    assert _errors(out / "02_routing_thresholds.ipynb") == []
    (figure,) = _figures(out / "02_routing_thresholds.ipynb")
    names = {t.get("name") for t in figure["data"]}
    assert {"learned", "random", "chosen thresholds (test)", "single models"} <= names
    policy = load_policy(out / "routing_policy.json")  # with its weights beside it, as a gateway reads it
    assert policy.source.sweep_run_id == sweep_id
    assert (out / policy.router.weights.path).is_file()
