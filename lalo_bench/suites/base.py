"""What a task suite is: items, a prompt per item, and a scorer.

Each suite module (extraction, tool calls, reasoning, puzzles) implements
:class:`Suite`; the sweep never knows which one it runs. A suite whose items
must be driven by another harness (lm-eval) also implements
:class:`HarnessSuite`, and the runner hands it the backend instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from lalo_bench.backends.base import Backend, GenerationRequest

if TYPE_CHECKING:
    from lalo_bench.config import GenerationSettings
    from lalo_bench.measure.metrics import RequestTiming
    from lalo_bench.results import ItemRecord

TaskType = Literal["tool_call", "extraction", "reasoning", "puzzle"]


class SuiteItem(BaseModel):
    """Fields every item has; suites subclass it with their own payload."""

    id: str
    category: str = Field(description="kind of item within the suite, e.g. 'invoice' or 'simple_python'")
    difficulty: int = Field(ge=1)
    task_type: TaskType = Field(description="what the routing work groups items by")


class ItemScore(BaseModel):
    """How one reply scored: ``score`` in [0, 1] is the item's quality; ``details`` are suite-specific."""

    score: float = Field(ge=0.0, le=1.0)
    correct: bool
    details: dict[str, float] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="why the reply could not be scored, e.g. invalid JSON")


class Suite(Protocol):
    id: str
    version: str
    task_type: TaskType

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        """Items in an order whose every prefix mixes categories and difficulties."""
        ...

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest: ...

    def score(self, item: SuiteItem, output: str) -> ItemScore: ...

    def summarize(self, records: Sequence[ItemRecord]) -> dict[str, float]:
        """Suite-level metrics beyond the mean score (e.g. accuracy per category)."""
        ...


@runtime_checkable
class HarnessSuite(Protocol):
    """A suite run by an external harness that calls the backend itself (lm-eval)."""

    def run_with(
        self,
        backend: Backend,
        settings: GenerationSettings,
        items: list[SuiteItem],
        on_item: Callable[[ItemRecord], None],
    ) -> list[tuple[ItemRecord, RequestTiming | None]]: ...


def mean_details(records: Sequence[ItemRecord]) -> dict[str, float]:
    """Default summary: the mean of every scorer detail, plus accuracy per category."""
    n = max(len(records), 1)
    keys = sorted({k for r in records for k in r.details})
    out = {k: sum(r.details.get(k, 0.0) for r in records) / n for k in keys}
    for category in sorted({r.category for r in records}):
        group = [r for r in records if r.category == category]
        out[f"score.{category}"] = sum(r.score for r in group) / len(group)
    return out
