"""What a task suite is: items, a prompt per item, and a scorer.

Each suite module (extraction, tool calls, reasoning, puzzles) implements
:class:`Suite`; the sweep never knows which one it runs.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from lalo_bench.backends.base import GenerationRequest


class SuiteItem(BaseModel):
    """Fields every item has; suites subclass it with their own payload."""

    id: str
    category: str = Field(description="kind of item within the suite, e.g. 'invoice'")
    difficulty: int = Field(ge=1)


class ItemScore(BaseModel):
    """How one reply scored: ``score`` in [0, 1] is the item's quality; ``details`` are suite-specific."""

    score: float = Field(ge=0.0, le=1.0)
    correct: bool
    details: dict[str, float] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="why the reply could not be scored, e.g. invalid JSON")


class Suite(Protocol):
    id: str
    version: str

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        """Items in an order whose every prefix mixes categories and difficulties."""
        ...

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest: ...

    def score(self, item: SuiteItem, output: str) -> ItemScore: ...
