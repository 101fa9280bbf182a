"""Schemas of what a sweep produces: cells, per-item records and cell results.

Kept apart from the code that makes them (sweep, runner) and the code that
stores them (tracking), so both sides agree on one shape.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

from lalo_bench.config import SuiteOption
from lalo_bench.measure.memory import MemoryPeak
from lalo_bench.measure.metrics import CellLatency


class Cell(BaseModel):
    """One point of the sweep matrix."""

    model: str
    quant: str
    backend: str
    suite: str
    tier: str
    limit: int | None = None
    options: dict[str, SuiteOption] = Field(default_factory=dict)
    max_tokens: int | None = Field(default=None, description="the suite's override of generation.max_tokens")

    @property
    def suite_label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.suite}[{opts}]" if opts else self.suite

    @property
    def label(self) -> str:
        return f"{self.model}:{self.quant}@{self.backend}/{self.suite_label}"

    @property
    def key(self) -> str:
        """Stable identity used to find a cell's finished run when a sweep resumes."""
        opts = json.dumps(self.options, sort_keys=True) if self.options else ""
        raw = f"{self.model}|{self.quant}|{self.backend}|{self.suite}|{self.tier}|{self.limit}{opts}"
        if self.max_tokens is not None:
            raw += f"|max_tokens={self.max_tokens}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class ItemRecord(BaseModel):
    """One item of one cell: what came back, how it scored, how long it took."""

    item_id: str
    category: str
    difficulty: int
    output: str
    score: float
    correct: bool
    error: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None
    decode_tok_s: float | None = None
    prefill_tok_s: float | None = None
    details: dict[str, float] = Field(default_factory=dict)


class CellResult(BaseModel):
    """Everything a finished cell logs: the metrics of the MLflow schema plus the per-item table."""

    records: list[ItemRecord]
    latency: CellLatency
    memory: MemoryPeak
    quality: float = Field(ge=0, le=1, description="mean item score; an item that errored scores 0")
    error_rate: float = Field(ge=0, le=1, description="share of items whose reply could not be produced or parsed")
    suite_metrics: dict[str, float] = Field(default_factory=dict, description="means of the scorer's details")
    load_s: float
    wall_s: float
    runtime: dict[str, str] = Field(default_factory=dict, description="backend versions and settings, as params")
    roofline_ceiling_tok_s: float | None = Field(
        default=None, description="decode tok/s if every token read the weights file at the measured STREAM bandwidth"
    )
    roofline_pct: float | None = Field(default=None, description="decode_tok_s as a percentage of that ceiling")
    stream_triad_gbs: float | None = Field(
        default=None, description="the STREAM-triad bandwidth of the node that ran the cell (CPU tiers)"
    )
