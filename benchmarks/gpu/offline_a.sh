#!/usr/bin/env bash
# Device call A of two (no network; carry .gpu-carry and .vllm-carry): unpack the first half of vLLM, install
# lalo-bench's Python needs, and start the llama.cpp CUDA build + synthetic GGUFs in the background, in a new
# session so it outlives this call (OFFLINE_A_BUILD=0: vLLM only). Call B (offline_b.sh) must follow on the same warm machine.
#
# Everything lives under /tmp (the working tree is re-copied by every call): /tmp/gpu-build (llama.cpp build,
# models, steps), /tmp/vsite and /tmp/vhf (vLLM), /tmp/site (pydantic & co. for lalo-bench), /tmp/lalo-build-repo
# (a private copy of the scripts for the background build: bash reads a script as it runs, so the next call's
# fresh copy must not replace it underneath).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GPU_BUILD_DIR=/tmp/gpu-build OUT="${OUT:-/tmp/gpu-out}"
MODELS="${GPU_CELLS_MODELS:-qwen2.5-1.5b,llama-3.1-8b,qwen2.5-1.5b@q8_0,llama-3.1-8b@q8_0}"
mkdir -p "$GPU_BUILD_DIR" /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "$REPO"/.gpu-carry/wheels/*.whl
rm -rf /tmp/lalo-build-repo && mkdir -p /tmp/lalo-build-repo
tar -C "$REPO" --exclude=./.vllm-carry -cf - . | tar -C /tmp/lalo-build-repo -xf -
: >"$GPU_BUILD_DIR/steps.jsonl"
[[ "${OFFLINE_A_BUILD:-1}" == 1 ]] && setsid nohup nice -n 10 flock /tmp/gpu-build.lock env GPU_CARRY_DIR=/tmp/lalo-build-repo/.gpu-carry \
  OUT=/tmp/gpu-build-out GPU_CELLS_BUDGET_S="${BUILD_BUDGET_S:-900}" GPU_CELLS_JOBS="${GPU_CELLS_JOBS:-12}" \
  GPU_CELLS_MODELS="$MODELS" /tmp/lalo-build-repo/benchmarks/gpu_cells.sh build >/tmp/gpu-build-bg.log 2>&1 </dev/null &
"$REPO/benchmarks/gpu_cells.sh" vllm-unpack
sleep 3
[[ -f /tmp/gpu-build-bg.log ]] && tail -n 5 /tmp/gpu-build-bg.log
exit 0
