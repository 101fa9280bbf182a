"""``lalo-bench worker``: this machine joins the sweep cluster as a node of one tier (see docs/multi-node.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lalo_bench.console import err
from lalo_bench.errors import LaloError


def worker(
    tier: Annotated[str, typer.Option("--tier", help="The catalog tier this machine is, e.g. cpu-local or h100.")],
    head: Annotated[bool, typer.Option("--head", help="Start the cluster here (the first node).")] = False,
    address: Annotated[
        str | None, typer.Option("--address", help="The head's HOST:PORT to join (default: RAY_ADDRESS).")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="With --head: the port the cluster listens on.")] = 6379,
    slots: Annotated[int, typer.Option("--slots", help="Cells this node runs at once.")] = 1,
    num_cpus: Annotated[int | None, typer.Option("--num-cpus", help="CPUs Ray may use (default: all).")] = None,
    num_gpus: Annotated[int | None, typer.Option("--num-gpus", help="GPUs Ray may use (default: all it sees).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The node's name in results (default: hostname).")] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Catalog YAML (default: the shipped one).")] = None,
    ray_args: Annotated[list[str] | None, typer.Argument(help="More `ray start` arguments, after --.")] = None,
) -> None:
    """Join the sweep cluster as a node of one tier; runs until stopped (Ctrl-C leaves the cluster)."""
    import subprocess

    from lalo_bench.cluster import plan_worker
    from lalo_bench.config import load_catalog

    plan = plan_worker(
        load_catalog(catalog),
        tier,
        head,
        address,
        port=port,
        slots=slots,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        name=name,
        extra=list(ray_args or []),
    )
    role = f"head on port {plan.port}" if plan.head else f"worker of {plan.address}"
    err.print(f"[green]ray node[/] {plan.name}: tier {plan.tier} × {plan.slots} slot(s), {role}")
    if plan.head:
        err.print(f"other nodes join with: lalo-bench worker --tier TIER --address {_this_host()}:{plan.port}")
    try:
        code = subprocess.call(plan.command(), env=plan.env())
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:
        raise LaloError(f"could not run `ray start`: {exc}") from None
    raise typer.Exit(code)


def _this_host() -> str:
    import socket

    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "HEAD"
