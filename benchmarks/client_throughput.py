"""Client overhead: completed streamed requests/s of lalo-bench's load generator and of ``vllm bench serve``.

Both drive the same zero-delay mock server (every token is ready at once), so
what limits the rate is the client itself: how fast it sends, reads and
parses streamed replies. Each tool runs as its own process, alternating, and
each reports its own rate (completed requests / its benchmark duration).

    .venv/bin/python benchmarks/client_throughput.py --concurrency 64 --requests 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from lalo_bench.models.store import home
from lalo_bench.testing.mock_openai import running_mock

ROOT = Path(__file__).resolve().parent.parent


def run_vllm(args: argparse.Namespace, url: str, out: Path) -> float:
    base = url.removesuffix("/v1")
    cmd = [
        str(args.vllm_python), str(ROOT / "benchmarks" / "vllm_cli.py"), "bench", "serve",
        "--backend", "openai-chat", "--base-url", base, "--endpoint", "/v1/chat/completions",
        "--model", "mock", "--tokenizer", str(args.tokenizer), "--dataset-name", "random",
        "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_tokens),
        "--num-prompts", str(args.requests), "--max-concurrency", str(args.concurrency),
        "--ignore-eos", "--disable-tqdm", "--num-warmups", "0",
        "--save-result", "--result-dir", str(out.parent), "--result-filename", out.name,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    result = json.loads(out.read_text())
    assert result["completed"] == args.requests, f"vllm completed {result['completed']} of {args.requests}"
    return float(result["request_throughput"])


def run_lalo(args: argparse.Namespace, url: str, out: Path) -> float:
    cmd = [
        sys.executable, "-m", "lalo_bench.cli", "loadtest", "--url", url, "--model", "mock",
        "--profile", "concurrent", "--concurrency", str(args.concurrency), "--max-requests", str(args.requests),
        "--prompt-tokens", str(args.input_len), "--max-tokens", str(args.output_tokens), "--ignore-eos",
        "--no-track", "--output", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    point = json.loads(out.read_text())["points"][0]
    assert point["requests"]["ok"] == args.requests, f"lalo-bench completed {point['requests']}"
    return float(point["requests_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--output-tokens", type=int, default=16)
    ap.add_argument("--input-len", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vllm-python", type=Path, default=ROOT / ".venv-vllm" / "bin" / "python")
    ap.add_argument(
        "--tokenizer",
        type=Path,
        default=home() / "hf" / "smollm2-135m-instruct" / "q4_1",
        help="a Hugging Face folder with a tokenizer (vllm's random dataset needs one)",
    )
    args = ap.parse_args()
    rates: dict[str, list[float]] = {"lalo-bench": [], "vllm bench serve": []}
    with running_mock() as url, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            order = [("lalo-bench", run_lalo), ("vllm bench serve", run_vllm)]
            for name, fn in order if i % 2 == 0 else order[::-1]:
                rate = fn(args, url, Path(tmp) / f"{name.split()[0]}-{i}.json")
                rates[name].append(rate)
                print(f"run {i + 1} {name:17s} {rate:8.1f} req/s", flush=True)
    lalo, vllm = (statistics.median(rates[k]) for k in ("lalo-bench", "vllm bench serve"))
    print(f"\nzero-delay mock, concurrency {args.concurrency}, {args.requests} requests × {args.output_tokens} tokens")
    print(f"lalo-bench       median {lalo:8.1f} completed streamed req/s  (runs: {rates['lalo-bench']})")
    print(f"vllm bench serve median {vllm:8.1f} completed streamed req/s  (runs: {rates['vllm bench serve']})")
    print(f"ratio lalo-bench / vllm = {lalo / vllm:.2f}x")


if __name__ == "__main__":
    main()
