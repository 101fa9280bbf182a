"""A Ray cluster on this one machine for tests: each node is a real ``lalo-bench worker`` in its own session.

Nodes are started exactly as an engineer starts them on separate machines; each is its own process group, so
killing one node (``kill -9`` of the group: its raylet and its workers) is a node lost mid-cell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lalo_bench import datafiles
from lalo_bench.serving.process import free_port

JOINED = "Ray runtime started."
SMALL_OBJECT_STORE = "--object-store-memory=200000000"
"""Cells pass small objects; Ray's default (30% of RAM per node) is needless with several nodes on one machine."""


@dataclass
class Node:
    name: str
    tier: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """Lose the node: SIGKILL to its whole process group, as a power cut would."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class LocalCluster:
    address: str
    catalog: Path
    folder: Path
    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, name: str, tier: str, head: bool = False, timeout_s: float = 120) -> Node:
        log = self.folder / f"{name}.log"
        where = ["--head", "--port", self.address.rsplit(":", 1)[1]] if head else ["--address", self.address]
        cmd = [
            sys.executable, "-m", "lalo_bench.cli", "worker", "--tier", tier, "--name", name, "--num-cpus", "1",
            "--catalog", str(self.catalog), *where, "--", SMALL_OBJECT_STORE,
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(name, tier, proc, log)
        self.nodes[name] = node
        deadline = time.monotonic() + timeout_s
        while JOINED not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                node.kill()
                raise RuntimeError(f"ray node {name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        return node


def catalog_with_second_cpu_tier(path: Path, tier_id: str = "cpu-b") -> Path:
    """The shipped catalog plus a second CPU tier, a copy of ``cpu-local``: a second box of the same kind."""
    data = yaml.safe_load(datafiles.catalog_file().read_text(encoding="utf-8"))
    cpu = next(t for t in data["tiers"] if t["id"] == "cpu-local")
    data["tiers"].append({**cpu, "id": tier_id, "name": f"{cpu['name']} (a second box, tier {tier_id})"})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def local_cluster(folder: Path, catalog: Path) -> Iterator[LocalCluster]:
    """A cluster whose nodes are added with :meth:`LocalCluster.add`; every node is killed on the way out."""
    cluster = LocalCluster(f"127.0.0.1:{free_port()}", catalog, folder)
    try:
        yield cluster
    finally:
        for node in reversed(list(cluster.nodes.values())):
            node.kill()
