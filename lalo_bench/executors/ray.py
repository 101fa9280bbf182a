"""Cells on a Ray cluster: each cell is a Ray task that runs only on a node of its tier.

A node declares its tier when it joins (``lalo-bench worker --tier T``) as the custom resource ``tier:T``, one
unit per benchmark slot (default one, so cells on a node never share its cores or GPUs and their timings are
their own). A cell asks for one unit of its tier, the GPUs its memory fit needs and the host memory it needs, so
Ray places it only where it can run.

Retries are ours, not Ray's (``max_retries=0``): when a node is lost mid-cell the attempt is reported lost and
submitted again, to another node of the same tier, or recorded as failed when none is left. Only a finished
attempt returns a result, and only the sweep's listener logs it, so a cell is never counted twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from lalo_bench.config import Catalog, GenerationSettings
from lalo_bench.errors import BackendError, LaloError
from lalo_bench.executors.base import CellOutcome, CellTask, NodeInfo, SweepListener
from lalo_bench.results import Cell
from lalo_bench.suites import ORACLES

TIER_RESOURCE_PREFIX = "tier:"
MAX_ATTEMPTS = 3
"""A cell whose node was lost this many times is recorded as failed rather than tried again."""
POLL_S = 0.25
NODES_CHECK_S = 2.0
BYTES_EVENT_S = 0.5
"""Weights progress is sent at most this often (each event is a call to the driver's queue actor)."""


def tier_resource(tier_id: str) -> str:
    """The custom Ray resource a node of ``tier_id`` declares and a cell of that tier asks for."""
    return f"{TIER_RESOURCE_PREFIX}{tier_id}"


class CellResources(BaseModel):
    """What one cell asks Ray for."""

    tier: str
    num_cpus: float = 1.0
    num_gpus: float = Field(default=0.0, description="the devices its memory fit spreads the model over")
    memory_bytes: int = Field(default=0, description="host RAM: all of it on a CPU tier, the offload on a GPU tier")

    def ray_options(self) -> dict[str, Any]:
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "memory": self.memory_bytes or None,
            "resources": {tier_resource(self.tier): 1},
        }

    def shortfall(self, node_totals: dict[str, float]) -> str | None:
        """What this node lacks to ever run the cell (None: it can)."""
        if node_totals.get(tier_resource(self.tier), 0) < 1:
            return f"not of tier {self.tier}"
        if node_totals.get("GPU", 0) < self.num_gpus:
            return f"{node_totals.get('GPU', 0):g} GPU(s), the cell needs {self.num_gpus:g}"
        if node_totals.get("memory", 0) < self.memory_bytes:
            have, need = node_totals.get("memory", 0) / 1e9, self.memory_bytes / 1e9
            return f"{have:.1f} GB of Ray memory, the cell needs {need:.1f} GB"
        if node_totals.get("CPU", 0) < self.num_cpus:
            return f"{node_totals.get('CPU', 0):g} CPU(s), the cell needs {self.num_cpus:g}"
        return None


def cell_resources(catalog: Catalog, cell: Cell, generation: GenerationSettings) -> CellResources:
    """The resources of ``cell`` from the memory model; a cell that cannot fit its tier is refused in one line."""
    from lalo_bench.hardware.memory import estimate

    tier = catalog.tier(cell.tier)
    if cell.backend in ORACLES:
        return CellResources(tier=tier.id)
    est = estimate(catalog, cell.model, cell.quant, cell.backend, tier.id, users=1, context_tokens=generation.n_ctx)
    if not est.fits:
        raise LaloError(f"{cell.label} does not fit tier {tier.id}: {est.notes[0] if est.notes else ''}".strip())
    if tier.kind == "gpu":
        return CellResources(tier=tier.id, num_gpus=est.devices_used, memory_bytes=int(est.offload_gb * 1e9))
    return CellResources(tier=tier.id, memory_bytes=int(est.required_gb * 1e9))


def unplaceable(resources: CellResources, nodes: list[dict[str, Any]], address: str) -> str | None:
    """Why none of ``nodes`` (live, as ``ray.nodes()`` lists them) can ever run the cell; None when one can."""
    of_tier = [n for n in nodes if n.get("Resources", {}).get(tier_resource(resources.tier), 0) >= 1]
    if not of_tier:
        return (
            f"no Ray node of tier {resources.tier} is in the cluster; start one there with "
            f"`lalo-bench worker --tier {resources.tier} --address {address}`"
        )
    lacks = [resources.shortfall(n["Resources"]) for n in of_tier]
    if all(lacks):
        return f"no node of tier {resources.tier} can hold the cell (one has {lacks[0]})"
    return None


def cluster_summary(nodes: list[dict[str, Any]], cell_tiers: list[str]) -> str:
    """One line: the live nodes per tier, and the tiers cells wait for that have none."""
    per_tier: dict[str, int] = {}
    for node in nodes:
        for name, amount in node.get("Resources", {}).items():
            if name.startswith(TIER_RESOURCE_PREFIX) and amount >= 1:
                tier = name.removeprefix(TIER_RESOURCE_PREFIX)
                per_tier[tier] = per_tier.get(tier, 0) + 1
    have = ", ".join(f"{tier} × {n}" for tier, n in sorted(per_tier.items())) or "none with a tier"
    line = f"Ray cluster: {len(nodes)} node(s); tiers: {have}"
    missing = sorted({t for t in cell_tiers if t not in per_tier})
    if missing:
        counts = ", ".join(f"{t} ({cell_tiers.count(t)} cell(s))" for t in missing)
        line += f"; no node yet for {counts}"
    return line


def _run_on_node(catalog: Catalog, task: CellTask, events: Any) -> CellOutcome:
    """The Ray task: one attempt at one cell on this node, its progress sent to the driver's queue."""
    import ray

    from lalo_bench.executors.node import execute_cell

    os.environ.setdefault("TQDM_DISABLE", "1")
    node = NodeInfo.here(ray.get_runtime_context().get_node_id())
    ident = (task.cell.key, task.attempt)
    events.put((ident, "started", node))
    last = [0.0]

    def on_bytes(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= BYTES_EVENT_S or (total is not None and done >= total):
            last[0] = now
            events.put((ident, "bytes", (done, total)))

    return execute_cell(
        catalog, task, node, on_bytes=on_bytes, on_item=lambda record: events.put((ident, "item", record.score))
    )


@dataclass
class _Attempt:
    task: CellTask
    resources: CellResources
    node: NodeInfo | None = None

    @property
    def ident(self) -> tuple[str, int]:
        return self.task.cell.key, self.task.attempt


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or "auto"
        self._ray: Any = None

    def connect(self) -> None:
        """Join the cluster now, so a cluster that is not there fails before the sweep is started."""
        if self._ray is None:
            self._ray = _connect(self.address)

    def run(self, catalog: Catalog, tasks: list[CellTask], listener: SweepListener) -> None:
        self.connect()
        try:
            _Session(self._ray, self.address, catalog, listener).run(tasks)
        finally:
            self._ray.shutdown()
            self._ray = None


class _Session:
    """One sweep's cells on the cluster: submit, follow events, retry lost attempts, give up on a tier with no node."""

    def __init__(self, ray: Any, address: str, catalog: Catalog, listener: SweepListener) -> None:
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray, self.catalog, self.listener = ray, catalog, listener
        # the queue lives on the driver's node, so losing a worker node never loses the events of the others
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self.events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        self.catalog_ref = ray.put(catalog)
        self.remote = ray.remote(_run_on_node)
        self.pending: dict[Any, _Attempt] = {}
        self.by_ident: dict[tuple[str, int], _Attempt] = {}
        self.dead: set[str] = set()
        self.join_address = address if address != "auto" else _gcs_address(ray)

    def run(self, tasks: list[CellTask]) -> None:
        nodes = self._alive_nodes()
        self.listener.note(cluster_summary(nodes, [t.cell.tier for t in tasks]))
        for task in tasks:
            self._submit(task, nodes)
        last_check = time.monotonic()
        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=POLL_S)
            self._drain()
            for ref in ready:
                self._settle(ref, self._take(ref))
            if time.monotonic() - last_check >= NODES_CHECK_S:
                last_check = time.monotonic()
                self._drop_unplaceable()

    # ------------------------------------------------------------ submitting

    def _submit(
        self,
        task: CellTask,
        nodes: list[dict[str, Any]],
        resources: CellResources | None = None,
        lost: str | None = None,
    ) -> None:
        """Queue one attempt, or record the cell failed when it cannot fit its tier or no live node can hold it.

        A retry passes its first attempt's ``resources`` and ``lost`` (which node went), for the failure's message.
        """
        if resources is None:
            try:
                resources = cell_resources(self.catalog, task.cell, task.generation)
            except LaloError as exc:
                self.listener.finished(task, CellOutcome(error=str(exc)))
                return
        why = unplaceable(resources, nodes, self.join_address)
        if why is not None:
            if lost is not None:
                why = f"{lost} was lost and {why}; then run the sweep again to resume"
            self.listener.finished(task, CellOutcome(error=f"{task.cell.label}: {why}"))
            return
        ref = self.remote.options(**resources.ray_options(), max_retries=0, name=f"lalo-cell {task.cell.label}").remote(
            self.catalog_ref, task, self.events
        )
        attempt = _Attempt(task, resources)
        self.pending[ref] = attempt
        self.by_ident[attempt.ident] = attempt

    def _take(self, ref: Any) -> _Attempt:
        """Stop following an attempt (it ended, or is being dropped)."""
        attempt = self.pending.pop(ref)
        self.by_ident.pop(attempt.ident, None)
        return attempt

    def _alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive") and n.get("NodeID") not in self.dead]

    # ------------------------------------------------------------ following

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                batch = self.events.get_nowait_batch(max(1, self.events.qsize()))
            except Empty:
                return
            for ident, kind, payload in batch:
                attempt = self.by_ident.get(ident)
                if attempt is None:
                    continue
                if kind == "started":
                    attempt.node = payload
                    self.listener.started(attempt.task, payload)
                elif kind == "bytes":
                    self.listener.weights_progress(attempt.task, *payload)
                elif kind == "item":
                    self.listener.item_done(attempt.task, payload)

    def _settle(self, ref: Any, attempt: _Attempt) -> None:
        from ray import exceptions as rex

        task = attempt.task
        try:
            outcome = self.ray.get(ref)
        except (rex.NodeDiedError, rex.WorkerCrashedError, rex.LocalRayletDiedError) as exc:
            self._lost(attempt, exc)
        except rex.TaskCancelledError:
            return  # cancelled by _drop_unplaceable, which has reported it
        except rex.RayTaskError as exc:  # a bug on the node, not a cell failure the user caused
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            message = f"{task.cell.label}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
            self.listener.finished(task, CellOutcome(error=message, node=attempt.node))
        else:
            self.listener.finished(task, outcome)

    def _lost(self, attempt: _Attempt, exc: Exception) -> None:
        task = attempt.task
        where = f"node {attempt.node.name}" if attempt.node else "its node"
        if attempt.node is not None and attempt.node.ray_node_id:
            self.dead.add(attempt.node.ray_node_id)
        self.listener.lost(task, f"{where} was lost mid-cell ({type(exc).__name__})")
        if task.attempt >= MAX_ATTEMPTS:
            self.listener.finished(
                task, CellOutcome(error=f"{task.cell.label}: its node was lost {task.attempt} times; not tried again")
            )
            return
        retry = task.model_copy(update={"attempt": task.attempt + 1})
        self._submit(retry, self._alive_nodes(), attempt.resources, lost=where)

    def _drop_unplaceable(self) -> None:
        """Cells waiting for a tier whose last node left would wait forever: record them as failed instead."""
        nodes = self._alive_nodes()
        for ref, attempt in list(self.pending.items()):
            if attempt.node is not None:
                continue  # running: its node's loss arrives as NodeDiedError
            why = unplaceable(attempt.resources, nodes, self.join_address)
            if why is None:
                continue
            self.ray.cancel(ref)
            self._take(ref)
            self.listener.finished(attempt.task, CellOutcome(error=f"{attempt.task.cell.label}: {why}"))


def _gcs_address(ray: Any) -> str:
    """The head's HOST:PORT as this driver joined it, for the `lalo-bench worker --address` hints."""
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:
        return "HEAD:6379"


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Ray waits for an unreachable head for minutes, logging as it goes; say it in one line at once instead."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LaloError(f"Ray address '{address}' is not HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BackendError(
            f"no Ray head answers at {address} ({exc.strerror or exc}); start it there with "
            "`lalo-bench worker --head --tier TIER`, or check the address and the firewall"
        ) from None


def _connect(address: str) -> Any:
    """ray.init against an existing cluster; a cluster that is not there is one line, not a traceback."""
    try:
        import ray
    except ImportError:
        raise LaloError("the Ray executor needs Ray on this machine: pip install 'lalo-bench[ray]'") from None
    if address != "auto":
        check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(
            f"cannot join a Ray cluster at {address} ({first}); start its head with "
            "`lalo-bench worker --head --tier TIER`, or pass --address HOST:PORT / set RAY_ADDRESS"
        ) from None
    return ray
