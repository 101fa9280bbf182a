# vLLM cells for benchmarks/gpu_cells.sh (sourced by it; uses its log/record/run_step/stop_server helpers).
#
# vLLM comes from, in order: an importable `vllm` in $PY; $VLLM_SITE (default /tmp/vsite) when a carry was
# unpacked there (benchmarks/gpu/make_vllm_carry.sh, `gpu_cells.sh vllm-unpack`); a venv made by pip when the
# network allows and GPU_CELLS_VLLM_INSTALL=1. Models are config + tokenizer folders (benchmarks/gpu/hf_shapes.py)
# served with --load-format dummy: random bf16 weights made on the GPU, the real model's shapes, so the cells
# are labelled synthetic-<preset>-bf16. Each preset is measured at batch 1 with two prompt lengths (decode speed,
# TTFT) and at one higher concurrency; the reports go to $OUT/vllm-loadtest.json for the calibration.
#
# Knobs: GPU_CELLS_VLLM_PRESETS (default llama-3.1-8b,qwen2.5-1.5b), GPU_CELLS_VLLM_PROMPTS (default 512,2048),
# GPU_CELLS_VLLM_CONCURRENCY (extra point, default 16), GPU_CELLS_VLLM_SECONDS (per point, default 15),
# GPU_CELLS_VLLM_ATTENTION (default TRITON_ATTN: the carry leaves the FlashAttention kernels behind),
# GPU_CELLS_VLLM_HF (model folders, default /tmp/vhf/hf), GPU_CELLS_VLLM_ARGS (server flags; see below).

VLLM_SITE="${VLLM_SITE:-/tmp/vsite}"
VLLM_CARRY="${VLLM_CARRY:-$REPO/.vllm-carry}"
VLLM_HF="${GPU_CELLS_VLLM_HF:-/tmp/vhf/hf}"
VLLM_PRESETS="${GPU_CELLS_VLLM_PRESETS:-llama-3.1-8b,qwen2.5-1.5b}"
VLLM_PROMPTS="${GPU_CELLS_VLLM_PROMPTS:-512,2048}"
VLLM_HIGH_CONC="${GPU_CELLS_VLLM_CONCURRENCY:-16}"
VLLM_SECONDS="${GPU_CELLS_VLLM_SECONDS:-15}"
VLLM_ATTENTION="${GPU_CELLS_VLLM_ATTENTION-TRITON_ATTN}"
VLLM_RAW="$RAW/vllm"
# server flags besides model/port (GPU_CELLS_VLLM_ARGS replaces them, e.g. for a CPU dry run)
read -r -a VLLM_ARGS <<<"${GPU_CELLS_VLLM_ARGS:---dtype bfloat16 --max-model-len 4096 --gpu-memory-utilization 0.85 --max-num-seqs 64 --max-cudagraph-capture-size 64}"
[[ -n "$VLLM_ATTENTION" ]] && VLLM_ARGS+=(--attention-backend "$VLLM_ATTENTION")

# Unpack the carried halves: a/ (deps, trimmed wheel, model folders, first part of _C) whenever it is here,
# then b/ (rest of _C) once both parts are on the machine. Safe to call in both device calls.
vllm_unpack() {
  local t
  t=$(date +%s)
  if [[ -d "$VLLM_CARRY/a" ]] && ! cmp -s "$VLLM_CARRY/a/C.part1" "$VLLM_SITE/C.part1"; then
    mkdir -p "$VLLM_SITE" "$(dirname "$VLLM_HF")"
    if ! timeout 180 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$VLLM_SITE" "$VLLM_CARRY"/a/deps/*.whl; then
      record vllm-unpack failed $(($(date +%s) - t)) "pip install of the carried dependency wheels failed"
      return 1
    fi
    tar -xJf "$VLLM_CARRY/a/vllm-py.tar.xz" -C "$VLLM_SITE"
    tar -xJf "$VLLM_CARRY/a/hf.tar.xz" -C "$(dirname "$VLLM_HF")"
    cp "$VLLM_CARRY/a/C.part1" "$VLLM_CARRY/a/C.xz.sha256" "$VLLM_SITE/"
  fi
  if [[ -f "$VLLM_CARRY/b/C.part2" && -f "$VLLM_SITE/C.part1" ]]; then
    local sum
    sum="$(cat "$VLLM_SITE/C.part1" "$VLLM_CARRY/b/C.part2" | sha256sum | cut -d' ' -f1)"
    if [[ "$sum" != "$(cat "$VLLM_SITE/C.xz.sha256")" ]]; then
      record vllm-unpack failed 0 "_C parts do not match their sha256 (a/ and b/ from different make_vllm_carry runs?)"
      return 1
    fi
    cat "$VLLM_SITE/C.part1" "$VLLM_CARRY/b/C.part2" | xz -d >"$VLLM_SITE/vllm/_C_stable_libtorch.abi3.so"
  fi
  local have="no _C yet (needs the b/ half)"
  [[ -f "$VLLM_SITE/vllm/_C_stable_libtorch.abi3.so" ]] && have="complete"
  record vllm-unpack ok $(($(date +%s) - t)) "vLLM carry unpacked into $VLLM_SITE: $have"
}

# sets VLLM_CMD (python + path) when a usable vLLM is found
VLLM_CMD=()
vllm_find() {
  if timeout 120 "$PY" -c 'import vllm' 2>/dev/null; then
    VLLM_CMD=(env "$PY")
  elif [[ -f "$VLLM_SITE/vllm/_C_stable_libtorch.abi3.so" ]]; then
    VLLM_CMD=(env "PYTHONPATH=$VLLM_SITE" "$PY")
  elif [[ -x "$WORK/venv-vllm/bin/python" ]]; then
    VLLM_CMD=(env "$WORK/venv-vllm/bin/python")
  elif [[ "${GPU_CELLS_VLLM_INSTALL:-0}" == 1 ]] &&
    timeout 8 "$PY" -c 'import socket; socket.create_connection(("pypi.org", 443), 5)' 2>/dev/null; then
    STEP_NOTE="pip install vllm into $WORK/venv-vllm"
    run_step vllm-install 600 300 bash -c "'$PY' -m venv '$WORK/venv-vllm' && '$WORK/venv-vllm/bin/pip' install -q vllm" ||
      return 1
    VLLM_CMD=(env "$WORK/venv-vllm/bin/python")
  else
    record vllm skipped 0 "vllm: not measured — not importable, no complete carry in $VLLM_SITE, no network (or GPU_CELLS_VLLM_INSTALL unset)"
    return 1
  fi
  local ver
  if ! ver="$(timeout 180 "${VLLM_CMD[@]}" -c 'import vllm, torch; print(vllm.__version__, "torch", torch.__version__)' 2>&1 | tail -n 1)"; then
    record vllm-import failed 0 "import vllm failed: $ver"
    return 1
  fi
  record vllm-version info 0 "vllm $ver"
}

# one lalo-bench loadtest point against the running server; report to $VLLM_RAW/<name>.json
vllm_point() {
  local base="$1" label="$2" name="$3" prompt="$4" conc="$5"
  STEP_NOTE="--api completions --temperature 1 --prompt-tokens $prompt --concurrency $conc --max-seconds $VLLM_SECONDS"
  run_step "loadtest/$name" $((VLLM_SECONDS + 60)) $((VLLM_SECONDS + 10)) \
    "$PY" -m lalo_bench.cli loadtest --url "$base" --model "$label" --profile concurrent --concurrency "$conc" \
    --prompt-tokens "$prompt" --max-tokens 128 --api completions --temperature 1 --max-seconds "$VLLM_SECONDS" \
    --output "$VLLM_RAW/$name.json" "${LOADTEST_FLAGS[@]}" || true
  vllm_collect
}

# $OUT/vllm-loadtest.json = {"<preset>-p<prompt>-c<conc>": LoadReport, ...}, rewritten after every point so a
# call cut short still returns what it measured
vllm_collect() {
  "$PY" - "$VLLM_RAW" "$OUT/vllm-loadtest.json" <<'PYEOF' || true
import json, sys
from pathlib import Path
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
reports = {p.stem: json.loads(p.read_text()) for p in sorted(raw.glob("*.json"))}
if reports:
    out.write_text(json.dumps(reports, indent=1))
PYEOF
}

vllm_preset() {
  local preset="$1"
  local folder="$VLLM_HF/$preset" label="synthetic-$preset-bf16"
  if [[ ! -f "$folder/config.json" ]]; then
    record "vllm/$label" failed 0 "no model folder $folder (make it with benchmarks/gpu/hf_shapes.py)"
    return 0
  fi
  local left
  left=$(remaining)
  if ((left < 150)); then
    record "vllm/$label" skipped 0 "time budget: ${left}s left, a vLLM cell needs ~150 s+"
    return 0
  fi
  local port slog="$VLLM_RAW/server-$preset.log" vram="$VLLM_RAW/vram-$preset.txt"
  port="$("$PY" "$CELLS" freeport)"
  log "starting vLLM for $label on :$port (dummy weights, attention $VLLM_ATTENTION)"
  setsid "${VLLM_CMD[@]}" -m vllm.entrypoints.openai.api_server --model "$folder" --served-model-name "$label" \
    --load-format dummy "${VLLM_ARGS[@]}" --host 127.0.0.1 --port "$port" >"$slog" 2>&1 &
  SERVER_PID=$!
  if have_gpu; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$vram" 2>/dev/null &
    SMI_PID=$!
  fi
  local t ready
  t=$(date +%s)
  if ! ready="$("$PY" "$CELLS" wait-http "http://127.0.0.1:$port/health" --timeout $((left - 60 < 300 ? left - 60 : 300)) --pid "$SERVER_PID")"; then
    record "vllm/$label" failed $(($(date +%s) - t)) "vLLM not ready: $ready"
    grep -v -E '^\s*$' "$slog" | tail -n 40 | sed 's/^/  vllm| /'
    stop_server
    return 0
  fi
  local startup=$(($(date +%s) - t))
  log "vLLM ready in ${startup}s: $(grep -E -o 'torch.compile takes [0-9.]+ s|Graph capturing finished in [0-9]+ secs|Available KV cache memory: [0-9.]+ GiB' "$slog" | tr '\n' ';')"
  local base="http://127.0.0.1:$port/v1" p
  IFS=, read -r -a prompts <<<"$VLLM_PROMPTS"
  for p in "${prompts[@]}"; do vllm_point "$base" "$label" "$preset-p$p-c1" "$p" 1; done
  [[ -n "$VLLM_HIGH_CONC" ]] && vllm_point "$base" "$label" "$preset-p${prompts[0]}-c$VLLM_HIGH_CONC" "${prompts[0]}" "$VLLM_HIGH_CONC"
  local peak=null
  if [[ -n "$SMI_PID" ]]; then peak="$("$PY" "$CELLS" peak "$vram")"; fi
  stop_server
  record "vllm/$label" ok $(($(date +%s) - t)) "vLLM, dummy weights, ${VLLM_ARGS[*]}" \
    "{\"startup_s\": $startup, \"peak_vram_mib\": $peak, \"port\": $port}"
}

vllm_cells() {
  mkdir -p "$VLLM_RAW"
  vllm_find || return 0
  ((LOADTEST_OK)) || python_env
  # the FlashInfer sampler needs flashinfer, which the carry leaves out: PyTorch's sampler instead
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_USE_FLASHINFER_SAMPLER=0
  local p
  IFS=, read -r -a vps <<<"$VLLM_PRESETS"
  for p in "${vps[@]}"; do vllm_preset "$p"; done
  for f in "$VLLM_RAW"/server-*.log; do
    [[ -f "$f" ]] && cp "$f" "$RAW/" && grep -E 'WARNING|ERROR|Available KV|compile takes|Graph capturing' "$f" | tail -n 12 | sed "s#^#  $(basename "$f"): #"
  done
  return 0
}
