"""A real gateway for tests and benchmarks: a keyword policy written to disk and ``lalo-bench serve`` in a subprocess.

The keyword router needs no weights, so the route of a prompt is known in advance: "prove", "design", "optimize"
or "reason" score 0.9, "how to", "compare", "analyze" 0.6, "what is", "define", "explain" 0.3, anything else 0.5.
With thresholds ``[0.7]`` the first model answers everything but the "complex" prompts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from lalo_bench.routing.calibrate import Objective
from lalo_bench.routing.policy import (
    PolicyModel,
    PolicySource,
    RouterSpec,
    RoutingPolicy,
    Thresholds,
    default_fallbacks,
    write_policy,
)
from lalo_bench.serving.process import free_port

TEST_KEY = "lalo-test-key-0123456789abcdef"


def keyword_policy(
    names: list[str],
    thresholds: list[float] | None = None,
    fallbacks: dict[str, list[str]] | None = None,
    cloud_fallback: bool = False,
) -> RoutingPolicy:
    """A ladder of ``names`` (``model:quant@backend``, cheapest first) routed by the plan's keywords."""
    models = [
        PolicyModel(
            name=n, model=n.split(":")[0], quant=n.split(":")[1].split("@")[0], backend=n.split("@")[1],
            cost_per_request=float(i + 1), quality_train=0.5,
        )
        for i, n in enumerate(names)
    ]  # fmt: skip
    return RoutingPolicy(
        models=models,
        router=RouterSpec(type="keyword"),
        thresholds=Thresholds(default=thresholds if thresholds is not None else [0.7] * (len(names) - 1)),
        objective=Objective(kind="target_quality", value=0.5),
        target_met_on_train=True,
        default_model=names[-1],
        fallbacks=fallbacks if fallbacks is not None else default_fallbacks(names),
        cloud_fallback=cloud_fallback,
        source=PolicySource(
            sweep_run_id="test", tracking_uri="none", created_utc="2026-01-01T00:00:00Z", lalo_bench_version="test"
        ),
    )


def write_keyword_policy(path: Path, names: list[str], **kw: object) -> Path:
    return write_policy(keyword_policy(names, **kw), path)  # type: ignore[arg-type]


@contextmanager
def running_gateway(
    policy: Path,
    upstreams: dict[str, str],
    *args: str,
    key: str | None = TEST_KEY,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    ready_timeout_s: float = 60.0,
) -> Iterator[str]:
    """``lalo-bench serve`` on a free port with ``upstreams`` (policy name → base URL); yields the base URL (/v1).

    ``key=None`` leaves ``LALO_API_KEY`` unset (the gateway then reads or makes its key file under ``LALO_HOME``).
    Extra CLI flags go in ``args``. The server's stderr goes to ``log`` (a temporary file when not given).
    """
    port = free_port()
    environ = {**os.environ, **(env or {})}
    environ.pop("LALO_API_KEY", None)
    if key is not None:
        environ["LALO_API_KEY"] = key
    cmd = [sys.executable, "-m", "lalo_bench.cli", "serve", "--policy", str(policy), "--port", str(port), "--no-launch",
           *(f"--upstream={name}={url}" for name, url in upstreams.items()), *args]  # fmt: skip
    log_path = log or Path(tempfile.gettempdir()) / f"lalo-gateway-{port}.log"
    with open(log_path, "wb") as sink:
        proc = subprocess.Popen(cmd, env=environ, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    httpx.get(f"{base}/health", timeout=1.0)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"gateway not up in {ready_timeout_s:g} s: {log_path.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.1)
            yield f"{base}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
