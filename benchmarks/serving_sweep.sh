#!/usr/bin/env bash
# The real serving sweep of issue 4: SmolLM2-135M (Q4_1) on the llama.cpp server and on vLLM's CPU build,
# each started by lalo-bench, swept GuideLLM-style (synchronous → maximum throughput → rates between),
# with the SLO TTFT ≤ 1 s and ITL ≤ 100 ms. Results: benchmarks/results/serving/<backend>.{json,csv,requests.jsonl}
# and MLflow (default store). About 4 minutes per backend on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/serving}
SECONDS_PER_POINT=${SECONDS_PER_POINT:-30}
mkdir -p "$OUT"
for backend in llamacpp-server vllm; do
  .venv/bin/lalo-bench loadtest --launch smollm2-135m-instruct --backend "$backend" --threads 2 \
    --profile sweep --concurrency 16 --sweep-points 4 --max-seconds "$SECONDS_PER_POINT" --warmup 2 \
    --prompt-tokens 64 --max-tokens 64 --ignore-eos \
    --slo-ttft-ms 1000 --slo-itl-ms 100 --output "$OUT/$backend.json"
done
