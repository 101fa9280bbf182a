#!/usr/bin/env bash
# Device call B of two (carry .vllm-carry): finish vLLM (second half of _C), measure the vLLM cells while the
# background llama.cpp build of call A goes on, then wait for that build and run llama-bench on every model
# (OFFLINE_B_LLAMA=0: vLLM only).
# Results in $OUT: status.json, summary.md, log.txt, vllm-loadtest.json, llama-bench.json.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GPU_BUILD_DIR=/tmp/gpu-build OUT="${OUT:-/tmp/gpu-out}"
MODELS="${GPU_CELLS_MODELS:-qwen2.5-1.5b,llama-3.1-8b,qwen2.5-1.5b@q8_0,llama-3.1-8b@q8_0}"
if [[ ! -f /tmp/vsite/C.part1 || ! -d /tmp/site/pydantic ]]; then
  echo "offline_b: call A's state is not on this machine (a fresh one?): run benchmarks/gpu/offline_a.sh first" >&2
  exit 3
fi
T0=$(date +%s)
GPU_CELLS_BUDGET_S="${VLLM_BUDGET_S:-330}" "$REPO/benchmarks/gpu_cells.sh" vllm
[[ "${OFFLINE_B_LLAMA:-1}" == 1 ]] || exit 0
echo "--- background build (call A) so far:"
tail -n 8 /tmp/gpu-build-bg.log
left=$(( ${TOTAL_BUDGET_S:-540} - $(date +%s) + T0 ))
if ! flock -w "$((left - 60 > 10 ? left - 60 : 10))" /tmp/gpu-build.lock true; then
  echo "offline_b: the llama.cpp build is still running; no llama-bench this call"
  exit 0
fi
grep -E 'FAILED|ok build|skipped' /tmp/gpu-build-bg.log | tail -n 8
left=$(( ${TOTAL_BUDGET_S:-540} - $(date +%s) + T0 ))
GPU_CELLS_VLLM=0 GPU_CELLS_SERVE=0 GPU_CELLS_MODELS="$MODELS" GPU_CARRY_DIR=/tmp/lalo-build-repo/.gpu-carry \
  GPU_CELLS_BUDGET_S="$left" "$REPO/benchmarks/gpu_cells.sh" measure
