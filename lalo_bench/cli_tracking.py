"""``lalo-bench tracking-server``: one MLflow for a team, on PostgreSQL (see docs/multi-node.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lalo_bench.console import err, out


def tracking_server(
    backend_store_uri: Annotated[
        str,
        typer.Option(
            help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (env LALO_TRACKING_DB).", envvar="LALO_TRACKING_DB"
        ),
    ],
    artifacts: Annotated[Path, typer.Option(help="Artifact folder, on a disk the server can write (a shared path).")],
    host: Annotated[str, typer.Option(help="Address to bind; the team's machines must reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 1,
) -> None:
    """Run MLflow's tracking server on PostgreSQL; point every lalo-bench at it with MLFLOW_TRACKING_URI."""
    import subprocess

    from lalo_bench.tracking_server import _redact, check_backend, server_command

    check_backend(backend_store_uri)
    artifacts = artifacts.resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    shown = "HOST" if host in ("0.0.0.0", "::") else host
    err.print(f"[green]mlflow server[/] on {_redact(backend_store_uri)}, artifacts in {artifacts}")
    out.print(f"export MLFLOW_TRACKING_URI=http://{shown}:{port}", highlight=False)
    try:
        code = subprocess.call(server_command(backend_store_uri, artifacts, host, port, workers))
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)
