"""Task suites by id. A suite is loaded lazily: its data is read (and verified) only when used."""

from __future__ import annotations

from collections.abc import Callable

from lalo_bench.errors import LaloError
from lalo_bench.suites.base import ItemScore, Suite, SuiteItem


def _extraction() -> Suite:
    from lalo_bench.suites.extraction import ExtractionSuite

    return ExtractionSuite()


REGISTRY: dict[str, Callable[[], Suite]] = {"extraction": _extraction}


def suite_ids() -> list[str]:
    return sorted(REGISTRY)


def get_suite(suite_id: str) -> Suite:
    try:
        factory = REGISTRY[suite_id]
    except KeyError:
        raise LaloError(f"unknown suite '{suite_id}' (known: {', '.join(suite_ids())})") from None
    return factory()


__all__ = ["REGISTRY", "ItemScore", "Suite", "SuiteItem", "get_suite", "suite_ids"]
