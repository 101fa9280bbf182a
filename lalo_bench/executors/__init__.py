"""Where sweep cells run: this machine (``local``) or the nodes of a Ray cluster (``ray``).

An executor takes the sweep's cells and tells a :class:`~lalo_bench.executors.base.SweepListener` what happens
to each: started on a node, its progress, finished with an outcome, or lost with its node. It never writes
results itself. The listener runs where ``lalo-bench sweep`` runs and is the only writer of the tracking store,
so a cell is counted once whatever the executor, and both executors produce the same MLflow schema.
"""

from __future__ import annotations

from lalo_bench.executors.base import CellOutcome, CellTask, Executor, NodeInfo, SweepListener

EXECUTORS = ("local", "ray")


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor called ``name``; ``address`` is the Ray cluster's (default: RAY_ADDRESS, then this machine's)."""
    if name == "local":
        from lalo_bench.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from lalo_bench.executors.ray import RayExecutor

        return RayExecutor(address)
    raise ValueError(f"unknown executor '{name}' (known: {', '.join(EXECUTORS)})")


__all__ = ["EXECUTORS", "CellOutcome", "CellTask", "Executor", "NodeInfo", "SweepListener", "get_executor"]
