"""A throwaway PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temporary folder, one port.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user and its commands run
through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lalo_bench.errors import LaloError
from lalo_bench.serving.process import free_port

USER = "lalo"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise LaloError("PostgreSQL is not installed: apt-get install postgresql (make test does it)")
    return Path(found[-1]).parent


@contextmanager
def running_postgres(database: str = "mlflow") -> Iterator[str]:
    """A server on 127.0.0.1 with ``database`` owned by user ``lalo`` (trust auth); yields its SQLAlchemy URI.

    Its folder is made under the system's temporary directory (pytest's are private to root, and the server's
    user must reach it) and removed afterwards.
    """
    bins = bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="lalo-pg-"))
    data, sockets = folder / "pgdata", folder / "pgsock"
    sockets.mkdir(parents=True, exist_ok=True)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_owner, *cmd], capture_output=True, text=True)
        if done.returncode != 0:
            raise LaloError(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()[-300:]}")

    port = free_port()
    run(str(bins / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bins / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "postgres.log"), "-w", "start")
    try:
        run(str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, database)
        yield f"postgresql://{USER}@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*as_owner, str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
