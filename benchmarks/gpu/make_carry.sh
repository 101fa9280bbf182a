#!/usr/bin/env bash
# Build .gpu-carry/: everything benchmarks/gpu_cells.sh needs on a GPU machine with NO network.
#
#   .gpu-carry/llama.cpp-src.tar.gz   trimmed llama.cpp source (vendored in llama-cpp-python==0.3.36):
#                                     what building llama-bench, llama-server and llama-quantize with CUDA
#                                     needs, plus gguf-py and two vocab-only GGUFs (Llama-3 BPE, Qwen2)
#   .gpu-carry/wheels/*.whl           pydantic & co. for CPython 3.12 manylinux x86_64, at the versions
#                                     this repo's .venv has (the GPU image lacks pydantic)
#   .gpu-carry/tokenizers/*.gguf      tokenizer-only GGUF cut from SmolLM2-135M (the fallback vocab)
#   .gpu-carry/MANIFEST.txt           what is in it, sizes and sha256
#
# Run from anywhere, on the development machine (needs PyPI for the wheels and, if the sdist is not
# unpacked yet, for llama-cpp-python's sdist). Idempotent; writes only under .gpu-carry/ and /tmp.
# Also adds /.gpu-carry/ and /.gpu-build/ to .git/info/exclude (never to .gitignore).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARRY="$REPO/.gpu-carry"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
SD="${SD:-/tmp/sd}"
SRC="${LLAMA_SRC:-$SD/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp}"
PY="${PY:-$REPO/.venv/bin/python}"   # only to read versions and to run the tokenizer extractor (numpy)
LIMIT_MIB="${CARRY_LIMIT_MIB:-60}"
SMOLLM2_GGUF="${SMOLLM2_GGUF:-${LALO_HOME:-$HOME/.cache/lalo-bench}/models/smollm2-135m-instruct/q4_1.gguf}"

log() { printf '[%s] make_carry: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- 0. keep the carry and build folders out of git, locally only -----------------------------
EXCLUDE="$(git -C "$REPO" rev-parse --git-path info/exclude)"
case "$EXCLUDE" in /*) ;; *) EXCLUDE="$REPO/$EXCLUDE" ;; esac
mkdir -p "$(dirname "$EXCLUDE")"
for pat in /.gpu-carry/ /.gpu-build/; do
  grep -qxF "$pat" "$EXCLUDE" 2>/dev/null || echo "$pat" >>"$EXCLUDE"
done

# --- 1. llama.cpp source --------------------------------------------------------------------
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
  log "llama.cpp source not at $SRC: fetching the llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sdist"
  mkdir -p "$SD"
  python3 -m pip download --no-binary :all: --no-deps -d "$SD" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
  tar -xzf "$SD/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$SD"
fi
[[ -f "$SRC/CMakeLists.txt" ]] || { log "no llama.cpp source at $SRC"; exit 1; }

mkdir -p "$CARRY/wheels" "$CARRY/tokenizers"
STAGE="$(mktemp -d /tmp/gpu-carry-stage.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT
DST="$STAGE/llama.cpp"
mkdir -p "$DST"

# Keep-list at the top level: the build (CMake tree, sources, headers, vendored libs), gguf-py for the
# synthetic-model writer, licenses. Everything else (docs, media, tests, examples, benches, pocs, ci,
# python converters, app/, skills/, .github, ...) is left behind.
for d in CMakeLists.txt LICENSE cmake common ggml gguf-py include licenses src tools vendor scripts; do
  cp -a "$SRC/$d" "$DST/"
done
# Other GPU / accelerator backends: not built (GGML_<X> is OFF), so their sources are not needed.
for b in sycl vulkan opencl metal cann musa hip webgpu openvino hexagon et zdnn zendnn virtgpu blas rpc; do
  rm -rf "$DST/ggml/src/ggml-$b"
done
# scripts/: only the UI-asset step the server's CMake runs (it embeds nothing without network).
find "$DST/scripts" -mindepth 1 -maxdepth 1 ! -name ui-assets.cmake -exec rm -rf {} +
# tools/: CMake adds every tool subdirectory, so keep their (small) sources; drop the web UI's
# front-end tree (the build embeds no UI offline) and media/test files.
find "$DST/tools/ui" -mindepth 1 -maxdepth 1 ! -name CMakeLists.txt ! -name 'ui.*.in' ! -name sources.cmake -exec rm -rf {} +
rm -rf "$DST/tools/mtmd/tests" "$DST/tools/mtmd"/test-* "$DST/tools/server/tests" "$DST/tools/server/public"* \
       "$DST/tools/server/themes" "$DST/tools/server/bench" "$DST/gguf-py/tests" "$DST/gguf-py/gguf/scripts"
find "$DST" \( -name '*.md' -o -name '*.png' -o -name '*.jpg' -o -name '*.jpeg' -o -name '*.gif' -o -name '*.mp3' -o -name '*.mp4' \) \
  ! -path '*/licenses/*' -delete
# Two vocab-only GGUFs (no weights): the real Llama-3 and Qwen2 tokenizers for the synthetic models.
mkdir -p "$DST/models"
cp -a "$SRC/models/ggml-vocab-llama-bpe.gguf" "$SRC/models/ggml-vocab-qwen2.gguf" "$DST/models/"
{
  echo "llama.cpp as vendored in llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION (sdist from PyPI), trimmed by"
  echo "benchmarks/gpu/make_carry.sh for a CUDA build of llama-bench, llama-server and llama-quantize."
} >"$DST/LALO_CARRY_README.txt"

log "packing $(du -sh "$DST" | cut -f1) of source"
rm -f "$CARRY/llama.cpp-src.tar.gz"
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -cf - llama.cpp | gzip -9 >"$CARRY/llama.cpp-src.tar.gz"

# --- 2. wheels (CPython 3.12, manylinux x86_64) at this repo's .venv versions -------------------
# The GPU image has typer/rich/click/pyyaml/pandas/psutil/requests/httpx/aiohttp but no pydantic.
WHEEL_DISTS=(pydantic pydantic_core annotated_types typing_inspection typing_extensions)
SPECS=()
for dist in "${WHEEL_DISTS[@]}"; do
  ver="$("$PY" -c "import importlib.metadata as m,sys; print(m.version(sys.argv[1]))" "$dist")"
  SPECS+=("${dist//_/-}==$ver")
done
log "wheels: ${SPECS[*]}"
rm -f "$CARRY/wheels/"*.whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  --platform any -d "$CARRY/wheels" "${SPECS[@]}"

# --- 3. tokenizer-only GGUF cut from SmolLM2-135M (fallback vocab, 49152 tokens) ----------------
if [[ -f "$SMOLLM2_GGUF" ]]; then
  "$PY" "$REPO/benchmarks/gpu/synth_gguf.py" extract-tokenizer --src "$SMOLLM2_GGUF" --out "$CARRY/tokenizers/smollm2-135m-tokenizer.gguf"
else
  log "WARNING: $SMOLLM2_GGUF missing (lalo-bench models fetch smollm2-135m-instruct --quant q4_1); no fallback vocab carried"
fi

# --- 4. manifest and size check -----------------------------------------------------------------
(
  cd "$CARRY"
  echo "# .gpu-carry manifest, made $(date -u +%FT%TZ) by benchmarks/gpu/make_carry.sh"
  find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort | while read -r f; do
    printf '%10d  %s  %s\n' "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -c1-16)" "$f"
  done
) >"$CARRY/MANIFEST.txt"
total_kib="$(du -sk "$CARRY" | cut -f1)"
cat "$CARRY/MANIFEST.txt" >&2
log "total .gpu-carry: $((total_kib / 1024)) MiB ($total_kib KiB); limit ${LIMIT_MIB} MiB"
if ((total_kib > LIMIT_MIB * 1024)); then
  log "ERROR: .gpu-carry is over ${LIMIT_MIB} MiB"
  exit 1
fi
