"""Run load points against a server and collect a :class:`LoadReport`.

Closed-loop profiles (synchronous, concurrent, throughput) keep N workers each
sending its next request as soon as the last one finished. Open-loop profiles
(constant, poisson) release requests on a schedule whatever the server does,
so queueing shows up in TTFT, as it would for real users.

A point ends when ``max_requests`` were sent and answered, when
``max_seconds`` passed (requests still in flight are cut and counted as
incomplete), or when the error rate exceeds ``max_error_rate``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from lalo_bench.errors import LaloError
from lalo_bench.measure.load.client import LoadClient
from lalo_bench.measure.load.profiles import CliProfile, fixed_targets, interarrival, sweep_rates
from lalo_bench.measure.load.schemas import LoadPoint, LoadReport, LoadTarget, RequestRecord, Slo
from lalo_bench.measure.load.workload import Workload
from lalo_bench.measure.metrics import load_point
from lalo_bench.measure.timing import busy_poll

MIN_FOR_ERROR_STOP = 10


class Limits(BaseModel):
    """When each load point stops; at least one of ``max_requests`` and ``max_seconds`` is needed."""

    max_requests: int | None = Field(default=None, gt=0)
    max_seconds: float | None = Field(default=None, gt=0)
    warmup: int = Field(default=0, ge=0, description="requests sent before each point's clock starts; not measured")
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    ramp_up_s: float = Field(
        default=0.0, ge=0, description="closed loop: slots start evenly over this many seconds instead of at once"
    )
    busy_poll: bool = Field(
        default=False,
        description="spin the client's event loop while measuring: no wake-up latency in the stamps, one core busy",
    )


class PointProgress(BaseModel):
    target: LoadTarget
    finished: int
    errored: int
    in_flight: int
    elapsed_s: float
    max_requests: int | None
    max_seconds: float | None


ProgressFn = Callable[[PointProgress], None]


class _State:
    """Book-keeping of one running point."""

    def __init__(self, limits: Limits, indices: Iterator[int], t0: float) -> None:
        self.limits, self.indices, self.t0 = limits, indices, t0
        self.released = 0
        self.in_flight = 0
        self.records: list[RequestRecord] = []
        self.errored = 0
        self.stop_reason: str | None = None
        self.deadline = t0 + limits.max_seconds if limits.max_seconds else None

    def may_release(self) -> bool:
        if self.stop_reason is not None:
            return False
        if self.limits.max_requests is not None and self.released >= self.limits.max_requests:
            return False
        return self.deadline is None or time.perf_counter() < self.deadline

    def take(self) -> int:
        self.released += 1
        return next(self.indices)

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)
        if not record.ok:
            self.errored += 1
        limit = self.limits.max_error_rate
        done = len(self.records)
        if limit is not None and done >= MIN_FOR_ERROR_STOP and self.errored / done > limit:
            self.stop_reason = f"error rate {self.errored / done:.0%} exceeded {limit:.0%} (last: {record.error})"


async def _send(
    client: LoadClient, workload: Workload, state: _State, index: int, scheduled: float | None = None
) -> None:
    state.in_flight += 1
    try:
        record = await client.send(index, workload.body(index), state.t0, scheduled)
    finally:
        state.in_flight -= 1
    state.add(record)


async def _closed_loop(client: LoadClient, workload: Workload, state: _State, slots: int, ramp_s: float = 0.0) -> None:
    async def worker(k: int) -> None:
        if ramp_s:
            await asyncio.sleep(k * ramp_s / slots)
        while state.may_release():
            await _send(client, workload, state, state.take())

    await asyncio.gather(*(worker(k) for k in range(slots)))


async def _open_loop(client: LoadClient, workload: Workload, state: _State, target: LoadTarget, seed: int) -> None:
    rng = random.Random(seed)
    tasks: set[asyncio.Task[None]] = set()
    due = 0.0
    while state.may_release():
        delay = state.t0 + due - time.perf_counter()
        if state.deadline is not None and state.t0 + due >= state.deadline:
            break
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_send(client, workload, state, state.take(), scheduled=due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        due += interarrival(target, rng)
    if tasks:
        await asyncio.gather(*tasks)


async def _report_progress(state: _State, target: LoadTarget, progress: ProgressFn) -> None:
    while True:
        progress(
            PointProgress(
                target=target,
                finished=len(state.records),
                errored=state.errored,
                in_flight=state.in_flight,
                elapsed_s=time.perf_counter() - state.t0,
                max_requests=state.limits.max_requests,
                max_seconds=state.limits.max_seconds,
            )
        )
        await asyncio.sleep(0.25)


async def run_point(
    client: LoadClient,
    workload: Workload,
    target: LoadTarget,
    limits: Limits,
    slo: Slo | None = None,
    indices: Iterator[int] | None = None,
    progress: ProgressFn | None = None,
) -> LoadPoint:
    """Warm up, then measure one load point; ``indices`` numbers requests across points (unique prompts)."""
    indices = indices if indices is not None else itertools.count()
    slots = target.concurrency or 1
    warm: list[RequestRecord] = []
    if limits.warmup:
        warm_state = _State(Limits(max_requests=limits.warmup), indices, time.perf_counter())
        await _closed_loop(client, workload, warm_state, min(slots, limits.warmup))
        warm = [r.model_copy(update={"warmup": True}) for r in warm_state.records]
    first_index = next(indices)
    indices = itertools.chain([first_index], indices)
    if limits.max_requests:
        workload.prepare(first_index + limits.max_requests)
    state = _State(limits, indices, time.perf_counter())
    if target.rate is not None:
        run = _open_loop(client, workload, state, target, seed=first_index)
    else:
        run = _closed_loop(client, workload, state, slots, limits.ramp_up_s)
    main = asyncio.ensure_future(run)
    ticker = asyncio.ensure_future(_report_progress(state, target, progress)) if progress else None
    spinner = asyncio.ensure_future(busy_poll()) if limits.busy_poll else None
    timeout = state.deadline - time.perf_counter() if state.deadline is not None else None
    incomplete = 0
    try:
        await asyncio.wait_for(asyncio.shield(main), timeout=timeout)
    except TimeoutError:
        incomplete = state.in_flight
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
    finally:
        for helper in (ticker, spinner):
            if helper is not None:
                helper.cancel()
    ended = state.deadline if incomplete else max((r.end_s for r in state.records), default=0.0) + state.t0
    duration = max(ended - state.t0, 0.0)
    point = load_point([*warm, *state.records], duration, target, slo, incomplete=incomplete)
    point.stop_reason = state.stop_reason
    point.clock_origin_s = state.t0
    return point


def run_loadtest(
    url: str,
    model: str,
    profile: CliProfile,
    workload: Workload,
    limits: Limits,
    concurrency: list[int] | None = None,
    rates: list[float] | None = None,
    burstiness: float = 1.0,
    sweep_points: int = 8,
    sweep_rate_type: CliProfile = "constant",
    slo: Slo | None = None,
    slo_target: float = 0.9,
    api_key: str | None = None,
    on_point: Callable[[LoadPoint], None] | None = None,
    progress: ProgressFn | None = None,
) -> LoadReport:
    """Run every load point of ``profile`` and summarise them in one report."""
    if limits.max_requests is None and limits.max_seconds is None:
        raise LaloError("give --max-requests or --max-seconds (or both) so each load point ends")
    started = datetime.now(UTC).isoformat(timespec="seconds")

    async def main() -> list[LoadPoint]:
        points: list[LoadPoint] = []
        indices = itertools.count()

        async def run(target: LoadTarget) -> LoadPoint:
            point = await run_point(client, workload, target, limits, slo, indices, progress)
            points.append(point)
            if on_point is not None:
                on_point(point)
            return point

        async with LoadClient(url, workload.api, api_key) as client:
            if profile == "sweep":
                sync = await run(LoadTarget(profile="synchronous", concurrency=1))
                top = await run(LoadTarget(profile="throughput", concurrency=max(concurrency or [64])))
                for rate in sweep_rates(sync.requests_per_s or 0.0, top.requests_per_s or 0.0, sweep_points):
                    b = burstiness if sweep_rate_type == "poisson" else None
                    kind = "poisson" if sweep_rate_type == "poisson" else "constant"
                    await run(LoadTarget(profile=kind, rate=rate, burstiness=b))
            else:
                for target in fixed_targets(profile, concurrency or [], rates or [], burstiness):
                    await run(target)
        return points

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        points = runner.run(main())
    report = LoadReport(
        created_at=started,
        url=url,
        model=model,
        workload=workload.info(),
        slo=slo,
        slo_target_attainment=slo_target if slo is not None else None,
        points=points,
    )
    report.max_rate_meeting_slo = max_rate_meeting_slo(points, slo_target)
    return report


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed: the load generator's own overhead is what limits it against fast servers."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def max_rate_meeting_slo(points: list[LoadPoint], target: float) -> float | None:
    """The highest achieved request rate among points whose SLO attainment reached ``target``."""
    rates = [p.requests_per_s for p in points if p.slo is not None and p.slo.attainment >= target and p.requests_per_s]
    return max(rates) if rates else None
