"""The load-test schema: one request, one load point, one report.

Every tool lands here — lalo-bench's own load generator and the importers for
``vllm bench serve``, GuideLLM and llama-bench — so runs from any of them
compare side by side in the JSON/CSV output and in MLflow. The metrics
themselves are defined once, in :mod:`lalo_bench.measure.metrics`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Profile = Literal["synchronous", "concurrent", "throughput", "constant", "poisson"]
"""How requests are released. ``throughput`` keeps every slot busy (maximum load); a sweep is a list of these."""

Source = Literal["lalo-bench", "vllm-bench-serve", "guidellm", "llama-bench"]


class Distribution(BaseModel):
    """Summary of one metric over a load point; ``None`` where no request produced a value."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    count: int = Field(default=0, ge=0, description="values summarised (ITL: pooled gaps)")


class RequestRecord(BaseModel):
    """One request as the load generator saw it; times are seconds from the load point's start.

    ``chunk_times_s`` stamps every streamed chunk that carried output text; with
    servers that send one token per chunk (vLLM, llama.cpp) that is one stamp per token.
    ``output_tokens`` comes from the server's usage count when it reports one, else
    it is the number of content chunks (``output_tokens_source`` says which).
    """

    index: int = Field(ge=0)
    scheduled_s: float | None = Field(default=None, description="when the profile meant to send it")
    start_s: float
    chunk_times_s: list[float] = Field(default_factory=list)
    end_s: float
    prompt_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    output_tokens_source: Literal["usage", "chunks"] = "chunks"
    error: str | None = None
    warmup: bool = Field(default=False, description="sent during warm-up; excluded from every metric")
    reconnects: int = Field(default=0, ge=0, description="sends repeated because a pooled connection was dead")

    @property
    def ok(self) -> bool:
        return self.error is None


class LoadTarget(BaseModel):
    """What a load point asked for (the achieved figures are on :class:`LoadPoint`)."""

    profile: Profile
    concurrency: int | None = Field(default=None, gt=0, description="slots for synchronous/concurrent/throughput")
    rate: float | None = Field(default=None, gt=0, description="requests/s for constant and poisson")
    burstiness: float | None = Field(
        default=None, gt=0, description="gamma shape of inter-arrival times; 1.0 is Poisson, <1 burstier"
    )

    def label(self) -> str:
        if self.profile in ("constant", "poisson"):
            extra = f",b={self.burstiness:g}" if self.burstiness not in (None, 1.0) else ""
            return f"{self.profile}@{self.rate:g}/s{extra}"
        if self.profile in ("concurrent", "throughput") and self.concurrency is not None:
            return f"{self.profile}@{self.concurrency}"
        return self.profile


class Slo(BaseModel):
    """Per-request latency objectives; a request meets the SLO when it meets every one given.

    ``itl_ms`` is judged on the request's mean inter-token latency (its TPOT,
    first token excluded), the convention of vLLM's goodput and DistServe.
    """

    ttft_ms: float | None = Field(default=None, gt=0)
    itl_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)

    def is_empty(self) -> bool:
        return self.ttft_ms is None and self.itl_ms is None and self.e2e_ms is None

    def label(self) -> str:
        parts = [f"{k}<={v:g}" for k, v in self.model_dump().items() if v is not None]
        return " & ".join(parts) or "none"


class SloResult(BaseModel):
    """How many requests met each objective; errored requests count as misses."""

    objectives: Slo
    attainment: float = Field(ge=0, le=1, description="fraction of requests meeting every objective")
    ttft_attainment: float | None = None
    itl_attainment: float | None = None
    e2e_attainment: float | None = None
    goodput_rps: float = Field(ge=0, description="requests/s that met every objective")


class RequestCounts(BaseModel):
    ok: int = Field(default=0, ge=0)
    errored: int = Field(default=0, ge=0)
    incomplete: int = Field(default=0, ge=0, description="cut off by --max-seconds before they finished")

    @property
    def total(self) -> int:
        return self.ok + self.errored + self.incomplete


class LoadPoint(BaseModel):
    """One load level: what was asked, what was achieved, and the latency distributions."""

    source: Source = "lalo-bench"
    target: LoadTarget
    duration_s: float = Field(ge=0)
    requests: RequestCounts
    requests_per_s: float | None = Field(default=None, description="completed requests / duration")
    output_tok_s: float | None = Field(default=None, description="output tokens of completed requests / duration")
    input_tok_s: float | None = None
    concurrency: float | None = Field(
        default=None, description="achieved mean requests in flight (sum of request durations / duration)"
    )
    ttft_ms: Distribution = Field(default_factory=Distribution)
    itl_ms: Distribution = Field(default_factory=Distribution)
    tpot_ms: Distribution = Field(default_factory=Distribution, description="vLLM convention: first token excluded")
    tpot_incl_first_ms: Distribution = Field(
        default_factory=Distribution, description="GuideLLM convention: first token (and prefill) included"
    )
    e2e_ms: Distribution = Field(default_factory=Distribution)
    slo: SloResult | None = None
    stop_reason: str | None = Field(default=None, description="why the point ended early (error rate, ...)")
    clock_origin_s: float | None = Field(
        default=None,
        description="the monotonic clock (time.perf_counter) at this point's zero: records' times plus this line "
        "up with a server's own log on the same machine",
    )
    params: dict[str, str] = Field(
        default_factory=dict, description="tool-specific settings of this point, e.g. llama-bench's test and threads"
    )
    records: list[RequestRecord] = Field(default_factory=list, description="per-request records when kept")


class WorkloadInfo(BaseModel):
    """How prompts and output lengths were drawn, for the record."""

    prompt: str = Field(description="e.g. 'uniform(64,256) tokens' or 'suite extraction'")
    output: str = Field(description="e.g. 'fixed(128) tokens'")
    api: Literal["chat", "completions"] = "chat"
    seed: int | None = None


class LoadReport(BaseModel):
    """A whole load test: the server, the workload and every load point, from one tool."""

    source: Source = "lalo-bench"
    tool_version: str | None = None
    created_at: str = Field(description="ISO-8601 UTC")
    url: str | None = None
    model: str
    backend: str | None = Field(default=None, description="what served it: vllm, llama.cpp, ... when known")
    hardware: str | None = None
    workload: WorkloadInfo | None = None
    slo: Slo | None = None
    max_rate_meeting_slo: float | None = Field(
        default=None, description="highest achieved requests/s among the points whose SLO attainment met the target"
    )
    slo_target_attainment: float | None = Field(default=None, ge=0, le=1)
    points: list[LoadPoint] = Field(default_factory=list)

    def summary_json(self) -> str:
        """The report without per-request records: what ``--output`` and MLflow's ``report.json`` hold."""
        return self.model_dump_json(indent=2, exclude={"points": {"__all__": {"records"}}})


DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "tpot_incl_first_ms", "e2e_ms")
RATES = ("requests_per_s", "output_tok_s", "input_tok_s", "concurrency")


def flat_metrics(point: LoadPoint) -> dict[str, float]:
    """A point as flat ``name → value`` pairs: the CSV columns and the MLflow metric names.

    Distributions become ``ttft_ms_p50`` … ``e2e_ms_mean``; SLO results
    ``slo_attainment`` and ``goodput_rps``.
    """
    out: dict[str, float | None] = {name: getattr(point, name) for name in RATES}
    for name in DISTRIBUTIONS:
        dist: Distribution = getattr(point, name)
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            out[f"{name}_{stat}"] = getattr(dist, stat)
    out.update(requests_ok=point.requests.ok, requests_errored=point.requests.errored)
    out.update(requests_incomplete=point.requests.incomplete, duration_s=point.duration_s)
    if point.slo is not None:
        out.update(slo_attainment=point.slo.attainment, goodput_rps=point.slo.goodput_rps)
        out.update(slo_ttft_attainment=point.slo.ttft_attainment, slo_itl_attainment=point.slo.itl_attainment)
        out.update(slo_e2e_attainment=point.slo.e2e_attainment)
    return {k: float(v) for k, v in out.items() if v is not None}
