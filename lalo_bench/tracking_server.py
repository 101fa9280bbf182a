"""``lalo-bench tracking-server``: MLflow's own tracking server for a team, on PostgreSQL, artifacts on a shared path.

Nothing home-made: this checks the database answers (one clear line if not), then runs ``mlflow server`` with
``--backend-store-uri postgresql://…`` and ``--artifacts-destination`` (the server proxies artifacts, so clients
need only its URL). Every lalo-bench command on every machine then talks to it through ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lalo_bench.errors import LaloError


def check_backend(uri: str, timeout_s: float = 5.0) -> None:
    """Connect once, so a wrong URI or a stopped database is one line now, not a stack trace in the server's log."""
    if not uri.startswith(("postgresql://", "postgresql+psycopg2://")):
        raise LaloError(f"--backend-store-uri must be postgresql://USER[:PASSWORD]@HOST[:PORT]/DB, not '{uri}'")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(uri, connect_args={"connect_timeout": int(timeout_s)})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except ModuleNotFoundError as exc:
        raise LaloError(f"the PostgreSQL driver is missing ({exc.name}); pip install 'lalo-bench[tracking]'") from None
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", exc)).split())[:200]
        raise LaloError(f"cannot reach PostgreSQL at {_redact(uri)}: {reason}") from None


def server_command(uri: str, artifacts: Path, host: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--artifacts-destination", str(artifacts),
        "--serve-artifacts",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


def _redact(uri: str) -> str:
    """The URI without its password, for messages."""
    scheme, sep, rest = uri.partition("://")
    creds, at, where = rest.rpartition("@")
    if not at or ":" not in creds:
        return uri
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{where}"
