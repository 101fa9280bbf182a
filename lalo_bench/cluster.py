"""Joining a Ray cluster as a node of one hardware tier (``lalo-bench worker``).

A node's tier is the custom resource ``tier:T`` (see :mod:`lalo_bench.executors.ray`), declared when it joins;
``LALO_NODE_NAME`` / ``LALO_NODE_TIER`` go into the environment of ``ray start``, whose workers inherit them, so
every cell logs the node it ran on. Ray does the rest: no scheduler of our own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.executors.base import NODE_NAME_ENV, NODE_TIER_ENV
from lalo_bench.executors.ray import check_reachable, tier_resource

DEFAULT_PORT = 6379


class WorkerPlan(BaseModel):
    """How this machine joins: as the head, or as a worker of the head at ``address``."""

    tier: str
    head: bool = False
    address: str | None = None
    port: int = DEFAULT_PORT
    slots: int = Field(default=1, ge=1, description="cells this node runs at once (each takes one tier unit)")
    num_cpus: int | None = None
    num_gpus: int | None = None
    name: str = Field(default_factory=socket.gethostname)
    extra: list[str] = Field(default_factory=list, description="more `ray start` arguments, passed as they are")

    def command(self) -> list[str]:
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
        if ray is None:
            raise LaloError("the Ray CLI is not installed here: pip install 'lalo-bench[ray]'")
        cmd = [ray, "start", "--block", "--disable-usage-stats"]
        if self.head:
            cmd += ["--head", f"--port={self.port}", "--include-dashboard=false"]
        else:
            cmd += [f"--address={self.address}"]
        cmd += [f"--resources={json.dumps({tier_resource(self.tier): self.slots})}"]
        if self.num_cpus is not None:
            cmd += [f"--num-cpus={self.num_cpus}"]
        if self.num_gpus is not None:
            cmd += [f"--num-gpus={self.num_gpus}"]
        return cmd + self.extra

    def env(self) -> dict[str, str]:
        return {**os.environ, NODE_NAME_ENV: self.name, NODE_TIER_ENV: self.tier, "RAY_USAGE_STATS_ENABLED": "0"}


def plan_worker(
    catalog: Catalog,
    tier: str,
    head: bool,
    address: str | None,
    **options: object,
) -> WorkerPlan:
    """Check the request against the catalog and say in one line what is missing."""
    try:
        spec = catalog.tier(tier)
    except KeyError as exc:
        raise LaloError(f"--tier: {exc.args[0]}") from None
    address = address or (None if head else os.environ.get("RAY_ADDRESS"))
    if head and address:
        raise LaloError("give --head (start the cluster here) or --address HOST:PORT (join one), not both")
    if not head and not address:
        raise LaloError(
            "say which cluster to join: --address HOST:PORT of its head (or set RAY_ADDRESS), or --head to start one"
        )
    if spec.kind == "gpu" and options.get("num_gpus") == 0:
        raise LaloError(f"tier {tier} is a GPU tier ({spec.device}); a node of it needs GPUs, not --num-gpus 0")
    if address:
        check_reachable(address)
    given = {k: v for k, v in options.items() if v is not None}
    return WorkerPlan(tier=tier, head=head, address=address, **given)
