"""The default executor: every cell on this machine, one after another, each in its own spawned process."""

from __future__ import annotations

from lalo_bench.config import Catalog
from lalo_bench.executors.base import CellTask, NodeInfo, SweepListener
from lalo_bench.executors.node import execute_cell


class LocalExecutor:
    name = "local"

    def connect(self) -> None:
        """Nothing to join: this machine is the only node."""

    def run(self, catalog: Catalog, tasks: list[CellTask], listener: SweepListener) -> None:
        here = NodeInfo.here()
        for task in tasks:
            # this machine is the tier the spec names (unless it joined a cluster under a tier of its own)
            node = here if here.tier else here.model_copy(update={"tier": task.cell.tier})
            listener.started(task, node)
            outcome = execute_cell(
                catalog,
                task,
                node,
                on_bytes=lambda done, total, task=task: listener.weights_progress(task, done, total),
                on_item=lambda record, task=task: listener.item_done(task, record.score),
            )
            listener.finished(task, outcome)
