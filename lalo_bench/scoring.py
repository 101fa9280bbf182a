"""Score outputs produced elsewhere (another harness, a hosted API, a colleague's run) with a suite's scorer."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ValidationError

from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites import Suite


class Prediction(BaseModel):
    id: str
    output: str


class ScoreSummary(BaseModel):
    suite: str
    version: str
    items: int
    correct: int
    quality: float
    error_rate: float
    metrics: dict[str, float]


def read_predictions(path: Path) -> list[Prediction]:
    """One ``{"id": …, "output": …}`` object per line; the first bad line is a one-line LaloError."""
    if not path.is_file():
        raise LaloError(f"{path}: no such file")
    predictions: list[Prediction] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            prediction = Prediction.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError):
            raise LaloError(f'{path}:{number}: expected a JSON object {{"id": str, "output": str}}') from None
        if prediction.id in seen:
            raise LaloError(f"{path}:{number}: duplicate id '{prediction.id}'")
        seen.add(prediction.id)
        predictions.append(prediction)
    if not predictions:
        raise LaloError(f"{path}: no predictions")
    return predictions


def score_predictions(suite: Suite, predictions: Iterable[Prediction], source: str = "predictions") -> list[ItemRecord]:
    """Score each prediction against the suite's item of the same id; an unknown id is an error, not a skip."""
    by_id = {item.id: item for item in suite.items()}
    records = []
    for prediction in predictions:
        item = by_id.get(prediction.id)
        if item is None:
            raise LaloError(f"{source}: unknown item id '{prediction.id}' for suite '{suite.id}'")
        scored = suite.score(item, prediction.output)
        records.append(
            ItemRecord(
                item_id=item.id,
                category=item.category,
                difficulty=item.difficulty,
                output=prediction.output,
                score=scored.score,
                correct=scored.correct,
                error=scored.error,
                details=scored.details,
            )
        )
    return records


def summarize(suite: Suite, records: list[ItemRecord]) -> ScoreSummary:
    n = max(len(records), 1)
    return ScoreSummary(
        suite=suite.id,
        version=suite.version,
        items=len(records),
        correct=sum(r.correct for r in records),
        quality=sum(r.score for r in records) / n,
        error_rate=sum(r.error is not None for r in records) / n,
        metrics=suite.summarize(records),
    )


def write_records(records: list[ItemRecord], path: Path) -> None:
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
