"""Run one sweep cell: load the backend, answer every item, score and time it.

Each cell runs in its own spawned process, so its peak RSS is the cell's own
(not what earlier cells left in the allocator) and a model that crashes
llama.cpp fails its cell instead of the sweep. Progress comes back item by item
over a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from lalo_bench.backends import open_backend
from lalo_bench.backends.base import Backend
from lalo_bench.config import BackendSpec, GenerationSettings
from lalo_bench.errors import LaloError
from lalo_bench.measure.memory import MemorySampler
from lalo_bench.measure.metrics import RequestTiming, aggregate, request_metrics
from lalo_bench.measure.timing import timed_generate
from lalo_bench.results import Cell, CellResult, ItemRecord
from lalo_bench.suites import HarnessSuite, Suite, SuiteItem, get_suite


class CellJob(BaseModel):
    cell: Cell
    weights: str | None = Field(description="None for reference backends (the solver)")
    backend: BackendSpec
    generation: GenerationSettings
    gpu_layers: int = Field(default=0, description="llama.cpp layers offloaded to the GPU (-1: all; GPU tiers)")


class CellFailed(LaloError):
    """The cell could not produce a result (backend would not load, worker died)."""


def run_item(
    backend: Backend, suite: Suite, item: SuiteItem, gen: GenerationSettings
) -> tuple[ItemRecord, RequestTiming | None]:
    """One item; a generation failure is recorded as a scored miss with its error, never skipped."""
    request = suite.request(item, gen.max_tokens).model_copy(update={"temperature": gen.temperature, "seed": gen.seed})
    base = {"item_id": item.id, "category": item.category, "difficulty": item.difficulty}
    try:
        generation = timed_generate(backend, request)
    except LaloError as exc:
        return ItemRecord(**base, output="", score=0.0, correct=False, error=f"generation failed: {exc}"), None
    scored = suite.score(item, generation.text)
    m = request_metrics(generation.timing)
    record = ItemRecord(
        **base,
        output=generation.text,
        score=scored.score,
        correct=scored.correct,
        error=scored.error,
        finish_reason=generation.finish_reason,
        prompt_tokens=m.prompt_tokens,
        output_tokens=m.output_tokens,
        ttft_ms=m.ttft_ms,
        tpot_ms=m.tpot_ms,
        e2e_ms=m.e2e_ms,
        decode_tok_s=m.decode_tok_s,
        prefill_tok_s=m.prefill_tok_s,
        details=scored.details,
    )
    return record, generation.timing


def run_cell(job: CellJob, on_item: Callable[[ItemRecord], None] = lambda r: None) -> CellResult:
    """Run a cell in this process."""
    suite = get_suite(job.cell.suite, job.cell.options)
    items = suite.items(job.cell.limit)
    results: list[tuple[ItemRecord, RequestTiming | None]] = []
    started = time.perf_counter()
    with MemorySampler() as memory:
        backend = open_backend(job.backend, Path(job.weights) if job.weights else None, job.generation, job.gpu_layers)
        load_s = time.perf_counter() - started
        try:
            if isinstance(suite, HarnessSuite):
                results = suite.run_with(backend, job.generation, items, on_item)
            else:
                for item in items:
                    results.append(run_item(backend, suite, item, job.generation))
                    on_item(results[-1][0])
        finally:
            backend.close()
    assert memory.result is not None
    records = [r for r, _ in results]
    timings = [t for _, t in results if t is not None]
    n = max(len(records), 1)
    return CellResult(
        records=records,
        latency=aggregate(timings),
        memory=memory.result,
        quality=sum(r.score for r in records) / n,
        error_rate=sum(r.error is not None for r in records) / n,
        suite_metrics=suite.summarize(records),
        load_s=load_s,
        wall_s=time.perf_counter() - started,
        runtime={"suite_version": suite.version, "items_total": str(len(items))},
    )


def _worker(job_json: str, out: mp.Queue) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")  # harness progress bars would garble the parent's progress display
    try:
        job = CellJob.model_validate_json(job_json)
        result = run_cell(job, on_item=lambda r: out.put(("item", r.model_dump_json())))
        out.put(("done", result.model_dump_json()))
    except LaloError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
        out.put(("error", f"{type(exc).__name__}: {exc}{where}"))


def run_cell_isolated(job: CellJob, on_item: Callable[[ItemRecord], None] = lambda r: None) -> CellResult:
    """Run a cell in a fresh spawned process; raise CellFailed if it errors or dies."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(job.model_dump_json(), out), name=f"lalo-cell-{job.cell.key}")
    proc.start()
    try:
        while True:
            try:
                kind, payload = out.get(timeout=0.5)
            except queue.Empty:
                if not proc.is_alive():
                    try:
                        kind, payload = out.get(timeout=1.0)
                    except queue.Empty:
                        raise CellFailed(
                            f"{job.cell.label}: the cell's worker process died (exit code {proc.exitcode})"
                        ) from None
                else:
                    continue
            if kind == "item":
                on_item(ItemRecord.model_validate_json(payload))
            elif kind == "done":
                return CellResult.model_validate_json(payload)
            else:
                raise CellFailed(f"{job.cell.label}: {payload}")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
