"""The one definition of every latency and throughput metric lalo-bench reports.

Everything is computed from raw timestamps of a single request: when it was
sent (``start``), when each output token arrived (``token_times``, one entry per
token; tokens that arrive in one network chunk share the chunk's time), and
when the reply was complete (``end``). All times are seconds on one monotonic
clock (``time.perf_counter``); reported values are milliseconds or tokens/s.

- **TTFT** (time to first token) = ``token_times[0] - start``. Includes queueing
  and prefill. Same as vLLM ``bench serve`` and GuideLLM.
- **ITL** (inter-token latency) = each gap ``token_times[i] - token_times[i-1]``.
  A request of n tokens has n-1 gaps. Percentiles over a set of requests pool all
  gaps (as vLLM does), so long replies weigh more.
- **TPOT** (time per output token), lalo-bench's ``tpot_ms`` =
  ``(token_times[-1] - token_times[0]) / (n - 1)``: the mean decode step, which
  **excludes the first token** — vLLM's convention. Undefined for n < 2.
- **TPOT incl. first**, ``tpot_incl_first_ms`` = ``(token_times[-1] - start) / n``:
  GuideLLM's ``time_per_output_token``, which **includes the first token** (and
  so the prefill). Reported under its own name, never mixed with ``tpot_ms``.
- **e2e** (end-to-end latency) = ``end - start``.
- **decode tok/s** = ``(n - 1) / (token_times[-1] - token_times[0])`` = 1000 / tpot_ms.
- **prefill tok/s** = ``prompt_tokens / TTFT``: prompt tokens processed per second
  until the first token appears (an upper-bound-free, conservative figure since
  TTFT also holds the first decode step).
- **output tok/s** (per request) = ``n / e2e``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

from pydantic import BaseModel, Field, model_validator

from lalo_bench.measure.load.schemas import (
    Distribution,
    LoadPoint,
    LoadTarget,
    RequestCounts,
    RequestRecord,
    Slo,
    SloResult,
    Source,
)

MS = 1000.0


class RequestTiming(BaseModel):
    """Raw timestamps of one request (seconds, monotonic clock)."""

    start: float
    token_times: list[float] = Field(default_factory=list)
    end: float
    prompt_tokens: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RequestTiming:
        times = [self.start, *self.token_times]
        if any(b < a for a, b in pairwise(times)):
            raise ValueError("token times must not go backwards or precede the start")
        if self.token_times and self.end < self.token_times[-1]:
            raise ValueError("end precedes the last token")
        if self.end < self.start:
            raise ValueError("end precedes start")
        return self

    @property
    def output_tokens(self) -> int:
        return len(self.token_times)


def ttft_ms(t: RequestTiming) -> float | None:
    return (t.token_times[0] - t.start) * MS if t.token_times else None


def itl_ms(t: RequestTiming) -> list[float]:
    return [(b - a) * MS for a, b in pairwise(t.token_times)]


def tpot_ms(t: RequestTiming) -> float | None:
    """vLLM convention: mean decode step, first token excluded."""
    n = t.output_tokens
    return (t.token_times[-1] - t.token_times[0]) * MS / (n - 1) if n >= 2 else None


def tpot_incl_first_ms(t: RequestTiming) -> float | None:
    """GuideLLM convention: time to the last token over all output tokens, first included."""
    n = t.output_tokens
    return (t.token_times[-1] - t.start) * MS / n if n else None


def e2e_ms(t: RequestTiming) -> float:
    return (t.end - t.start) * MS


def decode_tok_s(t: RequestTiming) -> float | None:
    n = t.output_tokens
    span = t.token_times[-1] - t.token_times[0] if n >= 2 else 0.0
    return (n - 1) / span if n >= 2 and span > 0 else None


def prefill_tok_s(t: RequestTiming) -> float | None:
    first = ttft_ms(t)
    return t.prompt_tokens / (first / MS) if first and t.prompt_tokens else None


def output_tok_s(t: RequestTiming) -> float | None:
    span = t.end - t.start
    return t.output_tokens / span if span > 0 and t.output_tokens else None


class RequestMetrics(BaseModel):
    """Per-request figures, as stored in the per-item table."""

    ttft_ms: float | None
    tpot_ms: float | None
    tpot_incl_first_ms: float | None
    e2e_ms: float
    decode_tok_s: float | None
    prefill_tok_s: float | None
    prompt_tokens: int
    output_tokens: int


def request_metrics(t: RequestTiming) -> RequestMetrics:
    return RequestMetrics(
        ttft_ms=ttft_ms(t),
        tpot_ms=tpot_ms(t),
        tpot_incl_first_ms=tpot_incl_first_ms(t),
        e2e_ms=e2e_ms(t),
        decode_tok_s=decode_tok_s(t),
        prefill_tok_s=prefill_tok_s(t),
        prompt_tokens=t.prompt_tokens,
        output_tokens=t.output_tokens,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default 'linear' method); None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


class CellLatency(BaseModel):
    """Aggregates over all requests of a cell; the MLflow metric names are the field names."""

    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    itl_ms_p50: float | None
    itl_ms_p95: float | None
    tpot_ms_p50: float | None
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    decode_tok_s: float | None = Field(description="all decode tokens / all decode time (token-weighted)")
    prefill_tok_s: float | None = Field(description="all prompt tokens / all TTFT time (token-weighted)")
    requests: int


def aggregate(timings: Sequence[RequestTiming]) -> CellLatency:
    """Cell-level figures: percentiles over requests (ITL over all pooled gaps), rates token-weighted."""
    ttfts = _present(ttft_ms(t) for t in timings)
    e2es = [e2e_ms(t) for t in timings]
    itls = [gap for t in timings for gap in itl_ms(t)]
    tpots = _present(tpot_ms(t) for t in timings)
    decode_tokens = sum(max(t.output_tokens - 1, 0) for t in timings)
    decode_time = sum(t.token_times[-1] - t.token_times[0] for t in timings if t.output_tokens >= 2)
    prompt_tokens = sum(t.prompt_tokens for t in timings if t.token_times)
    prefill_time = sum(t.token_times[0] - t.start for t in timings if t.token_times)
    return CellLatency(
        ttft_ms_p50=percentile(ttfts, 50),
        ttft_ms_p95=percentile(ttfts, 95),
        itl_ms_p50=percentile(itls, 50),
        itl_ms_p95=percentile(itls, 95),
        tpot_ms_p50=percentile(tpots, 50),
        e2e_ms_p50=percentile(e2es, 50),
        e2e_ms_p95=percentile(e2es, 95),
        decode_tok_s=decode_tokens / decode_time if decode_time > 0 else None,
        prefill_tok_s=prompt_tokens / prefill_time if prefill_time > 0 and prompt_tokens else None,
        requests=len(timings),
    )


# ---------------------------------------------------------------- load points
#
# A load point is many requests released by a profile over ``duration_s``. Per
# request the definitions above hold, with one difference for HTTP streams: each
# streamed chunk gets one stamp (``chunk_times_s``), and ``output_tokens`` is the
# server's usage count when it reports one. So:
#
# - ITL gaps are between chunks (vLLM ``bench serve`` does the same), pooled over
#   requests for percentiles;
# - TPOT = (last chunk - first chunk) / (output_tokens - 1), first token excluded;
# - TPOT incl. first = (last chunk - start) / output_tokens;
# - requests/s and output tok/s count completed requests only, over the point's
#   wall duration (first release to last completion);
# - achieved concurrency = sum of request durations / duration (Little's law);
# - goodput = completed requests meeting every SLO objective / duration. An
#   ITL objective is judged on the request's mean ITL, i.e. its TPOT.


def distribution(values: Sequence[float]) -> Distribution:
    """Mean and p50/p90/p95/p99 (linear interpolation, numpy's default)."""
    if not values:
        return Distribution()
    return Distribution(
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        count=len(values),
    )


def record_timing(r: RequestRecord) -> RequestTiming:
    """The request as raw timestamps, one per streamed chunk."""
    return RequestTiming(start=r.start_s, token_times=r.chunk_times_s, end=r.end_s, prompt_tokens=r.prompt_tokens or 0)


def record_tpot_ms(r: RequestRecord) -> float | None:
    """vLLM convention over the server's token count: decode time / (tokens - 1)."""
    n = r.output_tokens
    if n < 2 or not r.chunk_times_s:
        return None
    return (r.chunk_times_s[-1] - r.chunk_times_s[0]) * MS / (n - 1)


def record_tpot_incl_first_ms(r: RequestRecord) -> float | None:
    n = r.output_tokens
    return (r.chunk_times_s[-1] - r.start_s) * MS / n if n and r.chunk_times_s else None


def meets(r: RequestRecord, slo: Slo) -> tuple[bool, bool, bool]:
    """Whether a request meets the TTFT, ITL and e2e objectives (an objective not set is met)."""
    if not r.ok:
        return False, False, False
    timing = record_timing(r)
    ttft, e2e = ttft_ms(timing), e2e_ms(timing)
    tpot = record_tpot_ms(r)
    ttft_ok = slo.ttft_ms is None or (ttft is not None and ttft <= slo.ttft_ms)
    itl_ok = slo.itl_ms is None or tpot is None or tpot <= slo.itl_ms
    e2e_ok = slo.e2e_ms is None or e2e <= slo.e2e_ms
    return ttft_ok, itl_ok, e2e_ok


def slo_result(records: Sequence[RequestRecord], slo: Slo, duration_s: float) -> SloResult:
    judged = [meets(r, slo) for r in records]
    n = len(judged)

    def frac(i: int) -> float:
        return sum(j[i] for j in judged) / n if n else 0.0

    good = sum(all(j) for j in judged)
    return SloResult(
        objectives=slo,
        attainment=good / n if n else 0.0,
        ttft_attainment=frac(0) if slo.ttft_ms is not None else None,
        itl_attainment=frac(1) if slo.itl_ms is not None else None,
        e2e_attainment=frac(2) if slo.e2e_ms is not None else None,
        goodput_rps=good / duration_s if duration_s > 0 else 0.0,
    )


def load_point(
    records: Sequence[RequestRecord],
    duration_s: float,
    target: LoadTarget,
    slo: Slo | None = None,
    source: Source = "lalo-bench",
    incomplete: int = 0,
) -> LoadPoint:
    """Every load-point figure from per-request records (warm-up records are ignored)."""
    measured = [r for r in records if not r.warmup]
    done = [r for r in measured if r.ok]
    timings = [record_timing(r) for r in done]
    ttfts = _present(ttft_ms(t) for t in timings)
    itls = [gap for t in timings for gap in itl_ms(t)]
    tpots = _present(record_tpot_ms(r) for r in done)
    tpots_first = _present(record_tpot_incl_first_ms(r) for r in done)
    e2es = [e2e_ms(t) for t in timings]
    busy = sum(r.end_s - r.start_s for r in measured)
    per_s = (lambda x: x / duration_s) if duration_s > 0 else (lambda x: None)
    prompt = [r.prompt_tokens for r in done if r.prompt_tokens is not None]
    return LoadPoint(
        source=source,
        target=target,
        duration_s=duration_s,
        requests=RequestCounts(ok=len(done), errored=len(measured) - len(done), incomplete=incomplete),
        requests_per_s=per_s(len(done)),
        output_tok_s=per_s(sum(r.output_tokens for r in done)),
        input_tok_s=per_s(sum(prompt)) if prompt else None,
        concurrency=per_s(busy),
        ttft_ms=distribution(ttfts),
        itl_ms=distribution(itls),
        tpot_ms=distribution(tpots),
        tpot_incl_first_ms=distribution(tpots_first),
        e2e_ms=distribution(e2es),
        slo=slo_result(measured, slo, duration_s) if slo is not None and not slo.is_empty() else None,
        records=list(records),
    )
