"""How fast a Ray sweep notices a node lost mid-cell, and how fast the cell is running again on another node.

A local cluster (a head of tier cpu-local, two `lalo-bench worker` nodes of a second CPU tier), a sweep of cells on
that tier, and `kill -9` of one worker's process group while it runs a cell. From the tracking store:

- kill → the lost attempt retired (its run's end time: the recorder sets it when Ray reports the node dead);
- kill → the retry's run started on the other node (it waits there for the cell that node is running);
- that node's slot freed (its own cell's end) → the retry's run started: Ray's scheduling plus the cell's start,
  as the driver records them (it polls every 0.25 s).

    .venv/bin/python benchmarks/ray_node_loss.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def one_round(folder: Path) -> dict[str, float]:
    from lalo_bench.testing.ray_cluster import catalog_with_second_cpu_tier, local_cluster
    from lalo_bench.tracking import Tracker

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    catalog = catalog_with_second_cpu_tier(folder / "catalog.yaml")
    spec = {
        "name": "loss",
        "tiers": ["cpu-b"],
        "models": [{"model": "smollm2-135m-instruct", "quants": ["q4_1", "q8_0"]}],
        "suites": [{"suite": "extraction", "limit": 6}],
        "generation": {"max_tokens": 32, "n_ctx": 1024, "n_threads": 1},
        "experiment": "loss",
        "project_to": [],
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(spec))
    tracker = Tracker("loss")
    with local_cluster(folder, catalog) as cluster:
        cluster.add("head", "cpu-local", head=True)
        w1 = cluster.add("w1", "cpu-b")
        cluster.add("w2", "cpu-b")
        cmd = [
            sys.executable, "-m", "lalo_bench.cli", "sweep", "--config", str(folder / "sweep.yaml"),
            "--catalog", str(catalog), "--executor", "ray", "--address", cluster.address,
        ]  # fmt: skip
        sweep = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            victim = None
            while victim is None:
                sweep_id = tracker.latest_sweep_id("loss")
                runs = tracker.cells_frame(sweep_id, include_unfinished=True) if sweep_id else None
                if runs is not None and not runs.empty:
                    hit = runs[(runs["status"] == "RUNNING") & (runs["node"] == "w1")]
                    victim = hit.iloc[0] if len(hit) else None
                time.sleep(0.2)
            time.sleep(1.0)
            killed_ms = time.time() * 1000
            w1.kill()
            sweep.wait(timeout=600)
        finally:
            if sweep.poll() is None:
                sweep.kill()
    runs = tracker.cells_frame(sweep_id, include_unfinished=True)
    mine = runs[runs["cell_key"] == victim["cell_key"]].sort_values("attempt")
    lost = tracker.client.get_run(mine.iloc[0]["run_id"]).info
    retry = tracker.client.get_run(mine.iloc[1]["run_id"]).info
    assert lost.status == "KILLED" and retry.status == "FINISHED", (lost.status, retry.status)
    # the cell w2 was busy with when the retry was queued: its end frees the slot the retry takes
    before = [
        tracker.client.get_run(r).info.end_time
        for r in runs.loc[(runs["node"] == "w2") & (runs["cell_key"] != victim["cell_key"]), "run_id"]
    ]
    # driver-side times: the retry's start event and the busy cell's result can land in one 0.25 s poll, so the
    # difference may come out slightly negative
    freed_ms = min(before, key=lambda t: abs(retry.start_time - t))
    return {
        "kill_to_lost_retired_s": (lost.end_time - killed_ms) / 1000,
        "kill_to_retry_started_s": (retry.start_time - killed_ms) / 1000,
        "slot_freed_to_retry_started_s": (retry.start_time - freed_ms) / 1000,
        "cells_finished": int((runs["status"] == "FINISHED").sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_node_loss.json")
    args = parser.parse_args()
    rounds = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="lalo-ray-loss-") as tmp:
            rounds.append(one_round(Path(tmp)))
        print(f"round {i + 1}: {rounds[-1]}", flush=True)
    import ray

    summary = {
        "ray": ray.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (all nodes on this one machine)",
        "rounds": rounds,
        "median_kill_to_lost_retired_s": statistics.median(r["kill_to_lost_retired_s"] for r in rounds),
        "median_kill_to_retry_started_s": statistics.median(r["kill_to_retry_started_s"] for r in rounds),
        "median_slot_freed_to_retry_started_s": statistics.median(r["slot_freed_to_retry_started_s"] for r in rounds),
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
