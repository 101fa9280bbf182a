"""Import results of ``vllm bench serve``, GuideLLM and llama-bench into :class:`LoadReport`.

One schema for every tool, so their runs sit beside lalo-bench's own in the
JSON/CSV output and in MLflow. :func:`import_file` detects the format; the
per-tool functions take the parsed JSON. The mapping, in brief:

``vllm bench serve`` (``--save-result`` JSON; ``--append-result`` JSON lines give
one point per line). Each result is one :class:`LoadPoint`. Target: rate ``inf``
with ``max_concurrency`` 1 → ``synchronous``, N → ``concurrent@N``, none →
``throughput`` (concurrency ``None``: every prompt released at once); a finite
``request_rate`` → ``poisson`` with ``burstiness`` (gamma shape, as in vLLM) and
the concurrency cap if one was set; a ramp-up → ``poisson`` at its end rate.
Counts: ok = ``completed``, errored = ``failed`` (else ``num_prompts - completed``).
``requests_per_s`` = ``request_throughput``, ``output_tok_s`` = ``output_throughput``,
``input_tok_s`` = ``total_input_tokens / duration``. With ``--save-detailed`` the
per-request arrays become :class:`RequestRecord` (one chunk stamp per streamed
chunk, rebuilt from ``start_times + ttfts + cumsum(itls)``; ``latency`` ends the
request) and every figure comes from :func:`~lalo_bench.measure.metrics.load_point`,
whose TTFT, pooled ITL, TPOT ``(latency - ttft) / (n - 1)`` and e2e definitions are
vLLM's; ``output_tokens`` is vLLM's count (server usage, else its tokenizer).
Without detail, distributions take the file's ``mean_/median_/pNN_<metric>_ms``
(``median`` is p50; percentiles not requested with ``--metric-percentiles`` stay
``None``; ``count`` is ``completed`` for TTFT/TPOT/e2e and 0 — unknown — for ITL);
e2e and achieved concurrency fall back to the ``latencies`` array vLLM always keeps.
The file has no tool version, no server URL and a local, zone-less ``date``.

GuideLLM (``--output kind=json``; checked against 0.8.1). Each benchmark is one
point; its strategy gives the target (``synchronous``, ``concurrent`` streams,
``throughput`` max_concurrency, ``constant``/``poisson`` rate). Figures come
from each metric's ``successful`` summary (mean, ``percentiles.p50/p90/p95/p99``,
``count``); rates and achieved concurrency are the means of GuideLLM's
time-weighted series (= total / duration). Per request GuideLLM defines
``time_per_output_token_ms = (last token - start) / n`` → ``tpot_incl_first_ms``
and ``inter_token_latency_ms = (last token - first token) / (n - 1)`` → ``tpot_ms``
(that is vLLM's TPOT). Both summaries are token-weighted, so their percentiles
equal per-request ones only when outputs have equal lengths. GuideLLM keeps no
individual gaps: ``itl_ms`` gets the token-weighted ITL mean, which is exactly the
pooled-gap mean, with the gap count, and no percentiles. ``request_latency`` (s) →
``e2e_ms``. Counts: successful / errored / incomplete.

llama-bench (``-o json`` or ``-o jsonl``). Each record (one test) is one point,
profile ``synchronous`` at concurrency 1; each repetition counts as one request
and its ``samples_ns`` give ``e2e_ms``. A ``tg`` test (``n_prompt`` 0) gives
``tpot_ms`` = 1000 / ``samples_ts`` per repetition (every generated token is a
decode step) and ``output_tok_s`` = ``avg_ts``; ``itl_ms`` gets the mean only. A
``pp`` test gives ``ttft_ms`` from ``samples_ns`` and ``input_tok_s`` = ``avg_ts``.
A combined ``pg`` test only has e2e (its ``avg_ts`` mixes prompt and generated
tokens). Report fields: model = ``model_filename`` with ``model_type`` and
``model_size``; backend = llama.cpp, ``backends`` and ``n_threads``; hardware =
``cpu_info`` and ``gpu_info``; tool_version = build number and commit. Values
that differ between records are listed together (a point does not say which).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lalo_bench.errors import LaloError
from lalo_bench.measure.load.schemas import (
    Distribution,
    LoadPoint,
    LoadReport,
    LoadTarget,
    RequestCounts,
    RequestRecord,
    WorkloadInfo,
)
from lalo_bench.measure.metrics import distribution, load_point

Json = dict[str, Any]
MS = 1000.0


class ImportFormatError(LaloError):
    """A results file that no importer can read; the message is one line naming the file."""


# ------------------------------------------------------------------ vLLM


def _vllm_target(r: Json) -> LoadTarget:
    """The profile a ``vllm bench serve`` run used, from its traffic fields."""
    cap = r.get("max_concurrency")
    rate = r.get("request_rate", "inf")
    if r.get("ramp_up_strategy"):
        rate = r.get("ramp_up_end_rps") or rate
    rate = math.inf if rate in ("inf", None) else float(rate)
    if math.isfinite(rate):
        return LoadTarget(profile="poisson", rate=rate, burstiness=r.get("burstiness") or 1.0, concurrency=cap)
    if cap == 1:
        return LoadTarget(profile="synchronous", concurrency=1)
    if cap:
        return LoadTarget(profile="concurrent", concurrency=cap)
    return LoadTarget(profile="throughput")


def _last_line(error: str) -> str:
    """vLLM stores whole tracebacks; the last line says what happened."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "error"


def _vllm_records(r: Json) -> list[RequestRecord]:
    """Per-request records from ``--save-detailed`` arrays; times from the first arrival."""
    starts: list[float] = r["start_times"]
    queued: list[float] = r.get("queue_times") or [0.0] * len(starts)
    origin = min(s - q for s, q in zip(starts, queued, strict=True))
    records = []
    for i, start_abs in enumerate(starts):
        start = start_abs - origin
        error = r["errors"][i] or None
        chunks = [] if error else list(accumulate(r["itls"][i], initial=start + r["ttfts"][i]))
        end = max([start + r["latencies"][i], *chunks[-1:]])
        records.append(
            RequestRecord(
                index=i,
                scheduled_s=start - queued[i],
                start_s=start,
                chunk_times_s=chunks,
                end_s=end,
                prompt_tokens=r["input_lens"][i],
                output_tokens=r["output_lens"][i],
                output_tokens_source="usage",
                error=_last_line(error) if error else None,
            )
        )
    return records


def _vllm_summary(r: Json, metric: str, count: int) -> Distribution:
    """A distribution from vLLM's printed statistics; absent percentiles stay ``None``."""
    mean = r.get(f"mean_{metric}_ms")
    if mean is None or not r.get("completed"):
        return Distribution()
    return Distribution(
        mean=mean,
        p50=r.get(f"p50_{metric}_ms", r.get(f"median_{metric}_ms")),
        p90=r.get(f"p90_{metric}_ms"),
        p95=r.get(f"p95_{metric}_ms"),
        p99=r.get(f"p99_{metric}_ms"),
        count=count,
    )


def _vllm_summary_point(r: Json, target: LoadTarget, errored: int) -> LoadPoint:
    """A point from the statistics alone (no ``--save-detailed``)."""
    ok, duration = r["completed"], r["duration"]
    latencies: list[float] = r.get("latencies") or []
    e2e = _vllm_summary(r, "e2el", ok)
    if e2e.mean is None and latencies and not errored:
        e2e = distribution([x * MS for x in latencies])
    return LoadPoint(
        source="vllm-bench-serve",
        target=target,
        duration_s=duration,
        requests=RequestCounts(ok=ok, errored=errored),
        concurrency=sum(latencies) / duration if latencies and duration > 0 else None,
        ttft_ms=_vllm_summary(r, "ttft", ok),
        itl_ms=_vllm_summary(r, "itl", 0),
        tpot_ms=_vllm_summary(r, "tpot", ok),
        e2e_ms=e2e,
    )


def vllm_point(r: Json) -> LoadPoint:
    """One ``vllm bench serve`` result as a load point (per-request figures when the file has them)."""
    target = _vllm_target(r)
    if all(k in r for k in ("start_times", "ttfts", "itls", "latencies", "errors")):
        point = load_point(_vllm_records(r), r["duration"], target, source="vllm-bench-serve")
    else:
        point = _vllm_summary_point(r, target, r.get("failed", r["num_prompts"] - r["completed"]))
    duration = r["duration"]
    return point.model_copy(
        update={
            "requests_per_s": r["request_throughput"],
            "output_tok_s": r.get("output_throughput"),
            "input_tok_s": r["total_input_tokens"] / duration if "total_input_tokens" in r and duration > 0 else None,
        }
    )


def _vllm_created_at(date: str | None) -> str:
    """vLLM writes ``%Y%m%d-%H%M%S`` in the machine's local time, without a zone."""
    if not date:
        return datetime.now(UTC).isoformat(timespec="seconds")
    return datetime.strptime(date, "%Y%m%d-%H%M%S").isoformat()


def _vllm_workload(results: Sequence[Json]) -> WorkloadInfo:
    """Only token totals are recorded, not the dataset: report the means."""
    done = sum(r["completed"] for r in results) or 1
    prompt = sum(r.get("total_input_tokens", 0) for r in results) / done
    output = sum(r.get("total_output_tokens", 0) for r in results) / done
    api = "chat" if "chat" in str(results[0].get("backend", "")) else "completions"
    return WorkloadInfo(prompt=f"mean {prompt:.4g} tokens", output=f"mean {output:.4g} tokens", api=api)


def import_vllm(results: Json | Sequence[Json]) -> LoadReport:
    """``vllm bench serve`` results (one dict, or the list of an ``--append-result`` file) as one report."""
    items = [results] if isinstance(results, dict) else list(results)
    if not items:
        raise ValueError("no results")
    first = items[0]
    return LoadReport(
        source="vllm-bench-serve",
        created_at=_vllm_created_at(first.get("date")),
        model=first.get("model_id") or "unknown",
        workload=_vllm_workload(items),
        points=[vllm_point(r) for r in items],
    )


# ------------------------------------------------------------------ GuideLLM


def _guidellm_target(strategy: Json) -> LoadTarget:
    """GuideLLM's scheduling strategy as a lalo-bench target."""
    kind, cap = strategy["type_"], strategy.get("max_concurrency")
    if kind == "synchronous":
        return LoadTarget(profile="synchronous", concurrency=1)
    if kind == "concurrent":
        return LoadTarget(profile="concurrent", concurrency=strategy["streams"])
    if kind == "throughput":
        return LoadTarget(profile="throughput", concurrency=cap)
    if kind == "poisson":
        return LoadTarget(profile="poisson", rate=strategy["rate"], burstiness=1.0, concurrency=cap)
    if kind == "constant":
        return LoadTarget(profile="constant", rate=strategy["rate"], concurrency=cap)
    raise ValueError(f"strategy {kind!r} has no lalo-bench profile")


def _guidellm_summary(metric: Json | None, scale: float = 1.0, count: int | None = None) -> Distribution:
    """The ``successful`` summary of one GuideLLM metric (``scale`` converts s → ms)."""
    stats = (metric or {}).get("successful")
    if not stats or not stats.get("count"):
        return Distribution()
    pct = stats.get("percentiles") or {}

    def at(key: str, fallback: float | None = None) -> float | None:
        value = pct.get(key, fallback)
        return None if value is None else value * scale

    return Distribution(
        mean=stats["mean"] * scale,
        p50=at("p50", stats.get("median")),
        p90=at("p90"),
        p95=at("p95"),
        p99=at("p99"),
        count=stats["count"] if count is None else count,
    )


def _guidellm_mean(metric: Json | None) -> float | None:
    stats = (metric or {}).get("successful")
    return stats["mean"] if stats and stats.get("count") else None


def guidellm_point(benchmark: Json) -> LoadPoint:
    """One GuideLLM benchmark (one strategy) as a load point."""
    m = benchmark["metrics"]
    strategy = (benchmark.get("config") or benchmark.get("args") or {})["strategy"]
    totals = m.get("request_totals") or benchmark["request_totals"]
    requests = (m.get("request_latency") or {}).get("successful", {}).get("count")
    itl = _guidellm_summary(m.get("inter_token_latency_ms"))
    return LoadPoint(
        source="guidellm",
        target=_guidellm_target(strategy),
        duration_s=benchmark["duration"],
        requests=RequestCounts(ok=totals["successful"], errored=totals["errored"], incomplete=totals["incomplete"]),
        requests_per_s=_guidellm_mean(m.get("requests_per_second")),
        output_tok_s=_guidellm_mean(m.get("output_tokens_per_second")),
        input_tok_s=_guidellm_mean(m.get("prompt_tokens_per_second")),
        concurrency=_guidellm_mean(m.get("request_concurrency")),
        ttft_ms=_guidellm_summary(m.get("time_to_first_token_ms")),
        itl_ms=Distribution(mean=itl.mean, count=itl.count),
        tpot_ms=_guidellm_summary(m.get("inter_token_latency_ms"), count=requests),
        tpot_incl_first_ms=_guidellm_summary(m.get("time_per_output_token_ms"), count=requests),
        e2e_ms=_guidellm_summary(m.get("request_latency"), scale=MS),
    )


def _guidellm_workload(spec: Json) -> WorkloadInfo | None:
    """Synthetic data configs name their token counts; other data sources are named by kind."""
    data = (spec.get("data") or [None])[0]
    if not isinstance(data, dict):
        return None
    kind = data.get("kind", "data")

    def tokens(key: str) -> str:
        return f"{kind} {data[key]} tokens" if data.get(key) else str(data.get("path") or kind)

    api = "chat" if "chat" in str((spec.get("backend") or {}).get("request_format", "")) else "completions"
    seed = (spec.get("seed") or {}).get("value")
    return WorkloadInfo(prompt=tokens("prompt_tokens"), output=tokens("output_tokens"), api=api, seed=seed)


def import_guidellm(report: Json) -> LoadReport:
    """A GuideLLM JSON report (every benchmark of the run) as one report."""
    benchmarks: list[Json] = report["benchmarks"]
    if not benchmarks:
        raise ValueError("no benchmarks")
    spec = (report.get("config") or {}).get("spec") or {}
    backend = spec.get("backend") or (benchmarks[0].get("config") or {}).get("backend") or {}
    start = benchmarks[0].get("start_time")
    created = datetime.fromtimestamp(start, UTC) if start else datetime.now(UTC)
    return LoadReport(
        source="guidellm",
        tool_version=(report.get("metadata") or {}).get("guidellm_version"),
        created_at=created.isoformat(timespec="seconds"),
        url=backend.get("target"),
        model=backend.get("model") or "unknown",
        workload=_guidellm_workload(spec),
        points=[guidellm_point(b) for b in benchmarks],
    )


# ------------------------------------------------------------------ llama-bench


def llama_bench_point(record: Json) -> LoadPoint:
    """One llama-bench test (pp, tg or pg) as a synchronous load point; a repetition is one request."""
    samples_ms = [ns / 1e6 for ns in record["samples_ns"]]
    n_prompt, n_gen = record["n_prompt"], record["n_gen"]
    fields: Json = {}
    if n_gen > 0 and n_prompt == 0:
        per_token = distribution([MS / ts for ts in record["samples_ts"]])
        fields |= {"tpot_ms": per_token, "itl_ms": Distribution(mean=per_token.mean, count=n_gen * len(samples_ms))}
        fields["output_tok_s"] = record["avg_ts"]
    elif n_prompt > 0 and n_gen == 0:
        fields |= {"ttft_ms": distribution(samples_ms), "input_tok_s": record["avg_ts"]}
    duration = sum(samples_ms) / MS
    return LoadPoint(
        source="llama-bench",
        target=LoadTarget(profile="synchronous", concurrency=1),
        duration_s=duration,
        requests=RequestCounts(ok=len(samples_ms)),
        requests_per_s=len(samples_ms) / duration if duration > 0 else None,
        concurrency=1.0,
        e2e_ms=distribution(samples_ms),
        params=_llama_bench_params(record),
        **fields,
    )


def _llama_bench_params(record: Json) -> dict[str, str]:
    """The settings that tell one llama-bench test from another (test name, threads, offload, flash attention)."""
    n_prompt, n_gen = record["n_prompt"], record["n_gen"]
    test = "+".join(t for t in (f"pp{n_prompt}" if n_prompt else "", f"tg{n_gen}" if n_gen else "") if t)
    params = {"test": test}
    for key in ("n_threads", "n_gpu_layers", "flash_attn", "n_batch", "n_ubatch", "type_k", "type_v", "n_depth"):
        if record.get(key) is not None:
            params[key] = str(record[key])
    return params


def _joined(records: Sequence[Json], key: str) -> str:
    """Distinct values of one field, in order (a file may hold several models or thread counts)."""
    return ", ".join(dict.fromkeys(str(r[key]) for r in records if r.get(key) not in (None, "")))


def _llama_bench_model(record: Json) -> str:
    """The model file, with the type (architecture, size class, quantization) and bytes llama-bench read from it."""
    about = [str(record["model_type"])] if record.get("model_type") else []
    if record.get("model_size"):
        about.append(f"{record['model_size'] / 2**20:.1f} MiB")
    name = record.get("model_filename") or "unknown"
    return f"{name} ({', '.join(about)})" if about else name


def _tokens(records: Sequence[Json], key: str) -> str:
    sizes = _joined([r for r in records if r[key] > 0], key)
    return f"{sizes} tokens" if sizes else "none"


def import_llama_bench(records: Sequence[Json]) -> LoadReport:
    """llama-bench's JSON array (or JSON-lines records) as one report, one point per test."""
    if not records:
        raise ValueError("no records")
    first, points = records[0], [llama_bench_point(r) for r in records]
    hardware = "; ".join(x for x in (_joined(records, "cpu_info"), _joined(records, "gpu_info")) if x)
    return LoadReport(
        source="llama-bench",
        tool_version=f"b{first['build_number']} ({first['build_commit']})" if "build_number" in first else None,
        created_at=first.get("test_time") or datetime.now(UTC).isoformat(timespec="seconds"),
        model=", ".join(dict.fromkeys(_llama_bench_model(r) for r in records)),
        backend=f"llama.cpp ({_joined(records, 'backends')}, n_threads={_joined(records, 'n_threads')})",
        hardware=hardware or None,
        workload=WorkloadInfo(prompt=_tokens(records, "n_prompt"), output=_tokens(records, "n_gen"), api="completions"),
        points=points,
    )


# ------------------------------------------------------------------ detection

TOOLS: dict[str, str] = {
    "vllm": "vllm",
    "vllm-bench-serve": "vllm",
    "vllm bench serve": "vllm",
    "guidellm": "guidellm",
    "llama-bench": "llama-bench",
    "llama_bench": "llama-bench",
    "llamabench": "llama-bench",
}
LABELS = {"vllm": "vllm bench serve", "guidellm": "GuideLLM", "llama-bench": "llama-bench"}


def _read_documents(path: Path) -> list[Any]:
    """A JSON file as one document, or a JSON-lines file (``--append-result``, ``-o jsonl``) as several."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        pass
    try:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        raise ImportFormatError(f"{path}: not JSON or JSON lines") from None
    if not docs:
        raise ImportFormatError(f"{path}: empty file")
    return docs


def _items(docs: list[Any]) -> list[Any]:
    """The records of a file: a top-level array's elements, else the documents."""
    return docs[0] if len(docs) == 1 and isinstance(docs[0], list) else docs


def _is_vllm(item: Any) -> bool:
    return isinstance(item, dict) and {"request_throughput", "completed", "duration"} <= item.keys()


def _is_llama_bench(item: Any) -> bool:
    return isinstance(item, dict) and {"samples_ns", "n_prompt", "n_gen"} <= item.keys()


def _is_guidellm(docs: list[Any]) -> bool:
    doc = docs[0]
    return len(docs) == 1 and isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list)


def detect(docs: list[Any]) -> str | None:
    """Which tool wrote these documents: ``vllm``, ``guidellm``, ``llama-bench`` or ``None``."""
    items = _items(docs)
    if _is_guidellm(docs):
        return "guidellm"
    if items and all(_is_vllm(i) for i in items):
        return "vllm"
    if items and all(_is_llama_bench(i) for i in items):
        return "llama-bench"
    return None


def _describe(docs: list[Any]) -> str:
    """A short hint at what the file holds, for the error message."""
    items = _items(docs)
    first = items[0] if items else None
    if isinstance(first, dict):
        keys = ", ".join(list(first)[:6])
        return f"keys: {keys}{', …' if len(first) > 6 else ''}"
    return f"a JSON {type(first).__name__}"


IMPORTERS: dict[str, Callable[[list[Any]], LoadReport]] = {
    "vllm": lambda docs: import_vllm(_items(docs)),
    "guidellm": lambda docs: import_guidellm(docs[0]),
    "llama-bench": lambda docs: import_llama_bench(_items(docs)),
}


def _reason(exc: Exception) -> str:
    """One line from any parsing failure."""
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def import_file(path: Path, tool: str | None = None) -> LoadReport:
    """Import one results file; ``tool`` (vllm, guidellm, llama-bench) skips detection."""
    path = Path(path)
    docs = _read_documents(path)
    if tool is None:
        kind = detect(docs)
        if kind is None:
            raise ImportFormatError(
                f"{path}: not a vllm bench serve, GuideLLM or llama-bench JSON result ({_describe(docs)})"
            )
    else:
        kind = TOOLS.get(tool.strip().lower())
        if kind is None:
            raise ImportFormatError(f"{path}: unknown tool {tool!r} (use vllm, guidellm or llama-bench)")
    try:
        return IMPORTERS[kind](docs)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ImportFormatError(f"{path}: not a valid {LABELS[kind]} result ({_reason(exc)})") from None
