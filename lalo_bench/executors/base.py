"""What executors and the sweep say to each other: a cell's task, the node it ran on, its outcome, and events."""

from __future__ import annotations

import os
import socket
from typing import Protocol

from pydantic import BaseModel, Field

from lalo_bench.config import Catalog, GenerationSettings
from lalo_bench.results import Cell, CellResult

NODE_NAME_ENV = "LALO_NODE_NAME"
NODE_TIER_ENV = "LALO_NODE_TIER"
"""Set by ``lalo-bench worker`` for the Ray node it starts; its raylet's workers inherit them."""


class NodeInfo(BaseModel):
    """The machine a cell ran on, as logged beside its results."""

    name: str = Field(description="the name the node joined under (lalo-bench worker --name), else its hostname")
    host: str
    tier: str | None = Field(default=None, description="the tier the node declared when it joined (Ray)")
    ray_node_id: str | None = None

    @classmethod
    def here(cls, ray_node_id: str | None = None) -> NodeInfo:
        host = socket.gethostname()
        return cls(
            name=os.environ.get(NODE_NAME_ENV) or host,
            host=host,
            tier=os.environ.get(NODE_TIER_ENV) or None,
            ray_node_id=ray_node_id,
        )


class CellTask(BaseModel):
    """One attempt at one cell: everything a node needs besides the catalog."""

    cell: Cell
    generation: GenerationSettings
    attempt: int = Field(default=1, ge=1, description="1, then 2… when a node was lost under an earlier attempt")


class CellOutcome(BaseModel):
    """How a cell ended: a result, or the one-line reason it has none."""

    result: CellResult | None = None
    error: str | None = None
    params: dict[str, str] = Field(default_factory=dict, description="the weights' pin and the runtime's versions")
    node: NodeInfo | None = Field(default=None, description="None when the cell never reached a node")


class SweepListener(Protocol):
    """Told, on the machine that runs the sweep, what happens to each cell. Events of one task arrive in order."""

    def started(self, task: CellTask, node: NodeInfo) -> None:
        """The attempt began on ``node`` (before its weights are fetched)."""

    def weights_progress(self, task: CellTask, done: int, total: int | None) -> None:
        """Bytes of the cell's weights verified or fetched so far on its node."""

    def item_done(self, task: CellTask, score: float) -> None:
        """One more item of the cell was answered and scored."""

    def finished(self, task: CellTask, outcome: CellOutcome) -> None:
        """The cell ended (with a result or an error). Called once per cell, after its last attempt."""

    def lost(self, task: CellTask, reason: str) -> None:
        """The attempt's node was lost; a retry (attempt + 1) or :meth:`finished` with an error follows."""

    def note(self, text: str) -> None:
        """Something the person running the sweep should read (e.g. which tiers the cluster has)."""


class Executor(Protocol):
    """Runs cells somewhere and reports each one's fate to the listener."""

    name: str

    def connect(self) -> None:
        """Reach where cells will run; raises a one-line LaloError when it cannot (before anything is logged)."""

    def run(self, catalog: Catalog, tasks: list[CellTask], listener: SweepListener) -> None: ...
