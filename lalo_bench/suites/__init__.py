"""Task suites by id, loaded lazily: a suite's data is read (and verified) only when it is used."""

from __future__ import annotations

from importlib import import_module

from lalo_bench.config import SuiteOption
from lalo_bench.errors import LaloError
from lalo_bench.suites.base import HarnessSuite, ItemScore, Suite, SuiteItem, TaskType, mean_details

REGISTRY: dict[str, str] = {
    "extraction": "lalo_bench.suites.extraction:ExtractionSuite",
    "tool_calls": "lalo_bench.suites.tool_calls:ToolCallSuite",
    "reasoning": "lalo_bench.suites.reasoning:ReasoningSuite",
    "puzzles": "lalo_bench.suites.puzzles:PuzzleSuite",
}
"""suite id → ``module:class``; the class takes the sweep's suite options as keyword arguments."""

ORACLES: dict[str, tuple[str, ...]] = {"solver": ("puzzles",)}
"""reference backend → the suites it can answer (and so shows the ceiling of)."""


def suite_ids() -> list[str]:
    return sorted(REGISTRY)


def get_suite(suite_id: str, options: dict[str, SuiteOption] | None = None) -> Suite:
    try:
        module_name, cls_name = REGISTRY[suite_id].split(":")
    except KeyError:
        raise LaloError(f"unknown suite '{suite_id}' (known: {', '.join(suite_ids())})") from None
    cls = getattr(import_module(module_name), cls_name)
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise LaloError(f"suite '{suite_id}': bad options {options}: {exc}") from None


__all__ = [
    "ORACLES",
    "REGISTRY",
    "HarnessSuite",
    "ItemScore",
    "Suite",
    "SuiteItem",
    "TaskType",
    "get_suite",
    "mean_details",
    "suite_ids",
]
