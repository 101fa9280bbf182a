"""Importers for vllm bench serve, GuideLLM and llama-bench, checked against real outputs of each tool.

The fixtures in ``tests/data/imports`` were produced by the tools themselves
(commands and versions in its README); the assertions compare the imported
figures with the values the tool wrote, and recompute per-request data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lalo_bench.measure.load.importers import ImportFormatError, detect, import_file
from lalo_bench.measure.load.schemas import Distribution, LoadReport, flat_metrics
from lalo_bench.measure.metrics import distribution

DATA = Path(__file__).parent / "data" / "imports"
STATS = ("mean", "p50", "p90", "p95", "p99")


def raw(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def assert_matches_vllm(dist: Distribution, result: dict[str, Any], metric: str) -> None:
    """Every statistic vLLM wrote for ``metric`` equals ours (vLLM's median is our p50)."""
    assert dist.mean == pytest.approx(result[f"mean_{metric}_ms"], rel=1e-9)
    assert dist.p50 == pytest.approx(result[f"median_{metric}_ms"], rel=1e-9)
    for p in ("p90", "p95", "p99"):
        key = f"{p}_{metric}_ms"
        assert getattr(dist, p) == (pytest.approx(result[key], rel=1e-9) if key in result else None)


# ---------------------------------------------------------------- vllm bench serve


def test_vllm_summary_only_synchronous() -> None:
    r = raw("vllm_sync.json")
    report = import_file(DATA / "vllm_sync.json")
    assert (report.source, report.model, report.created_at) == ("vllm-bench-serve", "smollm2", "2026-11-26T10:06:46")
    assert report.workload is not None and report.workload.api == "completions"
    (point,) = report.points
    assert point.source == "vllm-bench-serve"
    assert (point.target.profile, point.target.concurrency) == ("synchronous", 1)
    assert (point.requests.ok, point.requests.errored) == (r["completed"], r["failed"]) == (8, 0)
    assert point.requests_per_s == r["request_throughput"]
    assert point.output_tok_s == r["output_throughput"]
    assert point.input_tok_s == pytest.approx(r["total_input_tokens"] / r["duration"])
    assert point.duration_s == r["duration"]
    for metric, name in (("ttft", "ttft_ms"), ("tpot", "tpot_ms"), ("itl", "itl_ms")):
        assert_matches_vllm(getattr(point, name), r, metric)
    assert point.ttft_ms.p90 is None  # only --metric-percentiles 99 was asked for
    assert point.ttft_ms.count == 8 and point.itl_ms.count == 0
    # e2e and achieved concurrency come from the latencies vLLM always keeps
    assert point.e2e_ms == distribution([x * 1000 for x in r["latencies"]])
    assert point.concurrency == pytest.approx(sum(r["latencies"]) / r["duration"])
    assert point.records == []


@pytest.mark.parametrize("name", ["vllm_concurrent2_detailed.json", "vllm_poisson1_detailed.json"])
def test_vllm_detailed_recomputation_agrees_with_vllm(name: str) -> None:
    r = raw(name)
    (point,) = import_file(DATA / name).points
    assert len(point.records) == r["num_prompts"] == 8
    assert point.requests.ok == r["completed"] and point.requests.errored == r["failed"]
    assert point.requests_per_s == r["request_throughput"]
    assert point.requests_per_s == pytest.approx(point.requests.ok / point.duration_s)
    assert point.output_tok_s == pytest.approx(sum(r["output_lens"]) / r["duration"])
    for metric, field in (("ttft", "ttft_ms"), ("itl", "itl_ms"), ("tpot", "tpot_ms"), ("e2el", "e2e_ms")):
        assert_matches_vllm(getattr(point, field), r, metric)
    assert point.itl_ms.count == sum(len(x) for x in r["itls"])
    # GuideLLM's TPOT, only computable from per-request data, sits apart from vLLM's
    assert point.tpot_incl_first_ms.mean is not None and point.tpot_incl_first_ms.mean > point.tpot_ms.mean
    first = point.records[0]
    assert first.start_s == pytest.approx(r["queue_times"][0] + first.scheduled_s)
    assert first.chunk_times_s[0] - first.start_s == pytest.approx(r["ttfts"][0])
    assert first.end_s - first.start_s == pytest.approx(r["latencies"][0])
    assert first.prompt_tokens == r["input_lens"][0] and first.output_tokens == r["output_lens"][0]


def test_vllm_targets() -> None:
    concurrent = import_file(DATA / "vllm_concurrent2_detailed.json").points[0].target
    assert (concurrent.profile, concurrent.concurrency) == ("concurrent", 2)
    poisson = import_file(DATA / "vllm_poisson1_detailed.json").points[0].target
    assert (poisson.profile, poisson.rate, poisson.burstiness, poisson.concurrency) == ("poisson", 1.0, 1.0, None)
    throughput = import_file(DATA / "vllm_throughput.json").points[0].target
    assert (throughput.profile, throughput.concurrency) == ("throughput", None)


def test_vllm_appended_results_are_one_point_each() -> None:
    lines = [json.loads(line) for line in (DATA / "vllm_sweep_appended.jsonl").read_text().splitlines()]
    report = import_file(DATA / "vllm_sweep_appended.jsonl")
    assert [p.target.label() for p in report.points] == ["synchronous", "concurrent@4"]
    assert [p.requests_per_s for p in report.points] == [x["request_throughput"] for x in lines]


def test_vllm_failed_requests_are_counted_and_excluded() -> None:
    r = raw("vllm_interrupted_detailed.json")
    (point,) = import_file(DATA / "vllm_interrupted_detailed.json").points
    assert (point.requests.ok, point.requests.errored) == (r["completed"], r["failed"]) == (1, 7)
    for metric, field in (("ttft", "ttft_ms"), ("itl", "itl_ms"), ("tpot", "tpot_ms"), ("e2el", "e2e_ms")):
        assert_matches_vllm(getattr(point, field), r, metric)
    errors = [rec.error for rec in point.records if not rec.ok]
    assert len(errors) == 7 and all(e is not None and "\n" not in e and "ClientPayloadError" in e for e in errors)


def test_vllm_all_failed_has_no_latencies() -> None:
    (point,) = import_file(DATA / "vllm_all_failed.json").points
    assert (point.requests.ok, point.requests.errored) == (0, 8)
    assert point.ttft_ms == Distribution() and point.tpot_ms == Distribution()


# ---------------------------------------------------------------- GuideLLM


def test_guidellm_concurrent_streams() -> None:
    r = raw("guidellm_concurrent.json")
    report = import_file(DATA / "guidellm_concurrent.json")
    assert (report.source, report.tool_version, report.model) == ("guidellm", "0.8.1", "smollm2")
    assert report.url == "http://127.0.0.1:8123"
    assert report.workload is not None and report.workload.prompt == "synthetic_text 32 tokens"
    assert [p.target.label() for p in report.points] == ["concurrent@1", "concurrent@2"]
    for point, bench in zip(report.points, r["benchmarks"], strict=True):
        m = bench["metrics"]

        def ok(metric: str, m: dict[str, Any] = m) -> dict[str, Any]:
            return m[metric]["successful"]

        assert point.source == "guidellm"
        assert point.requests.ok == m["request_totals"]["successful"] == 6
        assert point.requests_per_s == ok("requests_per_second")["mean"]
        assert point.requests_per_s == pytest.approx(point.requests.ok / point.duration_s, rel=1e-3)
        assert point.output_tok_s == ok("output_tokens_per_second")["mean"]
        assert point.output_tok_s == pytest.approx(ok("output_token_count")["total_sum"] / point.duration_s, rel=1e-3)
        assert point.concurrency == ok("request_concurrency")["mean"]
        assert point.ttft_ms.p50 == ok("time_to_first_token_ms")["median"]
        assert point.ttft_ms.p95 == ok("time_to_first_token_ms")["percentiles"]["p95"]
        # GuideLLM's ITL is the per-request decode step (vLLM's TPOT); its TPOT includes the first token
        assert point.tpot_ms.mean == ok("inter_token_latency_ms")["mean"]
        assert point.tpot_ms.p90 == ok("inter_token_latency_ms")["percentiles"]["p90"]
        assert point.tpot_incl_first_ms.p50 == ok("time_per_output_token_ms")["percentiles"]["p50"]
        assert point.itl_ms.mean == point.tpot_ms.mean and point.itl_ms.p50 is None
        assert point.itl_ms.count == ok("inter_token_latency_ms")["count"]
        assert point.e2e_ms.p99 == pytest.approx(ok("request_latency")["percentiles"]["p99"] * 1000)


def test_guidellm_sweep_strategies() -> None:
    r = raw("guidellm_sweep.json")
    report = import_file(DATA / "guidellm_sweep.json", "guidellm")
    targets = [p.target for p in report.points]
    assert [t.profile for t in targets] == ["synchronous", "throughput", "constant", "constant"]
    assert targets[0].concurrency == 1 and targets[1].concurrency == 512
    assert [t.rate for t in targets[2:]] == [b["config"]["strategy"]["rate"] for b in r["benchmarks"][2:]]


# ---------------------------------------------------------------- llama-bench


def test_llama_bench_json() -> None:
    records = raw("llama_bench.json")
    report = import_file(DATA / "llama_bench.json")
    assert report.source == "llama-bench"
    assert report.model == f"{records[0]['model_filename']} (llama 256M Q4_1, 92.1 MiB)"
    assert report.created_at == records[0]["test_time"]
    assert report.tool_version == f"b{records[0]['build_number']} ({records[0]['build_commit']})"
    assert report.hardware is not None and records[0]["cpu_info"] in report.hardware
    assert report.backend is not None and f"n_threads={records[0]['n_threads']}" in report.backend
    pp, tg = report.points
    rec_pp, rec_tg = records
    assert (rec_pp["n_prompt"], rec_pp["n_gen"], rec_tg["n_prompt"], rec_tg["n_gen"]) == (32, 0, 0, 16)
    for point in (pp, tg):
        assert (point.source, point.target.label(), point.target.concurrency) == ("llama-bench", "synchronous", 1)
        assert point.requests.ok == 2
    assert pp.input_tok_s == rec_pp["avg_ts"] and pp.output_tok_s is None
    assert pp.ttft_ms == distribution([ns / 1e6 for ns in rec_pp["samples_ns"]])
    assert pp.tpot_ms == Distribution()
    assert tg.output_tok_s == rec_tg["avg_ts"] and tg.ttft_ms == Distribution()
    assert tg.tpot_ms == distribution([1000 / ts for ts in rec_tg["samples_ts"]])
    assert tg.tpot_ms.mean == pytest.approx(sum(rec_tg["samples_ns"]) / 1e6 / (2 * 16), rel=1e-3)
    assert tg.itl_ms.mean == tg.tpot_ms.mean and tg.itl_ms.p50 is None
    assert tg.e2e_ms.p50 == pytest.approx(sum(rec_tg["samples_ns"]) / 2 / 1e6)  # two repetitions


def test_llama_bench_jsonl_matches_json() -> None:
    as_json = import_file(DATA / "llama_bench.json")
    as_jsonl = import_file(DATA / "llama_bench.jsonl")
    assert [p.target.label() for p in as_jsonl.points] == ["synchronous", "synchronous"]
    assert as_jsonl.tool_version == as_json.tool_version and as_jsonl.model == as_json.model
    assert as_jsonl.points[0].input_tok_s is not None and as_jsonl.points[1].output_tok_s is not None


def test_llama_bench_prompt_and_generation_with_thread_sweep() -> None:
    records = [json.loads(line) for line in (DATA / "llama_bench_pg_threads.jsonl").read_text().splitlines()]
    report = import_file(DATA / "llama_bench_pg_threads.jsonl")
    assert [(r["n_threads"], r["n_prompt"], r["n_gen"]) for r in records] == [(1, 32, 16), (2, 32, 16)]
    assert report.backend == "llama.cpp (CPU, n_threads=1, 2)"
    assert report.workload is not None and (report.workload.prompt, report.workload.output) == (
        "32 tokens",
        "16 tokens",
    )
    for point, rec in zip(report.points, records, strict=True):
        assert point.e2e_ms == distribution([ns / 1e6 for ns in rec["samples_ns"]])
        assert point.ttft_ms == point.tpot_ms == Distribution()
        assert point.input_tok_s is None and point.output_tok_s is None
        assert point.duration_s == pytest.approx(sum(rec["samples_ns"]) / 1e9)


# ---------------------------------------------------------------- detection and errors

FIXTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".json", ".jsonl"))


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_is_detected_and_round_trips(name: str) -> None:
    expected = {"vllm": "vllm-bench-serve", "guidellm": "guidellm", "llama": "llama-bench"}[name.split("_")[0]]
    report = import_file(DATA / name)
    assert report.source == expected
    assert LoadReport.model_validate_json(report.model_dump_json()) == report
    assert all(isinstance(v, float) for p in report.points for v in flat_metrics(p).values())


def test_detect_returns_none_for_other_json() -> None:
    assert detect([{"results": []}]) is None
    assert detect([[1, 2, 3]]) is None


@pytest.mark.parametrize(
    ("content", "tool", "message"),
    [
        ("not json at all {", None, "not JSON or JSON lines"),
        ("", None, "empty file"),
        ('{"results": [1, 2], "model": "x"}', None, "not a vllm bench serve, GuideLLM or llama-bench JSON result"),
        ("[1, 2, 3]", None, "(a JSON int)"),
        ('{"benchmarks": [{"metrics": {}}]}', None, "not a valid GuideLLM result (missing 'strategy')"),
        ('{"duration": 1}', "vllm", "not a valid vllm bench serve result (missing 'completed')"),
        ('{"duration": 1}', "lm-eval", "unknown tool 'lm-eval'"),
    ],
)
def test_unreadable_files_give_one_line_errors(tmp_path: Path, content: str, tool: str | None, message: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ImportFormatError) as exc:
        import_file(path, tool)
    text = str(exc.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_wrong_tool_for_a_real_file() -> None:
    with pytest.raises(ImportFormatError, match=r"not a valid llama-bench result \(missing 'samples_ns'\)"):
        import_file(DATA / "vllm_sync.json", "llama-bench")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        import_file(tmp_path / "absent.json")
