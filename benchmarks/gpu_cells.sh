#!/usr/bin/env bash
# GPU cells for lalo-bench: build llama.cpp (CUDA), get models, measure llama-bench and llama-server
# under lalo-bench's load generator, try vLLM, and write results lalo-bench can import.
#
#   benchmarks/gpu_cells.sh build     # unpack/fetch llama.cpp, build, make synthetic models   (<= ~7 min)
#   benchmarks/gpu_cells.sh measure   # (finish the build if needed,) measure every model     (<= ~7 min)
#   benchmarks/gpu_cells.sh all       # both, in one call
#   benchmarks/gpu_cells.sh vllm-unpack   # unpack a carried vLLM (.vllm-carry, make_vllm_carry.sh) into /tmp/vsite
#   benchmarks/gpu_cells.sh vllm      # unpack, then the vLLM cells only (benchmarks/gpu/vllm_cells.sh)
#
# Every step runs under `timeout` and inside a time budget per call (GPU_CELLS_BUDGET_S); a step that
# would not fit is recorded as skipped, a failing one as failed with its reason — never hidden.
# Results are written as they come, so a killed run still leaves what it had.
#
# Outputs in $OUT (default benchmarks/results/gpu/<UTC date-time>; at most 8 files):
#   status.json            environment + every step (ok / failed / skipped, seconds, reason)
#   summary.md             short human summary
#   log.txt                this script's timestamped progress (and build/server log tails on failure)
#   llama-bench.json       llama-bench -o json output of every model, one array (lalo-bench import)
#   loadtest-<model>.json  lalo-bench loadtest report per model (lalo-bench's own schema)
#   loadtest-records.tar.gz  per-request records and CSVs of the load tests
#
# Persistent (ignored) work folder: .gpu-build/ (source, build, models, raw results, steps.jsonl).
# Carried inputs for a machine without network: .gpu-carry/ (made by benchmarks/gpu/make_carry.sh).
#
# Knobs (environment):
#   OUT                      results folder (see above)
#   GPU_CELLS_BUDGET_S       seconds this call may use (default 420)
#   GPU_CELLS_CUDA           auto (default: CUDA when nvcc AND a GPU are present) | on | off
#   GPU_CELLS_CUDA_ARCH      CMAKE_CUDA_ARCHITECTURES (default 90 = H100/H200)
#   GPU_CELLS_CUBLAS_DIR     where to look for cuBLAS if the toolkit has none (default: PyTorch's
#                            pip wheels, site-packages/nvidia/cu13, are searched by themselves)
#   GPU_CELLS_NO_AMX         1 (default) = build the CPU backend without AMX (it segfaulted here)
#   GPU_CELLS_JOBS           build parallelism (default: nproc)
#   GPU_CELLS_MODELS         comma list of presets (default qwen2.5-1.5b,llama-3.1-8b; +llama-3.1-70b
#                            when SYNTH_70B=1; "tiny" for CPU dry runs)
#   SYNTH_70B                1 = also make/measure the Llama-3.1-70B-shaped model (~42 GB on disk)
#   GPU_CELLS_SYNTH_ONLY     1 = use synthetic models even where real GGUFs exist under $LALO_HOME
#   GPU_CELLS_LOAD_SECONDS   --max-seconds per load point (default 20)
#   GPU_CELLS_CONCURRENCY    load points (default 1,4,16)
#   GPU_CELLS_PARALLEL       llama-server slots -np (default 16; context = slots x 1024)
#   GPU_CELLS_VLLM_INSTALL   1 = pip install vllm into .gpu-build/venv-vllm when the network allows
#   GPU_CELLS_VLLM           0 = measure skips vLLM (default 1: vLLM cells when vLLM is found)
#   GPU_CELLS_SERVE          0 = measure skips the llama-server load tests (llama-bench only)
#   GPU_CELLS_MODELS entries may name a weight type, e.g. llama-3.1-8b@q8_0 (synthetic files; default q4_k_m)
#   LLAMA_SRC                an unpacked llama.cpp source tree to use instead of the carry/sdist
set -euo pipefail

PHASE="${1:-all}"
case "$PHASE" in build | measure | all | status | vllm | vllm-unpack) ;; *)
  echo "usage: $0 build|measure|all|status|vllm|vllm-unpack" >&2
  exit 2
  ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
T0=$(date +%s)
DEFAULT_BUDGET=420
[[ "$PHASE" == all ]] && DEFAULT_BUDGET=570
BUDGET="${GPU_CELLS_BUDGET_S:-$DEFAULT_BUDGET}"
WORK="${GPU_BUILD_DIR:-$REPO/.gpu-build}"
CARRY="${GPU_CARRY_DIR:-$REPO/.gpu-carry}"
OUT="${OUT:-$REPO/benchmarks/results/gpu/$(date -u +%Y%m%d-%H%M%S)}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
JOBS="${GPU_CELLS_JOBS:-$(nproc)}"
CUDA_MODE="${GPU_CELLS_CUDA:-auto}"
CUDA_ARCH="${GPU_CELLS_CUDA_ARCH:-90}"
SYNTH_70B="${SYNTH_70B:-0}"
DEFAULT_MODELS="qwen2.5-1.5b,llama-3.1-8b"
[[ "$SYNTH_70B" == 1 ]] && DEFAULT_MODELS="$DEFAULT_MODELS,llama-3.1-70b"
MODELS="${GPU_CELLS_MODELS:-$DEFAULT_MODELS}"
LOAD_SECONDS="${GPU_CELLS_LOAD_SECONDS:-20}"
CONCURRENCY="${GPU_CELLS_CONCURRENCY:-1,4,16}"
NP="${GPU_CELLS_PARALLEL:-16}"
LALO_HOME="${LALO_HOME:-$HOME/.cache/lalo-bench}"
PY="${PYTHON:-python3}"
CELLS="$REPO/benchmarks/gpu/cells.py"
SYNTH="$REPO/benchmarks/gpu/synth_gguf.py"
SRC_DIR="$WORK/src/llama.cpp"
STEPS="$WORK/steps.jsonl"
RAW="$WORK/results"
export PYTHONUNBUFFERED=1

mkdir -p "$OUT" "$WORK" "$RAW"
LOG="$OUT/log.txt"
exec 3>&1 4>&2
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
# at exit: restore the original stdout/stderr so tee sees EOF, and let it finish writing log.txt
finish_log() { exec 1>&3 2>&4; wait "$TEE_PID" 2>/dev/null || sleep 0.5; }

log() { printf '[%s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
elapsed() { echo $(($(date +%s) - T0)); }
remaining() { echo $((BUDGET - $(date +%s) + T0)); }

# record NAME STATUS SECONDS REASON [DATA_JSON]
record() {
  local args=(--steps "$STEPS" --phase "$CUR_PHASE" --name "$1" --status "$2" --seconds "$3" --reason "$4")
  [[ -n "${5:-}" ]] && args+=(--data "$5")
  "$PY" "$CELLS" step "${args[@]}" >/dev/null || log "WARNING: could not record step $1"
  case "$2" in
    failed) log "FAILED $1 (${3}s): $4" ;;
    info) [[ -z "$4" ]] || log "info $1: $4" ;;
    *) log "$2 $1 (${3}s)${4:+: $4}" ;;
  esac
  render
}
render() { "$PY" "$CELLS" render --steps "$STEPS" --out "$OUT" >/dev/null 2>&1 || true; }

# run_step NAME MAX_SECONDS MIN_SECONDS CMD... : skipped if fewer than MIN_SECONDS remain; timeout =
# min(MAX_SECONDS, remaining - 10). Returns the command's status (0 ok). Output goes to the log.
STEP_REASON=""
run_step() {
  local name="$1" max="$2" min="$3"
  shift 3
  local left
  left=$(remaining)
  if ((left < min)); then
    STEP_NOTE="" STEP_DATA="" STEP_OUT="" STEP_ERR=""
    record "$name" skipped 0 "time budget: ${left}s left, step needs >= ${min}s"
    return 3
  fi
  local to=$((left - 10 < max ? left - 10 : max))
  log "step $name (timeout ${to}s): $*"
  local t rc
  t=$(date +%s)
  set +e
  if [[ -n "$STEP_OUT" && -n "$STEP_ERR" ]]; then
    timeout --kill-after=15 "$to" "$@" >"$STEP_OUT" 2>"$STEP_ERR"
  elif [[ -n "$STEP_OUT" ]]; then
    timeout --kill-after=15 "$to" "$@" >"$STEP_OUT" 2>&1
  else
    timeout --kill-after=15 "$to" "$@"
  fi
  rc=$?
  set -e
  local dt=$(($(date +%s) - t))
  if ((rc == 0)); then
    STEP_REASON=""
    record "$name" ok "$dt" "${STEP_NOTE:-}" "${STEP_DATA:-}"
  elif ((rc == 124 || rc == 137)); then
    STEP_REASON="timed out after ${to}s"
    record "$name" failed "$dt" "$STEP_REASON${STEP_NOTE:+; $STEP_NOTE}" "${STEP_DATA:-}"
  else
    STEP_REASON="exit status $rc"
    record "$name" failed "$dt" "$STEP_REASON${STEP_NOTE:+; $STEP_NOTE}" "${STEP_DATA:-}"
  fi
  STEP_NOTE="" STEP_DATA="" STEP_OUT="" STEP_ERR=""
  return $rc
}
# per-call options of run_step, reset after each: note for the record, JSON data, stdout/stderr files
STEP_NOTE="" STEP_DATA="" STEP_OUT="" STEP_ERR=""

# --------------------------------------------------------------------------------------------- env
find_nvcc() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; elif [[ -x /usr/local/cuda/bin/nvcc ]]; then echo /usr/local/cuda/bin/nvcc; fi
}
have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && timeout 20 nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }

env_step() {
  local envjson
  envjson="$(timeout 60 "$PY" "$CELLS" env 2>/dev/null || echo '{}')"
  record env info 0 "" "$envjson"
  log "env: $(echo "$envjson" | "$PY" -c 'import json,sys; e=json.load(sys.stdin); g=(e.get("gpus") or [{}])[0]; print(g.get("name","no GPU"), "| driver", g.get("driver"), "| CUDA", e.get("cuda_driver_version"), "| nvcc", (e.get("nvcc") or {}).get("release"), "|", e.get("cpu_count"), "CPUs |", e.get("mem_total_gib"), "GiB |", e.get("disk_free_gib"), "GiB free")' 2>/dev/null || true)"
}

# ------------------------------------------------------------------------------------------ build
BUILD_KIND=""
decide_cuda() {
  local nvcc
  nvcc="$(find_nvcc || true)"
  case "$CUDA_MODE" in
    on) BUILD_KIND=cuda ;;
    off) BUILD_KIND=cpu ;;
    *) if [[ -n "$nvcc" ]] && have_gpu; then BUILD_KIND=cuda; else BUILD_KIND=cpu; fi ;;
  esac
  if [[ "$BUILD_KIND" == cuda && -z "$nvcc" ]]; then
    record build-config failed 0 "GPU_CELLS_CUDA=on but no nvcc on PATH or in /usr/local/cuda/bin"
    return 1
  fi
  NVCC="$nvcc"
  BUILD_DIR="$WORK/build-$BUILD_KIND"
  BIN="$BUILD_DIR/bin"
  if [[ -z "${KIND_RECORDED:-}" ]]; then
    KIND_RECORDED=1
    record build-kind info 0 "$BUILD_KIND build (GPU_CELLS_CUDA=$CUDA_MODE; nvcc: ${nvcc:-none}; GPU: $(have_gpu && echo yes || echo no))"
  fi
}

get_source() {
  if [[ -f "$SRC_DIR/CMakeLists.txt" ]]; then
    return 0
  fi
  mkdir -p "$WORK/src"
  local t
  t=$(date +%s)
  if [[ -n "${LLAMA_SRC:-}" && -f "$LLAMA_SRC/CMakeLists.txt" ]]; then
    cp -a "$LLAMA_SRC" "$SRC_DIR"
    record source ok $(($(date +%s) - t)) "" "{\"source\": \"LLAMA_SRC=$LLAMA_SRC\"}"
  elif [[ -f "$CARRY/llama.cpp-src.tar.gz" ]]; then
    rm -rf "$WORK/src/llama.cpp.partial" && mkdir -p "$WORK/src/llama.cpp.partial"
    if tar -xzf "$CARRY/llama.cpp-src.tar.gz" -C "$WORK/src/llama.cpp.partial"; then
      mv "$WORK/src/llama.cpp.partial/llama.cpp" "$SRC_DIR" && rm -rf "$WORK/src/llama.cpp.partial"
      record source ok $(($(date +%s) - t)) "" "{\"source\": \"carried trimmed tarball of llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION vendor/llama.cpp\"}"
    else
      record source failed $(($(date +%s) - t)) "could not unpack $CARRY/llama.cpp-src.tar.gz"
      return 1
    fi
  else
    # A normal GPU box with network: the sdist of llama-cpp-python vendors llama.cpp.
    local dl="$WORK/src/sdist"
    mkdir -p "$dl"
    if timeout 300 "$PY" -m pip download -q --no-binary :all: --no-deps -d "$dl" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" &&
      tar -xzf "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$dl"; then
      mv "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp" "$SRC_DIR"
      record source ok $(($(date +%s) - t)) "" "{\"source\": \"pip download llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION (sdist) vendor/llama.cpp\"}"
    else
      record source failed $(($(date +%s) - t)) "no $CARRY/llama.cpp-src.tar.gz and pip download of llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION failed (no network?)"
      return 1
    fi
  fi
}

# the cmake arguments of this build kind; their hash stamps the configure and the finished build
CMAKE_ARGS=() CONFIG_SIG="" CUDA_PATHS_JSON="{}"
cmake_config() {
  CMAKE_ARGS=(
    -S "$SRC_DIR" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
    -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF
    # LLAMA_CURL no longer exists in this llama.cpp (deprecated and ignored): nothing to turn off.
  )
  # AMX: -march=native turns it on where the CPU has it, and its CPU matmul path segfaulted on the
  # Firecracker VMs here (seen with this llama.cpp on a CPU build). GPU cells never use it: leave it out.
  if [[ "${GPU_CELLS_NO_AMX:-1}" == 1 && "$(uname -m)" == x86_64 ]] &&
    ${CC:-cc} -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -x c -E /dev/null >/dev/null 2>&1; then
    CMAKE_ARGS+=("-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
      "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
  fi
  if [[ "$BUILD_KIND" == cuda ]]; then
    # GGML_CUDA_FA_ALL_QUANTS is deprecated here (OFF is the default; FA kernels for the f16/bf16/q8_0/q4_0
    # KV-cache pairs are built); NCCL is for several GPUs.
    CMAKE_ARGS+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH" -DGGML_CUDA_FA_ALL_QUANTS=OFF
      -DGGML_CUDA_NCCL=OFF "-DCMAKE_CUDA_COMPILER=$NVCC")
    # cuBLAS from the toolkit, else from PyTorch's pip wheels (nvidia/cu13); libcuda from the driver
    local extra=() line
    [[ -n "${GPU_CELLS_CUBLAS_DIR:-}" ]] && extra=(--extra-dir "$GPU_CELLS_CUBLAS_DIR")
    CUDA_PATHS_JSON="$("$PY" "$CELLS" cuda-paths --nvcc "$NVCC" "${extra[@]}" 2>/dev/null || echo '{}')"
    while IFS= read -r line; do [[ -n "$line" ]] && CMAKE_ARGS+=("$line"); done < <(
      "$PY" -c 'import json,sys; print("\n".join(json.loads(sys.argv[1]).get("cmake_args", [])))' "$CUDA_PATHS_JSON")
    local libdirs
    libdirs="$("$PY" -c 'import json,sys; print(":".join(json.loads(sys.argv[1]).get("lib_dirs", [])))' "$CUDA_PATHS_JSON")"
    [[ -n "$libdirs" ]] && export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    CMAKE_ARGS+=(-DGGML_CUDA=OFF)
  fi
  CONFIG_SIG="$BUILD_KIND $(printf '%s\n' "${CMAKE_ARGS[@]}" | sha256sum | cut -c1-12)"
}

built() {
  [[ -x "$BIN/llama-bench" && -x "$BIN/llama-server" && -x "$BIN/llama-quantize" && -f "$BUILD_DIR/.lalo-built" ]] &&
    [[ "$(head -n 1 "$BUILD_DIR/.lalo-built")" == "$CONFIG_SIG" ]]
}

do_build() {
  decide_cuda || return 1
  cmake_config
  if built; then
    record build skipped 0 "already built ($(tail -n +2 "$BUILD_DIR/.lalo-built" | tr '\n' ' '))"
    return 0
  fi
  get_source || return 1
  # The source sits inside this git repo: stop llama.cpp's build-info from reading lalo-bench's commit.
  export GIT_CEILING_DIRECTORIES="$WORK/src"
  STEP_NOTE="$BUILD_KIND"
  if [[ -f "$BUILD_DIR/build.ninja" && "$(head -n 1 "$BUILD_DIR/.lalo-configured" 2>/dev/null)" == "$CONFIG_SIG" ]]; then
    log "already configured ($(head -n 1 "$BUILD_DIR/.lalo-configured")): resuming the build"
  else
    STEP_OUT="$WORK/cmake-configure-$BUILD_KIND.log" STEP_DATA="{\"cmake_args\": $("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${CMAKE_ARGS[@]}"), \"cuda_paths\": $CUDA_PATHS_JSON}"
    if ! run_step cmake-configure 180 30 cmake "${CMAKE_ARGS[@]}"; then
      tail -n 40 "$WORK/cmake-configure-$BUILD_KIND.log" | sed 's/^/  cmake| /'
      return 1
    fi
    grep -E 'CUDA Toolkit found|CMAKE_CUDA_ARCHITECTURES|CUDA host compiler|Warning' "$WORK/cmake-configure-$BUILD_KIND.log" | sed 's/^/  cmake| /' || true
    printf '%s\n%s\n' "$CONFIG_SIG" "configured $(date -u +%FT%TZ): ${CMAKE_ARGS[*]}" >"$BUILD_DIR/.lalo-configured"
  fi
  log "configure ok ($BUILD_KIND); building llama-bench llama-server llama-quantize with -j$JOBS"
  STEP_NOTE="$BUILD_KIND, -j$JOBS, arch ${CUDA_ARCH}"
  # ninja keeps finished objects: a build cut by the time budget resumes in the next call.
  # model files need no binaries and writing them is disk-bound: make them beside the compile
  local synth_pid=""
  if [[ "${GPU_CELLS_SYNTH_DURING_BUILD:-1}" == 1 ]]; then
    (make_models) &
    synth_pid=$!
  fi
  local rc=0
  STEP_OUT="$WORK/build-$BUILD_KIND.log"
  run_step build 900 60 ninja -C "$BUILD_DIR" -j "$JOBS" llama-bench llama-server llama-quantize || rc=$?
  if [[ -n "$synth_pid" ]]; then
    wait "$synth_pid" || true
  fi
  if ((rc != 0)); then
    log "build stopped at $(grep -E '^\[[0-9]+/[0-9]+\]' "$WORK/build-$BUILD_KIND.log" | tail -n 1 | cut -d' ' -f1) (ninja resumes there next call); errors (full log in $WORK/build-$BUILD_KIND.log):"
    { grep -E -B2 -A8 'error|FAILED:' "$WORK/build-$BUILD_KIND.log" | grep -v -i 'warning' | tail -n 60 || true; } | sed 's/^/  ninja| /'
    return 1
  fi
  grep -E '^\[[0-9]+/[0-9]+\]' "$WORK/build-$BUILD_KIND.log" | tail -n 1 | sed 's/^/  ninja| /' || true
  local ver
  ver="$("$BIN/llama-bench" --version 2>&1 | head -n 2 | tr '\n' ' ' || true)"
  printf '%s\n%s\n' "$CONFIG_SIG" "$BUILD_KIND arch=$CUDA_ARCH built $(date -u +%FT%TZ); $ver" >"$BUILD_DIR/.lalo-built"
  record llama-cpp-version info 0 "llama.cpp from llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION: $ver"
}

# ----------------------------------------------------------------------------------------- models
# real GGUF under $LALO_HOME when present, else a synthetic one in $WORK/models
# A preset may name a weight type: "llama-3.1-8b@q8_0" (default q4_k_m; synthetic files only).
preset_name() { echo "${1%@*}"; }
preset_type() { [[ "$1" == *@* ]] && echo "${1#*@}" || echo q4_k_m; }
real_model_path() {
  [[ "$(preset_type "$1")" == q4_k_m ]] || { echo ""; return 0; }
  case "$1" in
    qwen2.5-1.5b) echo "$LALO_HOME/models/qwen2.5-coder-1.5b-instruct/q4_k_m.gguf" ;;
    llama-3.1-8b) echo "$LALO_HOME/models/llama-3.1-8b-instruct/q4_k_m.gguf" ;;
    llama-3.1-70b) echo "$LALO_HOME/models/hermes-4-70b/q4_k_m.gguf" ;;
    tiny) echo "" ;;
    *) echo "" ;;
  esac
}
real_model_label() {
  case "$1" in
    qwen2.5-1.5b) echo "qwen2.5-coder-1.5b-instruct-q4_k_m" ;;
    llama-3.1-8b) echo "llama-3.1-8b-instruct-q4_k_m" ;;
    llama-3.1-70b) echo "hermes-4-70b-q4_k_m" ;;
  esac
}
synth_path() { echo "$WORK/models/synthetic-$(preset_name "$1")-$(preset_type "$1").gguf"; }
# rough size (GB) of each preset's Q4_K_M file, for time and disk estimates
model_gb() {
  local gb
  case "$(preset_name "$1")" in qwen2.5-1.5b) gb=2 ;; llama-3.1-8b) gb=5 ;; llama-3.1-70b) gb=43 ;; *) gb=1 ;; esac
  case "$(preset_type "$1")" in q8_0) gb=$((gb * 2)) ;; f16) gb=$((gb * 4)) ;; esac
  echo "$gb"
}
tokenizer_for() {
  case "$(preset_name "$1")" in
    qwen2.5-1.5b) echo "$SRC_DIR/models/ggml-vocab-qwen2.gguf" ;;
    llama-3.1-8b | llama-3.1-70b) echo "$SRC_DIR/models/ggml-vocab-llama-bpe.gguf" ;;
    *) echo "$CARRY/tokenizers/smollm2-135m-tokenizer.gguf" ;;
  esac
}

# sets MODEL_FILE and MODEL_LABEL for preset $1 (generating the synthetic file if needed)
MODEL_FILE="" MODEL_LABEL=""
resolve_model() {
  local p="$1" real
  real="$(real_model_path "$p")"
  if [[ "${GPU_CELLS_SYNTH_ONLY:-0}" != 1 && -n "$real" && -f "$real" ]]; then
    MODEL_FILE="$real" MODEL_LABEL="$(real_model_label "$p")"
    return 0
  fi
  MODEL_FILE="$(synth_path "$p")" MODEL_LABEL="synthetic-$(preset_name "$p")-$(preset_type "$p")"
  [[ -f "$MODEL_FILE" ]] && return 0
  local tok gb free_gb
  [[ -f "$SRC_DIR/CMakeLists.txt" ]] || get_source || true # the vocab GGUFs travel in the source tarball
  tok="$(tokenizer_for "$p")"
  if [[ ! -f "$tok" ]]; then
    # fall back to the carried SmolLM2 tokenizer (smaller vocab than the real model's)
    tok="$CARRY/tokenizers/smollm2-135m-tokenizer.gguf"
    [[ -f "$tok" ]] || { record "synth-$p" failed 0 "no tokenizer GGUF (need $SRC_DIR/models or $CARRY/tokenizers)"; return 1; }
  fi
  gb="$(model_gb "$p")"
  mkdir -p "$WORK/models"
  free_gb=$(($(df -Pk "$WORK/models" | awk 'NR==2 {print $4}') / 1048576))
  if ((free_gb < gb + 4)); then
    record "synth-$p" skipped 0 "disk: ${free_gb} GiB free, needs ~$((gb + 4)) GiB"
    return 1
  fi
  # about 1 GB/s when the page cache absorbs it; the 70B file may drain to disk more slowly
  STEP_NOTE="synthetic weights, tokenizer $(basename "$tok")"
  local gen_out="$WORK/synth-$p.json"
  STEP_OUT="$gen_out" STEP_ERR="$WORK/synth-$p.err"
  if run_step "synth-$p" $((60 + gb * 8)) $((15 + gb * 2)) \
    "$PY" "$SYNTH" make --preset "$(preset_name "$p")" --type "$(preset_type "$p")" --tokenizer "$tok" --out "$MODEL_FILE"; then
    log "synth $p: $(cat "$gen_out")"
    # attach the generator's own record (bytes, seconds, GB/s, tensor types) as an info step
    record "synth-$p-info" info 0 "" "$(tail -n 1 "$gen_out")"
    return 0
  fi
  tail -n 20 "$WORK/synth-$p.err" 2>/dev/null | sed 's/^/  synth| /'
  rm -f "$MODEL_FILE.partial"
  return 1
}

make_models() {
  local p
  IFS=, read -r -a PRESETS <<<"$MODELS"
  for p in "${PRESETS[@]}"; do
    resolve_model "$p" || true
  done
}

# ---------------------------------------------------------------------------------------- python
LOADTEST_OK=0
LOADTEST_FLAGS=()
python_env() {
  # a warm machine keeps /tmp/site from an earlier call
  [[ -d /tmp/site/pydantic ]] && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PY" -c 'import pydantic' 2>/dev/null; then
    if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
      local t
      t=$(date +%s)
      if timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$CARRY"/wheels/*.whl; then
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
        record python-wheels ok $(($(date +%s) - t)) "installed carried wheels into /tmp/site"
      else
        record python-wheels failed $(($(date +%s) - t)) "pip install of carried wheels failed"
      fi
    else
      record python-wheels failed 0 "pydantic missing and no $CARRY/wheels"
    fi
  fi
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  local help
  if help="$(COLUMNS=200 timeout 60 "$PY" -m lalo_bench.cli loadtest --help 2>&1)"; then
    LOADTEST_OK=1
    grep -q -- '--no-track' <<<"$help" && LOADTEST_FLAGS+=(--no-track)
    grep -q -- '--ignore-eos' <<<"$help" && LOADTEST_FLAGS+=(--ignore-eos)
    grep -q -- '--warmup' <<<"$help" && LOADTEST_FLAGS+=(--warmup 2)
    # llama-server closes a streamed response's connection despite "Keep-Alive", and a client that
    # reuses it gets one failed request per success; keep such points running (errors stay counted)
    grep -q -- '--max-error-rate' <<<"$help" && LOADTEST_FLAGS+=(--max-error-rate 0.9)
    record loadtest-cli ok 0 "lalo_bench loadtest available; extra flags: ${LOADTEST_FLAGS[*]}"
  else
    record loadtest-cli failed 0 "python -m lalo_bench.cli loadtest --help failed: $(tail -n 3 <<<"$help" | tr '\n' ' ' | cut -c1-300); serving cells fall back to one smoke request"
  fi
}

# --------------------------------------------------------------------------------------- measure
bench_model() {
  local label="$1" file="$2" gb="$3"
  local raw="$RAW/llama-bench-$label.json"
  STEP_NOTE="-ngl 99 -p 512 -n 128 -r 3 -fa 0,1" STEP_DATA="{\"file\": \"$(basename "$file")\"}"
  STEP_OUT="$raw" STEP_ERR="$raw.err"
  if run_step "llama-bench/$label" $((90 + gb * 6)) $((20 + gb * 2)) \
    "$BIN/llama-bench" -m "$file" -ngl 99 -p 512 -n 128 -r 3 -fa 0,1 -o json -oe md; then
    grep '^|' "$raw.err" | sed 's/^/  /' || true
  else
    tail -n 20 "$raw.err" | sed 's/^/  llama-bench| /'
  fi
  # also a cut-off run: llama-bench flushes each finished test, merge-bench closes the array
  [[ -s "$raw" ]] && "$PY" "$CELLS" merge-bench --into "$OUT/llama-bench.json" "$raw" >/dev/null || true
}

SERVER_PID="" SMI_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [[ -n "$SMI_PID" ]]; then
    kill "$SMI_PID" 2>/dev/null || true
    wait "$SMI_PID" 2>/dev/null || true
    SMI_PID=""
  fi
}
trap 'stop_server; render; finish_log' EXIT
trap 'log "interrupted"; exit 130' INT TERM

serve_model() {
  local label="$1" file="$2" gb="$3"
  local need=$((30 + gb + 3 * (LOAD_SECONDS + 10)))
  local left
  left=$(remaining)
  if ((left < need)); then
    record "serve/$label" skipped 0 "time budget: ${left}s left, serving cell needs ~${need}s"
    return 0
  fi
  local port slog="$RAW/llama-server-$label.log" vram="$RAW/vram-$label.txt"
  port="$("$PY" "$CELLS" freeport)"
  local ctx=$((NP * 1024)) vram_before=null
  have_gpu && vram_before="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n 1 | tr -dc 0-9)"
  [[ -n "$vram_before" ]] || vram_before=null
  log "starting llama-server for $label on :$port (-np $NP -c $ctx)"
  setsid "$BIN/llama-server" -m "$file" -ngl 99 --host 127.0.0.1 --port "$port" -np "$NP" -c "$ctx" \
    --no-webui --alias "$label" --metrics >"$slog" 2>&1 &
  SERVER_PID=$!
  if have_gpu; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$vram" 2>/dev/null &
    SMI_PID=$!
  fi
  local t ready
  t=$(date +%s)
  if ! ready="$("$PY" "$CELLS" wait-http "http://127.0.0.1:$port/health" --timeout $((60 + gb * 3)) --pid "$SERVER_PID")"; then
    record "serve/$label" failed $(($(date +%s) - t)) "llama-server not ready: $ready"
    tail -n 30 "$slog" | sed 's/^/  server| /'
    stop_server
    return 0
  fi
  local startup=$(($(date +%s) - t))
  log "llama-server ready in ${startup}s"
  local base="http://127.0.0.1:$port/v1"
  STEP_OUT="$RAW/smoke-$label.json" STEP_NOTE="one /v1/chat/completions request"
  if run_step "smoke/$label" 60 10 "$PY" "$CELLS" smoke "$base" "$label" --max-tokens 16; then
    log "smoke: $(cut -c1-300 "$RAW/smoke-$label.json")"
  else
    tail -n 5 "$RAW/smoke-$label.json" | sed 's/^/  smoke| /'
  fi
  if ((LOADTEST_OK)); then
    local rep="$RAW/loadtest-$label.json"
    STEP_NOTE="--profile concurrent --concurrency $CONCURRENCY --max-seconds $LOAD_SECONDS --max-tokens 128 ${LOADTEST_FLAGS[*]}"
    local n_points
    n_points=$(($(tr -cd , <<<"$CONCURRENCY" | wc -c) + 1))
    if run_step "loadtest/$label" $((n_points * (LOAD_SECONDS + 20) + 40)) $((n_points * (LOAD_SECONDS + 5))) \
      "$PY" -m lalo_bench.cli loadtest --url "$base" --model "$label" --profile concurrent \
      --concurrency "$CONCURRENCY" --max-seconds "$LOAD_SECONDS" --max-tokens 128 \
      --output "$rep" "${LOADTEST_FLAGS[@]}"; then
      cp "$rep" "$OUT/loadtest-$label.json"
      local errs
      errs="$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join("%s:%dok/%derr" % (p["target"].get("concurrency"), p["requests"]["ok"], p["requests"]["errored"]) for p in r["points"]))' "$rep" 2>/dev/null || true)"
      if [[ -n "$errs" ]] && grep -qv '/0err' <<<"$(tr ' ' '\n' <<<"$errs")"; then
        record "loadtest-errors/$label" info 0 "errored requests per point (conc:ok/err): $errs — see log; a known cause is the client reusing a connection llama-server closed"
      fi
    else
      [[ -f "$rep" ]] && cp "$rep" "$OUT/loadtest-$label.json"
      tail -n 20 "$slog" | sed 's/^/  server| /'
    fi
    (cd "$RAW" && tar -czf "$OUT/loadtest-records.tar.gz" loadtest-*.csv loadtest-*.requests.jsonl 2>/dev/null) || true
  else
    record "loadtest/$label" skipped 0 "lalo-bench loadtest unavailable (see loadtest-cli): smoke request only"
  fi
  local peak=null
  if [[ -n "$SMI_PID" ]]; then peak="$("$PY" "$CELLS" peak "$vram")"; fi
  stop_server
  record "serve/$label" ok $(($(date +%s) - t)) "llama-server -np $NP -c $ctx" \
    "{\"startup_s\": $startup, \"peak_vram_mib\": $peak, \"vram_before_mib\": $vram_before, \"port\": $port}"
}

# vLLM: benchmarks/gpu/vllm_cells.sh (vllm_unpack, vllm_cells)
# shellcheck source=gpu/vllm_cells.sh
source "$REPO/benchmarks/gpu/vllm_cells.sh"

do_measure() {
  decide_cuda || return 1
  cmake_config
  if ! built; then
    log "binaries missing: building first"
    do_build || { record measure failed 0 "no llama.cpp binaries (build failed or did not finish)"; return 1; }
  fi
  if [[ "$BUILD_KIND" == cpu ]]; then
    record cpu-only info 0 "CPU-only build: the llama.cpp numbers of this run are CPU numbers"
  fi
  python_env
  local p
  IFS=, read -r -a PRESETS <<<"$MODELS"
  # every model's llama-bench first (short, the core numbers), then the serving cells
  local labels=() files=() gbs=() i
  for p in "${PRESETS[@]}"; do
    resolve_model "$p" || continue
    labels+=("$MODEL_LABEL") files+=("$MODEL_FILE") gbs+=("$(model_gb "$p")")
  done
  for i in "${!labels[@]}"; do
    log "=== llama-bench ${labels[$i]} ($(du -h "${files[$i]}" | cut -f1)) ==="
    bench_model "${labels[$i]}" "${files[$i]}" "${gbs[$i]}" || true
  done
  if [[ "${GPU_CELLS_SERVE:-1}" == 1 ]]; then
    for i in "${!labels[@]}"; do
      log "=== llama-server ${labels[$i]} ==="
      serve_model "${labels[$i]}" "${files[$i]}" "${gbs[$i]}" || true
    done
  else
    record llama-server skipped 0 "GPU_CELLS_SERVE=0: llama-bench only"
  fi
  [[ "${GPU_CELLS_VLLM:-1}" == 1 ]] && vllm_cells
}

# ------------------------------------------------------------------------------------------- main
log "gpu_cells.sh $PHASE — repo $REPO, work $WORK, out $OUT, budget ${BUDGET}s, models $MODELS"
if [[ "$PHASE" == build || "$PHASE" == all ]]; then
  : >"$STEPS" # a build starts a new record; measure appends to it
fi
CUR_PHASE="$PHASE"
case "$PHASE" in
  status)
    render
    cat "$OUT/summary.md"
    exit 0
    ;;
esac
env_step
if [[ "$PHASE" == build || "$PHASE" == all ]]; then
  CUR_PHASE=build
  # models persist in $WORK too: make them now while the budget allows (measure skips them then)
  do_build || true
  make_models
fi
if [[ "$PHASE" == measure || "$PHASE" == all ]]; then
  CUR_PHASE=measure
  do_measure || true
fi
if [[ "$PHASE" == vllm-unpack || "$PHASE" == vllm ]]; then
  CUR_PHASE=vllm
  vllm_unpack || true
  [[ "$PHASE" == vllm ]] && vllm_cells
fi
render
log "done in $(elapsed)s; results in $OUT:"
ls -la "$OUT" | sed 's/^/  /'
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print("status:", "OK" if s["ok"] else "FAILED steps: " + "; ".join(s["failed_steps"]))' "$OUT/status.json" || true
