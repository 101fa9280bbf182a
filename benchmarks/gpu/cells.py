#!/usr/bin/env python3
"""Helpers for benchmarks/gpu_cells.sh — standard library only, so they run before anything is installed.

Sub-commands (each prints JSON or plain text on stdout):

  env                                  machine snapshot: GPU, driver, CUDA, nvcc, cmake, CPUs, memory, disk
  step --steps F --name N --status S   append one step record (JSON line) to F (and print it)
       [--seconds X] [--reason R] [--data JSON] [--phase P]
  wait-http URL --timeout S [--pid P]  poll URL until it answers 200 (exit 1 on timeout or when P dies)
  smoke BASE_URL MODEL                 one non-streamed /v1/chat/completions request; prints timing + usage
  merge-bench --into F NEW             append llama-bench's JSON array NEW to the JSON array F
  peak FILE                            largest number in FILE (nvidia-smi samples), or "null"
  freeport                             a free TCP port on 127.0.0.1
  cuda-paths [--nvcc P] [--format F]   where cuBLAS and libcuda are (toolkit, else PyTorch's pip wheels)
  render --steps F --out DIR           write DIR/status.json and DIR/summary.md from the step records
                                       and the results files in DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path


def _run(cmd: list[str], timeout: float = 15) -> str | None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- env
def env_snapshot() -> dict:
    info: dict = {"time_utc": now_iso(), "hostname": socket.gethostname(), "platform": platform.platform()}
    info["cpu_count"] = os.cpu_count()
    try:
        mem = Path("/proc/meminfo").read_text()
        info["mem_total_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", mem).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        pass
    try:
        du = shutil.disk_usage(os.getcwd())
        info["disk_free_gib"] = round(du.free / 2**30, 1)
        info["disk_total_gib"] = round(du.total / 2**30, 1)
    except OSError:
        pass
    info["python"] = sys.version.split()[0]
    smi = shutil.which("nvidia-smi")
    gpus = []
    if smi:
        q = _run(
            [
                smi,
                "--query-gpu=name,memory.total,memory.used,driver_version,pci.bus_id,clocks.max.sm,power.limit",
                "--format=csv,noheader,nounits",
            ]
        )
        for line in (q or "").splitlines():
            f = [x.strip() for x in line.split(",")]
            if len(f) >= 4:
                gpus.append(
                    {
                        "name": f[0],
                        "memory_total_mib": _num(f[1]),
                        "memory_used_mib": _num(f[2]),
                        "driver": f[3],
                        "pci_bus_id": f[4] if len(f) > 4 else None,
                        "max_sm_clock_mhz": _num(f[5]) if len(f) > 5 else None,
                        "power_limit_w": _num(f[6]) if len(f) > 6 else None,
                    }
                )
        head = _run([smi]) or ""
        m = re.search(r"CUDA Version:\s*([\d.]+)", head)
        info["cuda_driver_version"] = m.group(1) if m else None
    info["gpus"] = gpus
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    if nvcc:
        v = _run([nvcc, "--version"]) or ""
        m = re.search(r"release ([\d.]+), V([\d.]+)", v)
        info["nvcc"] = {"path": nvcc, "release": m.group(1) if m else None, "version": m.group(2) if m else v[-80:]}
    else:
        info["nvcc"] = None
    for tool in ("cmake", "ninja", "gcc"):
        v = _run([tool, "--version"]) if shutil.which(tool) else None
        info[tool] = v.splitlines()[0] if v else None
    return info


def _num(s: str):
    try:
        return float(s) if "." in s else int(s)
    except ValueError:
        return None


# --------------------------------------------------------------------------- CUDA libraries
def _first(paths) -> str | None:
    for p in paths:
        if p and os.path.exists(p):
            return str(p)
    return None


def cuda_paths(nvcc: str | None, extra_dirs: list[str]) -> dict:
    """Where cuBLAS (headers + libs) and the driver's libcuda are, for a CUDA build of ggml.

    A full CUDA toolkit has cuBLAS; a compiler-only install (nvcc + cudart) does not, and then the
    cuBLAS that PyTorch's pip wheels carry (site-packages/nvidia/cu13 or nvidia/cublas) is used.
    """
    roots = []
    for r in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if r:
            roots.append(Path(r))
    if nvcc:
        roots.append(Path(os.path.realpath(nvcc)).parent.parent)
    inc_dirs, lib_dirs = [], []
    for r in roots:
        inc_dirs += [r / "include", r / "targets/x86_64-linux/include"]
        lib_dirs += [r / "lib64", r / "lib", r / "targets/x86_64-linux/lib"]
    out: dict = {
        "source": None,
        "cublas_include": None,
        "cublas_lib": None,
        "cublaslt_lib": None,
        "cuda_driver_lib": None,
        "lib_dirs": [],
        "notes": [],
    }
    toolkit_inc = _first(d / "cublas_v2.h" for d in inc_dirs)
    toolkit_lib = _first(d / n for d in lib_dirs for n in ("libcublas.so", "libcublas.so.13", "libcublas.so.12"))
    if toolkit_inc and toolkit_lib:
        out.update(source="toolkit", cublas_include=str(Path(toolkit_inc).parent), cublas_lib=toolkit_lib)
    else:
        cands = [Path(d) for d in extra_dirs if d]
        try:
            import nvidia

            cands += [Path(p) for p in nvidia.__path__]
        except ImportError:
            out["notes"].append("no python 'nvidia' packages")
        for c in cands:
            hdr = sorted(c.glob("**/include/cublas_v2.h")) + sorted(c.glob("include/cublas_v2.h"))
            lib = sorted(c.glob("**/lib/libcublas.so*")) + sorted(c.glob("lib/libcublas.so*"))
            lt = sorted(c.glob("**/lib/libcublasLt.so*")) + sorted(c.glob("lib/libcublasLt.so*"))
            if hdr and lib and lt:
                out.update(
                    source=f"pip wheels under {c}",
                    cublas_include=str(hdr[0].parent),
                    cublas_lib=str(lib[0]),
                    cublaslt_lib=str(lt[0]),
                )
                out["lib_dirs"].append(str(lib[0].parent))
                break
        if out["source"] is None:
            out["notes"].append("cuBLAS not found in the toolkit nor in pip wheels")
    # the driver library, for ggml's virtual-memory pool (CUDA::cuda_driver)
    drv = None
    ld = _run(["ldconfig", "-p"]) or ""
    m = re.search(r"libcuda\.so\.1 \(libc6,x86-64\) => (\S+)", ld)
    if m:
        drv = m.group(1)
    drv = drv or _first(
        [
            *(d / "stubs/libcuda.so" for d in lib_dirs),
            "/usr/local/nvidia/lib64/libcuda.so.1",
            "/usr/local/nvidia/lib/libcuda.so.1",
            "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "/usr/lib64/libcuda.so.1",
        ]
    )
    out["cuda_driver_lib"] = drv
    if drv is None:
        out["notes"].append("no libcuda found: building with GGML_CUDA_NO_VMM=ON")
    return out


def cmd_cuda_paths(a) -> None:
    info = cuda_paths(a.nvcc, a.extra_dir or [])
    args = []
    if info["source"] and info["source"] != "toolkit":
        args += [
            f"-DCUDA_cublas_LIBRARY={info['cublas_lib']}",
            f"-DCUDA_cublasLt_LIBRARY={info['cublaslt_lib']}",
            f"-DCMAKE_CUDA_FLAGS=-I{info['cublas_include']}",
        ]
    if info["cuda_driver_lib"]:
        args.append(f"-DCUDA_cuda_driver_LIBRARY={info['cuda_driver_lib']}")
    else:
        args.append("-DGGML_CUDA_NO_VMM=ON")
    info["cmake_args"] = args
    if a.format == "cmake-args":
        print("\n".join(args))
    elif a.format == "lib-dirs":
        print(":".join(info["lib_dirs"]))
    else:
        print(json.dumps(info))


# --------------------------------------------------------------------------- steps
def cmd_step(a) -> None:
    rec = {"time_utc": now_iso(), "phase": a.phase, "name": a.name, "status": a.status}
    if a.seconds is not None:
        rec["seconds"] = round(a.seconds, 1)
    if a.reason:
        rec["reason"] = a.reason
    if a.data:
        try:
            rec["data"] = json.loads(a.data)
        except json.JSONDecodeError:
            rec["data"] = {"raw": a.data}
    line = json.dumps(rec)
    for f in a.steps:
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        with open(f, "a") as fh:
            fh.write(line + "\n")
    print(line)


def read_steps(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


# --------------------------------------------------------------------------- http
def cmd_wait_http(a) -> None:
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < a.timeout:
        if a.pid:
            try:
                os.kill(a.pid, 0)
            except ProcessLookupError:
                print(json.dumps({"ok": False, "reason": f"process {a.pid} exited", "last": last}))
                sys.exit(1)
        try:
            with urllib.request.urlopen(a.url, timeout=5) as r:
                if r.status == 200:
                    print(json.dumps({"ok": True, "seconds": round(time.monotonic() - t0, 2)}))
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)[:120]
        time.sleep(0.5)
    print(json.dumps({"ok": False, "reason": f"no 200 from {a.url} in {a.timeout:.0f} s", "last": last}))
    sys.exit(1)


def cmd_smoke(a) -> None:
    body = {
        "model": a.model,
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": a.max_tokens,
        "temperature": 0,
    }
    req = urllib.request.Request(
        a.base_url.rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=a.timeout) as r:
        resp = json.loads(r.read())
    dt = time.monotonic() - t0
    usage = resp.get("usage") or {}
    text = (resp.get("choices") or [{}])[0].get("message", {}).get("content", "")
    print(
        json.dumps(
            {
                "ok": True,
                "seconds": round(dt, 3),
                "usage": usage,
                "timings": resp.get("timings"),
                "text_head": text[:80],
            }
        )
    )


def cmd_freeport(_a) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


# --------------------------------------------------------------------------- results
def cmd_merge_bench(a) -> None:
    text = Path(a.new).read_text().strip()
    try:
        new = json.loads(text)
    except json.JSONDecodeError:
        # llama-bench -o json flushes each finished test: a killed run leaves "[ {...}, {...}" unclosed
        try:
            new = json.loads(text.rstrip(",") + "\n]") if text.startswith("[") else None
        except json.JSONDecodeError:
            new = None
        if new is None:
            raise SystemExit(f"{a.new}: no complete llama-bench JSON in it") from None
    if not isinstance(new, list):
        raise SystemExit(f"{a.new}: not a JSON array")
    into = Path(a.into)
    old = json.loads(into.read_text()) if into.exists() else []
    tmp = into.with_name(into.name + ".tmp")
    tmp.write_text(json.dumps(old + new, indent=1) + "\n")
    os.replace(tmp, into)
    print(len(old) + len(new))


def cmd_peak(a) -> None:
    vals = []
    with contextlib.suppress(OSError):
        for line in Path(a.file).read_text().split():
            with contextlib.suppress(ValueError):
                vals.append(float(line.strip().rstrip(",")))
    print(int(max(vals)) if vals else "null")


def _bench_rows(bench: list[dict]) -> list[dict]:
    rows = []
    for r in bench:
        test = f"pp{r.get('n_prompt')}" if r.get("n_gen", 0) == 0 else f"tg{r.get('n_gen')}"
        if r.get("n_prompt") and r.get("n_gen"):
            test = f"pp{r['n_prompt']}+tg{r['n_gen']}"
        rows.append(
            {
                "model": Path(r.get("model_filename", "?")).stem,
                "model_type": r.get("model_type"),
                "size_gib": round(r.get("model_size", 0) / 2**30, 2),
                "params_b": round(r.get("model_n_params", 0) / 1e9, 2),
                "backend": r.get("backends"),
                "ngl": r.get("n_gpu_layers"),
                "fa": r.get("flash_attn"),
                "test": test,
                "tok_s": round(r.get("avg_ts", 0.0), 1),
                "tok_s_sd": round(r.get("stddev_ts", 0.0), 1),
                "gpu": r.get("gpu_info"),
            }
        )
    return rows


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cmd_render(a) -> None:
    out = Path(a.out)
    steps = read_steps(Path(a.steps))
    env = next((s["data"] for s in reversed(steps) if s["name"] == "env" and "data" in s), {})
    failed = [s for s in steps if s["status"] == "failed"]
    status = {
        "schema": "lalo-bench/gpu-cells/1",
        "rendered_utc": now_iso(),
        "script": "benchmarks/gpu_cells.sh",
        "weights_note": (
            "models named synthetic-* have RANDOM weights with the exact shapes, quantization types and "
            "tokenizer of the named architecture: valid for speed (tokens/s, TTFT, ITL, VRAM), "
            "meaningless for quality"
        ),
        "environment": env,
        "ok": not failed,
        "n_steps": len(steps),
        "failed_steps": [f"{s['phase']}/{s['name']}: {s.get('reason', '')}" for s in failed],
        "steps": steps,
        "files": sorted(
            p.name for p in out.iterdir() if p.is_file() and p.name != "status.json" and not p.name.startswith(".")
        ),
    }
    _atomic_write(out / "status.json", json.dumps(status, indent=1) + "\n")

    lines = [f"# GPU cells — {env.get('gpus', [{}])[0].get('name', 'no GPU') if env.get('gpus') else 'no GPU'}", ""]
    lines.append(
        f"Rendered {status['rendered_utc']} by `benchmarks/gpu_cells.sh`. "
        f"Driver {(env.get('gpus') or [{}])[0].get('driver', '?')}, CUDA {env.get('cuda_driver_version', '?')}, "
        f"nvcc {(env.get('nvcc') or {}).get('release', 'none')}, {env.get('cpu_count', '?')} CPUs."
    )
    lines += [
        "",
        "**Models named `synthetic-*` have random weights** (real shapes, quant types and tokenizer): "
        "their speeds are real, their text is not.",
        "",
    ]
    bench_file = out / "llama-bench.json"
    if bench_file.exists():
        try:
            rows = _bench_rows(json.loads(bench_file.read_text()))
        except (json.JSONDecodeError, OSError):
            rows = []
        if rows:
            lines += [
                "## llama-bench",
                "",
                "| model | type | GiB | backend | fa | test | tok/s | ± |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                lines.append(
                    f"| {r['model']} | {r['model_type']} | {r['size_gib']} | {r['backend']} | {r['fa']} | "
                    f"{r['test']} | {r['tok_s']} | {r['tok_s_sd']} |"
                )
            lines.append("")
    lt_rows = []
    for f in sorted(out.glob("loadtest-*.json")):
        try:
            rep = json.loads(f.read_text())
        except (json.JSONDecodeError, OSError):
            continue
        for p in rep.get("points", []):
            tgt = p.get("target", {})
            label = f"{tgt.get('profile')}@{tgt.get('concurrency') or tgt.get('rate')}"
            get = lambda k, q="p50", p=p: (p.get(k) or {}).get(q)  # noqa: E731
            lt_rows.append(
                (
                    f.stem.removeprefix("loadtest-"),
                    label,
                    (p.get("requests") or {}).get("ok"),
                    (p.get("requests") or {}).get("errored"),
                    get("ttft_ms"),
                    get("ttft_ms", "p99"),
                    get("itl_ms"),
                    get("itl_ms", "p99"),
                    p.get("output_tok_s"),
                    p.get("requests_per_s"),
                )
            )
    if lt_rows:
        lines += [
            "## llama-server under load (lalo-bench loadtest)",
            "",
            "| model | load | ok | err | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | out tok/s | req/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        fmt = lambda v: "—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
        for r in lt_rows:
            lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
        lines.append("")
    lines += ["## Steps", "", "| phase | step | status | s | reason / notes |", "|---|---|---|---|---|"]
    for s in steps:
        if s["name"] == "env":
            continue
        note = s.get("reason", "")
        d = s.get("data") or {}
        for k in ("peak_vram_mib", "file", "bytes", "gb_per_s", "source"):
            if k in d:
                note += f" {k}={d[k]}"
        lines.append(f"| {s['phase']} | {s['name']} | {s['status']} | {s.get('seconds', '')} | {note.strip()} |")
    _atomic_write(out / "summary.md", "\n".join(lines) + "\n")
    print(json.dumps({"ok": status["ok"], "failed": status["failed_steps"], "files": status["files"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("env").set_defaults(fn=lambda a: print(json.dumps(env_snapshot())))
    s = sub.add_parser("step")
    s.add_argument("--steps", action="append", required=True)
    s.add_argument("--phase", default="")
    s.add_argument("--name", required=True)
    s.add_argument("--status", required=True, choices=["ok", "failed", "skipped", "info"])
    s.add_argument("--seconds", type=float)
    s.add_argument("--reason", default="")
    s.add_argument("--data")
    s.set_defaults(fn=cmd_step)
    w = sub.add_parser("wait-http")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=120)
    w.add_argument("--pid", type=int)
    w.set_defaults(fn=cmd_wait_http)
    sm = sub.add_parser("smoke")
    sm.add_argument("base_url")
    sm.add_argument("model")
    sm.add_argument("--max-tokens", type=int, default=16)
    sm.add_argument("--timeout", type=float, default=120)
    sm.set_defaults(fn=cmd_smoke)
    mb = sub.add_parser("merge-bench")
    mb.add_argument("--into", required=True)
    mb.add_argument("new")
    mb.set_defaults(fn=cmd_merge_bench)
    pk = sub.add_parser("peak")
    pk.add_argument("file")
    pk.set_defaults(fn=cmd_peak)
    sub.add_parser("freeport").set_defaults(fn=cmd_freeport)
    cp = sub.add_parser("cuda-paths")
    cp.add_argument("--nvcc")
    cp.add_argument("--extra-dir", action="append", help="more places to look for cuBLAS (e.g. nvidia/cu13)")
    cp.add_argument("--format", choices=["json", "cmake-args", "lib-dirs"], default="json")
    cp.set_defaults(fn=cmd_cuda_paths)
    r = sub.add_parser("render")
    r.add_argument("--steps", required=True)
    r.add_argument("--out", required=True)
    r.set_defaults(fn=cmd_render)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
