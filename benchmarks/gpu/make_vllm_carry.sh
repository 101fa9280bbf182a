#!/usr/bin/env bash
# Build .vllm-carry/: vLLM (CUDA build) for a GPU machine with NO network, in two halves that each fit one
# device call's 64 MiB beside the repo and .gpu-carry/.
#
#   .vllm-carry/a/deps/*.whl        vLLM's Python needs that the GPU image lacks (CPython 3.12, manylinux x86_64),
#                                   the set that `import vllm.entrypoints.openai.api_server` and the V1 engine,
#                                   worker, Llama/Qwen2 models and Triton attention load (found by importing them
#                                   in a scratch venv and mapping sys.modules to distributions)
#   .vllm-carry/a/vllm-py.tar.xz    the vllm==0.25.0 wheel without its heavy optional kernels: both FlashAttention
#                                   builds (the cells use the Triton attention backend; the import-time check for
#                                   them is relaxed), the MoE kernels, the Rust front end, third_party kernel
#                                   sources; and without _C (next line)
#   .vllm-carry/a/hf.tar.xz         config.json + tokenizer per preset (benchmarks/gpu/hf_shapes.py): vLLM's dummy
#                                   loader makes the weights on the GPU
#   .vllm-carry/{a,b}/C.part*       vllm/_C_stable_libtorch.abi3.so (required: vllm/platforms/cuda.py imports
#                                   it), xz-compressed and split across the halves
#   .vllm-carry/MANIFEST.txt        sizes and sha256 of every file
#
# vllm 0.25.0 is the newest release built against torch 2.11.0 + CUDA 13, what the GPU image holds (0.27 and
# later need torch 2.13+, which cannot travel: several GB). Run on the development machine (needs PyPI):
#   benchmarks/gpu/make_vllm_carry.sh            # then see benchmarks/gpu/README.md for the two device calls
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARRY="$REPO/.vllm-carry"
VLLM_VERSION="${VLLM_VERSION:-0.25.0}"
DL="${VLLM_CARRY_DL:-/tmp/vllm-carry-dl}"
PART1_MB="${VLLM_CARRY_PART1_MB:-8}"
VOCAB_DIR="${VOCAB_DIR:-/tmp/sd/llama_cpp_python-0.3.36/vendor/llama.cpp/models}"
VLLM_PY="${VLLM_PY:-$REPO/.venv-vllm/bin/python}" # has transformers, for the tokenizer conversion
log() { printf '[%s] make_vllm_carry: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

EXCLUDE="$(git -C "$REPO" rev-parse --git-path info/exclude)"
case "$EXCLUDE" in /*) ;; *) EXCLUDE="$REPO/$EXCLUDE" ;; esac
grep -qxF /.vllm-carry/ "$EXCLUDE" 2>/dev/null || echo /.vllm-carry/ >>"$EXCLUDE"

PLATFORMS=()
for p in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_24 \
  manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do PLATFORMS+=(--platform "${p}_x86_64"); done
PIP=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}")

# Pinned to what vllm 0.25.0 resolved to on 2026-11-26, with two changes the H100 run showed: openai kept at 2.x
# (3.x imports httpx2, which the image lacks) and apache-tvm-ffi 0.1.15 (xgrammar 0.2.8 calls its newer API); the GPU image already has torch, triton, transformers,
# tokenizers, numpy, aiohttp, huggingface-hub, safetensors, psutil, regex, tiktoken, sentencepiece and the rest.
DEPS=(
  annotated-types==0.8.0 apache-tvm-ffi==0.1.15.post2 blake3==1.0.11 cachetools==8.0.2 cbor2==6.3.0
  compressed-tensors==0.17.0 depyf==0.20.0 astor==0.8.1 dill==0.4.1 diskcache==5.6.3 fastapi==0.136.3 ijson==3.6.0
  jmespath==1.1.0 llguidance==1.7.6 model-hosting-container-standards==0.1.16 msgspec==0.22.0 openai==2.54.0
  jiter==0.19.0 distro==1.9.0 sniffio==1.3.1 openai-harmony==0.0.8 partial-json-parser==0.2.1.1.post7
  prometheus-fastapi-instrumentator==8.1.0 pybase64==1.5.1 pydantic==2.14.4 pydantic_core==2.50.5
  pydantic-extra-types==2.11.1 python-multipart==0.0.34 python-json-logger==4.2.0 pyzmq==27.3.0
  setproctitle==1.3.8 starlette==1.10.0 typing-inspection==0.4.5 uvicorn==0.54.0 httptools==0.9.0
  watchfiles==1.3.0 xgrammar==0.2.8 sse-starlette==3.7.0
)

rm -rf "$CARRY/a" "$CARRY/b"
mkdir -p "$CARRY/a/deps" "$CARRY/b" "$DL"

log "vllm==$VLLM_VERSION wheel"
compgen -G "$DL/vllm-$VLLM_VERSION-*.whl" >/dev/null || "${PIP[@]}" -d "$DL" "vllm==$VLLM_VERSION"
WHEEL="$(ls "$DL"/vllm-"$VLLM_VERSION"-*.whl | head -n 1)"

log "dependency wheels (${#DEPS[@]})"
"${PIP[@]}" -d "$CARRY/a/deps" "${DEPS[@]}"

STAGE="$(mktemp -d /tmp/vllm-carry-stage.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT
log "trimming the wheel"
(cd "$STAGE" && python3 -m zipfile -e "$WHEEL" .)
# third_party: only pynvml.py is needed (platform detection); the rest is kernel sources and headers
rm -rf "$STAGE"/vllm/vllm_flash_attn/_vllm_fa*_C.abi3.so "$STAGE"/vllm/vllm-rs "$STAGE"/vllm/_moe_C_stable_libtorch.abi3.so
find "$STAGE/vllm/third_party" -mindepth 1 -maxdepth 1 ! -name __init__.py ! -name pynvml.py -exec rm -rf {} +
# vllm_flash_attn refuses to import without its kernels, and model code imports it even when another attention
# backend runs; the cells use Triton attention, so relax only that import-time check (and say so in the cells)
sed -i 's/^if not (FA2_AVAILABLE or FA3_AVAILABLE):$/if False:  # lalo-bench carry: FA kernels left out, Triton attention/' \
  "$STAGE/vllm/vllm_flash_attn/__init__.py"
grep -q '^if False:  # lalo-bench carry' "$STAGE/vllm/vllm_flash_attn/__init__.py" ||
  { log "vllm_flash_attn/__init__.py changed upstream: the import-time check was not found"; exit 1; }
mv "$STAGE/vllm/_C_stable_libtorch.abi3.so" "$STAGE/C.so"
tar -C "$STAGE" -cf - vllm "vllm-$VLLM_VERSION.dist-info" | xz -T0 -6 >"$CARRY/a/vllm-py.tar.xz"

log "compressing _C_stable_libtorch (the long step)"
xz -T0 -9 -c "$STAGE/C.so" >"$STAGE/C.so.xz"
head -c "$((PART1_MB * 1024 * 1024))" "$STAGE/C.so.xz" >"$CARRY/a/C.part1"
tail -c "+$((PART1_MB * 1024 * 1024 + 1))" "$STAGE/C.so.xz" >"$CARRY/b/C.part2"
sha256sum "$STAGE/C.so.xz" | cut -d' ' -f1 >"$CARRY/a/C.xz.sha256"

log "model folders (config + tokenizer)"
"$VLLM_PY" "$REPO/benchmarks/gpu/hf_shapes.py" --vocab-dir "$VOCAB_DIR" --out "$STAGE/hf" 2>&1 | grep -v -i warn || true
tar -C "$STAGE" -cf - hf | xz -T0 -6 >"$CARRY/a/hf.tar.xz"

{
  echo "# .vllm-carry for vllm==$VLLM_VERSION, made $(date -u +%FT%TZ) by benchmarks/gpu/make_vllm_carry.sh"
  (cd "$CARRY" && find a b -type f -printf '%s %p\n' | sort -k2 | while read -r size path; do
    echo "$size $(sha256sum "$path" | cut -c1-16) $path"
  done)
  echo "a total: $(du -sb "$CARRY/a" | cut -f1) bytes; b total: $(du -sb "$CARRY/b" | cut -f1) bytes"
} >"$CARRY/MANIFEST.txt"
tail -n 1 "$CARRY/MANIFEST.txt" >&2
