"""Controlled CPU cells for the roofline calibration: fixed prompts, fresh KV cache, repeats, raw numbers kept.

The sweep's CPU cells (``cpu_cells.json``) come from suite runs whose prompts vary from item to item and whose
background load was not recorded. This measures every GGUF in the local store the way llama-bench does, through
the same llama-cpp-python build the ``llamacpp`` backend uses (same ``Llama(...)`` settings: ``n_ctx`` 2048,
``n_threads`` = ``n_threads_batch``, default batch sizes, no flash attention):

* rounds: each repeat is a round over every model x quant (the order reversed on odd rounds), each loading the
  GGUF afresh and warming up with one untimed short prompt and a few decode steps (pages the mmap'd weights in).
  The VM's speed drifts over minutes, so spreading a cell's repeats over the whole run keeps one slow spell
  from moving all of them;
* per round and prompt length ``p``: clear the KV cache (``reset``), time ``eval`` of exactly ``p`` tokens
  (prefill), then the greedy sampling of the first token (TTFT = prefill + that sample, what a stream delivers
  first), then ``gen`` batch-1 decode steps (``eval`` of one token + its sample each);
* contention: the VM is shared, and llama.cpp's two threads on two cores stall badly when another process takes
  one of them. Each attempt records the CPU time other processes (and the hypervisor, as steal) took while it
  ran (``/proc/stat`` minus this process); one where they averaged over ``MAX_FOREIGN_CORES`` is kept in the raw
  data but marked ``clean: false`` and retried (up to ``MAX_ATTEMPTS_PER_REPEAT`` attempts per round). Before
  each attempt the script waits (up to ``MAX_IDLE_WAIT_S``) for the other processes to leave the cores. Medians
  are over clean repeats only (over all, if none was clean: ``clean_repeats`` 0 says so);
* the STREAM triad (``stream.measure_triad``) before and after the models, in the same run.

Each cell (model x quant x prompt length) keeps every attempt's seconds; the medians over repeats are what the
calibration reads. The weight mix of each file (share of matmul weights per ggml type, read from the GGUF
header) is recorded, because CPU prefill speed depends on the kernel of the type. The prompt is the start of the
shipped catalog YAML, tokenized by each model and cut to ``p`` tokens (speed of a dense model does not depend on
the text).

    .venv/bin/python benchmarks/cpu_cells_bench.py            # every model x quant in the store, ~10 min
    .venv/bin/python benchmarks/cpu_cells_bench.py --only smollm2-135m-instruct:q8_0 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from lalo_bench.config import load_catalog
from lalo_bench.hardware.calibration import CPU_BENCH_CELLS
from lalo_bench.hardware.stream import measure_triad
from lalo_bench.models import store

ROOT = Path(__file__).resolve().parent.parent
PROMPT_SOURCE = ROOT / "lalo_bench" / "catalog" / "default.yaml"
N_CTX = 2048  # the llamacpp backend's default context window
WARMUP_PROMPT, WARMUP_STEPS = 32, 4
MAX_FOREIGN_CORES = 0.05  # a repeat during which other processes used more CPU than this is not kept
MAX_ATTEMPTS_PER_REPEAT = 4
IDLE_PROBE_S, MAX_IDLE_WAIT_S = 0.5, 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ggml type ids (ggml.h) -> names, for the weight mix of a file; unknown ids are kept as numbers
GGML_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 10: "q2_k", 11: "q3_k"}
GGML_TYPES |= {12: "q4_k", 13: "q5_k", 14: "q6_k", 16: "iq2_xxs", 20: "iq4_nl", 23: "iq4_xs", 30: "bf16"}
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def _read(f: BinaryIO, fmt: str) -> Any:
    return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]


def _read_str(f: BinaryIO) -> str:
    return f.read(_read(f, "Q")).decode("utf-8", errors="replace")


def _skip_value(f: BinaryIO, vtype: int) -> None:
    if vtype == 8:
        _read_str(f)
    elif vtype == 9:
        etype, n = _read(f, "I"), _read(f, "Q")
        if etype in (8, 9):
            for _ in range(n):
                _skip_value(f, etype)
        else:
            f.seek(struct.calcsize(_SCALAR[etype]) * n, os.SEEK_CUR)
    else:
        _read(f, _SCALAR[vtype])


def weight_mix(path: Path) -> dict[str, float]:
    """Share of the 2-D weight elements per ggml type, token embedding (a row lookup, not a matmul) left out."""
    counts: Counter[str] = Counter()
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _read(f, "I")  # version
        n_tensors, n_kv = _read(f, "Q"), _read(f, "Q")
        for _ in range(n_kv):
            _read_str(f)
            _skip_value(f, _read(f, "I"))
        for _ in range(n_tensors):
            name = _read_str(f)
            dims = [_read(f, "Q") for _ in range(_read(f, "I"))]
            gtype = _read(f, "I")
            _read(f, "Q")  # offset
            if len(dims) == 2 and not name.startswith("token_embd"):
                counts[GGML_TYPES.get(gtype, str(gtype))] += dims[0] * dims[1]
    total = sum(counts.values())
    return {k: round(v / total, 3) for k, v in counts.most_common()}


def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, steal included; ticks of this process) from /proc."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return user + nice + system + irq + softirq + steal, int(own[11]) + int(own[12])


def _foreign_cores(before: tuple[int, int], wall_s: float) -> float:
    """Mean number of cores that something other than this process (or the hypervisor) took over ``wall_s``."""
    busy, own = _cpu_ticks()
    return max(0.0, ((busy - before[0]) - (own - before[1])) / CLK_TCK / wall_s)


def _wait_for_idle() -> float:
    """Wait (at most ``MAX_IDLE_WAIT_S``) until other processes leave the cores idle; returns seconds waited."""
    waited = 0.0
    while waited < MAX_IDLE_WAIT_S:
        ticks = _cpu_ticks()
        time.sleep(IDLE_PROBE_S)
        waited += IDLE_PROBE_S
        if _foreign_cores(ticks, IDLE_PROBE_S) <= MAX_FOREIGN_CORES:
            break
    return waited


def _measure(llm: Any, tokens: list[int], p: int, gen: int) -> dict[str, Any]:
    """One timed request: prefill of ``p`` tokens on an empty KV cache, first token, ``gen`` decode steps."""
    _wait_for_idle()
    llm.reset()  # n_tokens = 0: the next eval removes every cached cell first (fresh KV cache)
    ticks = _cpu_ticks()
    start = time.perf_counter()
    llm.eval(tokens[:p])
    prefilled = time.perf_counter()
    token = llm.sample(temp=0.0)
    first = time.perf_counter()
    steps = []
    for _ in range(gen):
        s = time.perf_counter()
        llm.eval([token])
        token = llm.sample(temp=0.0)
        steps.append(time.perf_counter() - s)
    foreign = _foreign_cores(ticks, time.perf_counter() - start)
    return {
        "prefill_s": round(prefilled - start, 6),
        "ttft_s": round(first - start, 6),
        "decode_s": round(sum(steps), 6),
        "decode_step_median_s": round(statistics.median(steps), 6),
        "foreign_cores": round(foreign, 4),
        "clean": foreign <= MAX_FOREIGN_CORES,
    }


def bench_round(
    path: Path, prompt_text: str, prompts: list[int], gen: int, threads: int, round_no: int
) -> tuple[float, dict[int, list[dict[str, Any]]]]:
    """Load one GGUF, warm up, and time each prompt length until one clean repeat (or the attempts run out)."""
    import llama_cpp

    t0 = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, seed=0, verbose=False
    )
    load_s = time.perf_counter() - t0
    tokens = llm.tokenize(prompt_text.encode("utf-8"), add_bos=True)
    if len(tokens) < max(prompts) or max(prompts) + gen > N_CTX:
        raise ValueError(f"{path}: prompt text gives {len(tokens)} tokens, need {max(prompts)} (+{gen} <= {N_CTX})")
    llm.reset()
    llm.eval(tokens[:WARMUP_PROMPT])
    for _ in range(WARMUP_STEPS):
        llm.eval([llm.sample(temp=0.0)])
    attempts: dict[int, list[dict[str, Any]]] = {p: [] for p in prompts}
    for p in prompts:
        while len(attempts[p]) < MAX_ATTEMPTS_PER_REPEAT and not any(a["clean"] for a in attempts[p]):
            attempts[p].append({"round": round_no, **_measure(llm, tokens, p, gen)})
    llm.close()
    return load_s, attempts


def summarize(p: int, gen: int, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the clean repeats of one cell (over all of them if none was clean)."""
    runs = [a for a in attempts if a["clean"]] or attempts
    return {
        "prompt_tokens": p,
        "gen_tokens": gen,
        "prefill_tok_s": round(statistics.median(p / r["prefill_s"] for r in runs), 2),
        "ttft_ms": round(statistics.median(r["ttft_s"] * 1000 for r in runs), 2),
        "decode_tok_s": round(statistics.median(gen / r["decode_s"] for r in runs), 2),
        "decode_context": p + gen / 2,
        "clean_repeats": sum(a["clean"] for a in attempts),
        "repeats": attempts,
    }


def _available(only: set[str] | None) -> list[tuple[str, str, Path]]:
    """(model, quant, GGUF path) for every catalog model x quant whose file is in the local store."""
    found = []
    for model in load_catalog().models:
        for quant in model.quants:
            path = store.weight_path(model.id, quant)
            if path.is_file() and (only is None or f"{model.id}:{quant}" in only):
                found.append((model.id, quant, path))
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", default="128,512", help="comma-separated prompt lengths (tokens)")
    ap.add_argument("--gen", type=int, default=64, help="decode steps timed after each prompt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated model:quant pairs (default: all in the store)")
    ap.add_argument("--out", type=Path, default=ROOT / CPU_BENCH_CELLS)
    args = ap.parse_args()
    import llama_cpp

    prompts = sorted({int(x) for x in args.prompts.split(",")})
    configs = _available(set(args.only.split(",")) if args.only else None)
    if not configs:
        print("no model x quant of the catalog is in the local store", file=sys.stderr)
        return 1
    prompt_text = PROMPT_SOURCE.read_text(encoding="utf-8")
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    _wait_for_idle()
    triad_before = measure_triad(size_mb=256, repeats=5, threads=args.threads)
    print(f"STREAM triad {triad_before.gbs:.2f} GB/s; {len(configs)} model x quant", flush=True)
    raw: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = {}
    loads: dict[tuple[str, str], list[float]] = {}
    for round_no in range(args.repeats):
        t = time.perf_counter()
        # alternate the order, so a slow spell at one end of a round does not always hit the same models
        for model_id, quant, path in configs if round_no % 2 == 0 else configs[::-1]:
            load_s, attempts = bench_round(path, prompt_text, prompts, args.gen, args.threads, round_no)
            loads.setdefault((model_id, quant), []).append(round(load_s, 2))
            for p, a in attempts.items():
                raw.setdefault((model_id, quant), {}).setdefault(p, []).extend(a)
        print(f"round {round_no + 1}/{args.repeats}: {time.perf_counter() - t:.0f} s", flush=True)
    cells = []
    for model_id, quant, path in configs:
        mix = weight_mix(path)
        record = store.read_record(model_id, quant)
        for p in prompts:
            r = summarize(p, args.gen, raw[(model_id, quant)][p])
            cells.append(
                {
                    "model": model_id,
                    "quant": quant,
                    "backend": "llamacpp",
                    "tier": "cpu-local",
                    "file": f"{model_id}/{path.name} (lalo-bench model store)",
                    "file_bytes": path.stat().st_size,
                    "sha256": record.sha256 if record else None,
                    "weight_mix": mix,
                    "load_s": loads[(model_id, quant)],
                    **r,
                }
            )
            print(
                f"{model_id:30} {quant:7} pp{p:<4} prefill {r['prefill_tok_s']:8.1f} tok/s  "
                f"ttft {r['ttft_ms']:8.1f} ms  decode {r['decode_tok_s']:6.1f} tok/s  "
                f"clean {r['clean_repeats']}/{len(r['repeats'])}",
                flush=True,
            )
    _wait_for_idle()
    triad_after = measure_triad(size_mb=256, repeats=5, threads=args.threads)
    data = {
        "description": "CPU cells measured with fixed prompts and a fresh KV cache (benchmarks/cpu_cells_bench.py)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "llama_cpp_python": llama_cpp.__version__,
        "threads": args.threads,
        "n_ctx": N_CTX,
        "cpu": _cpu_model(),
        "cores_visible": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "prompt_source": {
            "file": str(PROMPT_SOURCE.relative_to(ROOT)),
            "sha256": hashlib.sha256(prompt_text.encode()).hexdigest(),
        },
        "fields": {
            "prefill_tok_s, decode_tok_s, ttft_ms": "median over clean repeats (one per round)",
            "load_s": "seconds to load the GGUF, per round",
            "repeats": "every attempt, with its round: prefill_s (eval of the prompt), ttft_s (prefill + greedy "
            "sample of token 1), decode_s (gen decode steps, each eval + sample), decode_step_median_s, "
            "foreign_cores (mean cores other processes took meanwhile), clean (foreign_cores <= max_foreign_cores)",
            "max_foreign_cores": MAX_FOREIGN_CORES,
            "decode_context": "mean KV fill while decoding: prompt + gen / 2",
            "weight_mix": "share of 2-D weight elements per ggml type, token embedding excluded (GGUF header)",
        },
        "bandwidth": {
            "triad_gbs": round(max(triad_before.gbs, triad_after.gbs), 2),
            "before_gbs": round(triad_before.gbs, 2),
            "after_gbs": round(triad_after.gbs, 2),
            "threads": args.threads,
            "size_mb": triad_before.size_mb,
            "convention": triad_before.convention,
        },
        "cells": cells,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"STREAM triad after {triad_after.gbs:.2f} GB/s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
