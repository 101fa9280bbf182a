"""A shared MLflow on PostgreSQL: a sweep logs to ``lalo-bench tracking-server`` and reads back as from sqlite.

The server is Debian's PostgreSQL (a throwaway cluster) behind MLflow's own tracking server, started by the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from lalo_bench.report.evidence import sweep_cells
from lalo_bench.serving.process import free_port
from lalo_bench.testing.postgres import running_postgres
from lalo_bench.tracking import Tracker
from tests.conftest import REPO, SMOL

pytestmark = pytest.mark.slow
SAME = ["model", "quant", "backend", "tier", "suite", "suite_label", "limit", "weights_sha256", "quality", "items"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    artifacts = tmp_path_factory.mktemp("artifacts")
    log = tmp_path_factory.mktemp("log") / "server.log"
    with running_postgres() as db, open(log, "wb") as sink:
        port = free_port()
        cmd = [sys.executable, "-m", "lalo_bench.cli", "tracking-server", "--backend-store-uri", db,
               "--artifacts", str(artifacts), "--port", str(port)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text()[-2000:]
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "mlflow server not up in 120 s: " + log.read_text()[-2000:]
                time.sleep(0.5)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _sweep(tmp: Path, uri: str) -> None:
    spec = {
        "name": "shared",
        "tier": "cpu-local",
        "models": [{"model": SMOL, "quants": ["q4_1"]}],
        "backends": ["llamacpp"],
        "suites": [{"suite": "extraction", "limit": 2}],
        "generation": {"max_tokens": 48, "n_ctx": 1024, "temperature": 0.0},
        "project_to": [],
    }
    config = tmp / "shared.yaml"
    config.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run([sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(config)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def _read(uri: str, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the report notebooks read: the sweep's cells, and one cell's per-item table (an artifact)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = Tracker()
    sweep = tracker.latest_sweep_id("shared")
    assert sweep is not None
    cells = sweep_cells(tracker, [sweep])
    return cells, tracker.items_frame(cells.iloc[0]["run_id"])


def test_sweep_on_postgres_reads_back_as_from_sqlite(
    server: str, tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite = f"sqlite:///{tmp_path}/mlflow.db"
    _sweep(tmp_path, server)
    _sweep(tmp_path, sqlite)
    shared, shared_items = _read(server, monkeypatch)
    local, local_items = _read(sqlite, monkeypatch)
    assert len(shared) == len(local) == 1
    assert set(shared.columns) == set(local.columns)
    pd.testing.assert_frame_equal(shared[SAME], local[SAME])  # greedy decoding: the same answers, the same scores
    keep = ["item_id", "score", "correct"]
    pd.testing.assert_frame_equal(shared_items[keep], local_items[keep])
    runs = httpx.post(f"{server}/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0", "1"]}).json()
    assert runs.get("runs"), "the server holds the runs"


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", "tracking-server", "--backend-store-uri",
         f"postgresql://lalo@127.0.0.1:{free_port()}/mlflow", "--artifacts", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "cannot reach PostgreSQL" in proc.stderr and "Traceback" not in proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", "tracking-server", "--backend-store-uri", "mysql://x/y",
         "--artifacts", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "must be postgresql://" in bad.stderr
