"""A sweep over two tiers on a real local Ray cluster: each cell on a node of its tier, once; nodes lost mid-cell.

The cluster is three `lalo-bench worker` nodes on this machine: the head of tier cpu-local and two of tier cpu-b
(a second CPU tier in a test catalog). Killing a node's process group is a node lost: the first loss is retried on
the other cpu-b node, the second leaves that tier with no node, so its cells are recorded failed; a new cpu-b node
and the same command then resume the sweep, and every cell ends with exactly one finished run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lalo_bench.config import load_catalog
from lalo_bench.sweep import expand, load
from lalo_bench.testing.ray_cluster import catalog_with_second_cpu_tier, local_cluster
from lalo_bench.tracking import Tracker
from tests.conftest import REPO, SMOL, wait_for

pytestmark = pytest.mark.slow


def _spec(tmp_path: Path) -> Path:
    spec = {
        "name": "two-tiers",
        "tiers": ["cpu-local", "cpu-b"],
        "models": [
            {"model": SMOL, "quants": ["q4_1"]},
            {"model": SMOL, "quants": ["q8_0"], "tiers": ["cpu-b"]},
        ],
        "suites": [{"suite": "extraction", "limit": 6}, {"suite": "reasoning", "limit": 3}],
        "generation": {"max_tokens": 32, "n_ctx": 1024, "n_threads": 1},
        "experiment": "ray",
        "project_to": [],
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_two_tier_sweep_with_lost_nodes(tmp_path: Path, smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    catalog_path = catalog_with_second_cpu_tier(tmp_path / "catalog.yaml")
    catalog = load_catalog(catalog_path)
    config = _spec(tmp_path)
    cells = expand(load(config, catalog), catalog)
    tier_of = {c.key: c.tier for c in cells}
    assert len(cells) == 6 and sorted(tier_of.values()).count("cpu-b") == 4
    tracker = Tracker("ray")  # the store exists before the sweep's process opens it

    with local_cluster(tmp_path, catalog_path) as cluster:
        cluster.add("head", "cpu-local", head=True)
        w1, w2 = cluster.add("w1", "cpu-b"), cluster.add("w2", "cpu-b")
        cmd = [
            sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(config), "--catalog", str(catalog_path),
            "--executor", "ray", "--address", cluster.address,
        ]  # fmt: skip
        sweep = subprocess.Popen(
            cmd, cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            sweep_id = wait_for(lambda: tracker.latest_sweep_id("two-tiers"), 120, "the sweep run", every_s=0.3)

            def running_on(node: str, attempt: int | None = None) -> pd.Series | None:
                runs = tracker.cells_frame(sweep_id, include_unfinished=True)
                if runs.empty:
                    return None
                hit = runs[(runs["status"] == "RUNNING") & (runs["node"] == node)]
                if attempt is not None:
                    hit = hit[hit["attempt"] == attempt]
                return hit.iloc[0] if len(hit) else None

            first = wait_for(lambda: running_on("w1"), 300, "a cell running on w1", every_s=0.3)
            time.sleep(1.0)  # into the cell, not at its start
            w1.kill()
            lost_key = first["cell_key"]
            retried = wait_for(
                lambda: (r := running_on("w2", 2)) is not None and r["cell_key"] == lost_key and r,
                300,
                "the lost cell's second attempt on w2",
                every_s=0.3,
            )
            time.sleep(1.0)
            w2.kill()
            out, err = sweep.communicate(timeout=600)
        finally:
            if sweep.poll() is None:
                sweep.kill()
        assert sweep.returncode == 1, err  # cells failed: none of tier cpu-b was left
        assert "lost with their node" in out
        assert "Ray cluster: 3 node(s); tiers: cpu-b × 2, cpu-local × 1" in err
        assert "no Ray node of tier cpu-b is in the cluster" in err

        runs = tracker.cells_frame(sweep_id, include_unfinished=True)
        # every finished cell ran on a node of its own tier, and no cell finished twice
        done = runs[runs["status"] == "FINISHED"]
        assert (done["node_tier"] == done["tier"]).all()
        assert set(done.loc[done["tier"] == "cpu-local", "node"]) <= {"head"}
        assert set(done.loc[done["tier"] == "cpu-b", "node"]) <= {"w1", "w2"}
        assert not done["cell_key"].duplicated().any()
        assert sorted(done.loc[done["tier"] == "cpu-local", "cell_key"]) == sorted(
            k for k, t in tier_of.items() if t == "cpu-local"
        ), "the head's tier lost no node, so both its cells finished"
        # the lost cell: attempt 1 on w1 and attempt 2 on w2 retired (KILLED, node lost), then recorded failed
        lost = runs[runs["cell_key"] == lost_key].sort_values("attempt")
        assert list(lost["status"]) == ["KILLED", "KILLED", "FAILED"]
        assert list(lost["node"][:2]) == ["w1", "w2"] and lost["node_lost"][:2].all()
        assert retried["run_id"] == lost.iloc[1]["run_id"]
        assert "no Ray node of tier cpu-b" in lost.iloc[2]["error"]
        # every cell of cpu-b without a finished run has exactly one failed record
        unfinished = set(tier_of) - set(done["cell_key"])
        failed = runs[runs["status"] == "FAILED"]
        assert set(failed["cell_key"]) == unfinished and not failed["cell_key"].duplicated().any()
        assert (runs.loc[runs["status"] == "KILLED", "node_lost"]).all()
        kept = set(done["run_id"])

        # a new node of the lost tier, the same command: the sweep resumes and finishes only what was missing
        cluster.add("w3", "cpu-b")
        again = subprocess.run(cmd, cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr and f"{len(kept)} already done" in again.stdout

    final = tracker.cells_frame(sweep_id)
    assert len(final) == 6 and set(final["cell_key"]) == set(tier_of), "every cell landed exactly once"
    assert kept <= set(final["run_id"]), "finished cells were not run again"
    assert (final["node_tier"] == final["tier"]).all()
    assert set(final.loc[~final["run_id"].isin(kept), "node"]) == {"w3"}
    assert final["quality"].between(0, 1).all() and (final["decode_tok_s"] > 0).all()
    assert (final["stream_triad_gbs"] > 0).all() and final["weights_sha256"].str.len().eq(64).all()

    # the local executor writes the same schema: one of these cells, run on this machine
    local_spec = {
        "name": "local-twin",
        "tier": "cpu-local",
        "models": [{"model": SMOL, "quants": ["q4_1"]}],
        "suites": [{"suite": "extraction", "limit": 6}],  # the same items: per-category metrics depend on them
        "generation": {"max_tokens": 32, "n_ctx": 1024, "n_threads": 1},
        "experiment": "ray",
        "project_to": [],
    }
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local_spec))
    local = subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(tmp_path / "local.yaml")],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert local.returncode == 0, local.stderr
    local_run = tracker.client.get_run(tracker.cells_frame(tracker.latest_sweep_id("local-twin")).iloc[0]["run_id"])
    ray_run = tracker.client.get_run(final.iloc[0]["run_id"])
    assert set(local_run.data.params) == set(ray_run.data.params)
    assert set(local_run.data.metrics) == set(ray_run.data.metrics)
    assert set(local_run.data.tags) | {"lalo.ray_node_id"} == set(ray_run.data.tags)
    assert (local_run.data.tags["lalo.executor"], ray_run.data.tags["lalo.executor"]) == ("local", "ray")
