"""llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server`` from ``llama-cpp-python[server]``).

It runs with this interpreter, so it uses the same llama.cpp build as the
in-process backend; only its web extras (uvicorn, fastapi, …) are extra.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from lalo_bench.errors import BackendError

SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
"""What ``llama_cpp.server`` imports beyond llama_cpp itself (the ``[server]`` extra)."""

READY_TIMEOUT_S = 120.0
"""A GGUF loads in seconds; the margin is for a busy 2-core machine and multi-GB files."""


def check_installed() -> None:
    """One-line error when llama-cpp-python or its server extras are missing from this environment."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise BackendError("llama-cpp-python is not installed; run `pip install 'lalo-bench[llamacpp,server]'`")
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendError(
            f"the llama.cpp server needs its extras (missing: {', '.join(missing)}); "
            "run `pip install 'lalo-bench[server]'`"
        )


def version() -> str:
    return importlib.metadata.version("llama-cpp-python")


def command(
    model_file: Path,
    port: int,
    served_name: str,
    n_threads: int | None = None,
    n_ctx: int = 2048,
    host: str = "127.0.0.1",
) -> list[str]:
    """The server command line; ``n_threads`` defaults to every core (the server's own default is 1)."""
    threads = n_threads or os.cpu_count() or 1
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file),
        "--model_alias",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--n_ctx",
        str(n_ctx),
        "--use_mlock",  # the server defaults to mlock, unlike llama-cpp-python in-process: keep memory comparable
        "False",
        # By default a new request aborts the one streaming (its reply is cut mid-stream); under load they must queue.
        "--interrupt_requests",
        "False",
    ]
