"""Gateway overhead: the same load directly to a zero-delay mock and through ``lalo-bench serve`` to that mock.

The mock has every token ready at once, so what the gateway adds shows undiluted: latency (TTFT and end to end,
p50 and p99) and throughput. Direct and gateway runs alternate, each with the same client (lalo-bench's load
generator, its own process) and the same number of requests; the figures are medians over the repeats. Requests
name the model explicitly, so the router's own time (keyword or learned) is not part of it; ``--auto`` routes
them by the policy instead.

    .venv/bin/python benchmarks/gateway_overhead.py --concurrency 1,64 --requests 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from lalo_bench.testing.gateway import TEST_KEY, running_gateway, write_keyword_policy
from lalo_bench.testing.mock_openai import running_mock

ROOT = Path(__file__).resolve().parent.parent
NAME = "mock:q4_1@llamacpp"
FIGURES = ("ttft_ms_p50", "ttft_ms_p99", "e2e_ms_p50", "e2e_ms_p99", "requests_per_s")


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def servers() -> dict[str, psutil.Process]:
    """This script's two server processes: the mock and the gateway (both its children)."""
    found = {}
    for child in psutil.Process().children():
        cmd = " ".join(child.cmdline())
        found["gateway" if " serve " in cmd else "mock"] = child
    return found


def load(url: str, model: str, concurrency: int, args: argparse.Namespace, out: Path, key: str | None) -> dict:
    cmd = [
        sys.executable, "-m", "lalo_bench.cli", "loadtest", "--url", url, "--model", model,
        "--profile", "concurrent", "--concurrency", str(concurrency), "--max-requests", str(args.requests),
        "--warmup", str(min(concurrency * 2, 100)), "--prompt-tokens", "32", "--max-tokens", str(args.output_tokens),
        "--ignore-eos", "--no-track", "--output", str(out),
    ]  # fmt: skip
    if key:
        cmd += ["--api-key", key]
    procs = servers()
    before = {name: cpu_s(p) for name, p in procs.items()}
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # the client, once it has exited
    subprocess.run(cmd, check=True, capture_output=True)
    used = {name: cpu_s(p) - before[name] for name, p in procs.items()}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["client"] = after.ru_utime + after.ru_stime - waited.ru_utime - waited.ru_stime  # with its start-up
    point = json.loads(out.read_text())["points"][0]
    assert point["requests"]["ok"] == args.requests, f"{url}: {point['requests']}"
    return {
        "ttft_ms_p50": point["ttft_ms"]["p50"],
        "ttft_ms_p99": point["ttft_ms"]["p99"],
        "e2e_ms_p50": point["e2e_ms"]["p50"],
        "e2e_ms_p99": point["e2e_ms"]["p99"],
        "requests_per_s": point["requests_per_s"],
        # CPU per request of each process (the client's includes its start-up, so it is an upper bound)
        **{f"cpu_us_per_request.{name}": v / args.requests * 1e6 for name, v in used.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--output-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--auto", action="store_true", help="route by the policy (model 'auto') instead of by name")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gateway_overhead.json")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, running_mock() as mock:
        policy = write_keyword_policy(Path(tmp) / "policy.json", [NAME, "mock:q8_0@llamacpp"])
        upstreams = {NAME: f"{mock}#mock", "mock:q8_0@llamacpp": f"{mock}#mock"}
        with running_gateway(policy, upstreams, "--max-concurrency", "1024", log=Path(tmp) / "gw.log") as gateway:
            model = "auto" if args.auto else NAME
            for c in levels:
                runs: dict[str, list[dict]] = {"direct": [], "gateway": []}
                for r in range(args.repeats):
                    for kind in ("direct", "gateway") if r % 2 == 0 else ("gateway", "direct"):
                        out = Path(tmp) / f"{kind}-{c}-{r}.json"
                        if kind == "direct":
                            runs[kind].append(load(mock, "mock", c, args, out, None))
                        else:
                            runs[kind].append(load(gateway, model, c, args, out, TEST_KEY))
                        print(f"c={c} {kind} run {r + 1}: {runs[kind][-1]}", file=sys.stderr)
                med = {k: {f: statistics.median(x[f] for x in v if f in x) for f in v[0]} for k, v in runs.items()}
                results[str(c)] = {
                    "direct": med["direct"],
                    "gateway": med["gateway"],
                    "added_ms": {f: med["gateway"][f] - med["direct"][f] for f in FIGURES if f != "requests_per_s"},
                    "throughput_ratio": med["gateway"]["requests_per_s"] / med["direct"]["requests_per_s"],
                    "runs": runs,
                }
    report = {
        "what": "same load directly to a zero-delay mock and through lalo-bench serve to it; medians over repeats",
        "command": "benchmarks/gateway_overhead.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "requests": args.requests,
        "output_tokens": args.output_tokens,
        "model": "auto (keyword policy)" if args.auto else "by name",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'conc':>5} {'added TTFT p50':>15} {'p99':>8} {'added e2e p50':>14} {'p99':>8} {'req/s direct':>13} "
          f"{'gateway':>8} {'ratio':>6}")  # fmt: skip
    for c, r in results.items():
        a = r["added_ms"]
        print(
            f"{c:>5} {a['ttft_ms_p50']:>12.2f} ms {a['ttft_ms_p99']:>8.2f} {a['e2e_ms_p50']:>11.2f} ms "
            f"{a['e2e_ms_p99']:>8.2f} {r['direct']['requests_per_s']:>13.0f} {r['gateway']['requests_per_s']:>8.0f} "
            f"{r['throughput_ratio']:>6.0%}"
        )
    for c, r in results.items():
        cpu = {k.split(".")[-1]: round(v) for k, v in r["gateway"].items() if k.startswith("cpu_us")}
        direct = {k.split(".")[-1]: round(v) for k, v in r["direct"].items() if k.startswith("cpu_us")}
        print(f"c={c} CPU µs per request, direct: {direct}; through the gateway: {cpu}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
