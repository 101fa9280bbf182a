"""Start a catalog model on a server backend, hand back where it listens, and stop it afterwards.

The one entry point the CLI, the sweep and the load tests use: everything
that can fail cheaply (not a server kind, not a GGUF quant, no vLLM venv, a
busy port) fails before the model is fetched, converted or started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lalo_bench.backends.openai_http import OpenAIHttpBackend
from lalo_bench.backends.openai_protocol import Api
from lalo_bench.config import Catalog
from lalo_bench.errors import BackendError
from lalo_bench.models import acquire, quantize, store
from lalo_bench.models.store import ByteProgress
from lalo_bench.serving import hf_convert, llamacpp_server, vllm_env, vllm_server
from lalo_bench.serving.process import HOST, ServerProcess, ensure_port_free, free_port

ServerKind = Literal["llamacpp_server", "vllm_server"]
SERVER_KINDS: tuple[ServerKind, ...] = ("llamacpp_server", "vllm_server")


class RunningServer(BaseModel):
    """A started, ready server: what a client needs to reach it and what a run should log about it."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(description="base URL ending in /v1")
    model: str = Field(description="served model name to put in requests")
    backend_id: str
    backend_kind: ServerKind
    backend_version: str
    model_id: str
    quant: str
    weights_sha256: str = Field(description="sha256 of the GGUF the server's weights come from")
    served_path: Path = Field(description="the GGUF file, or the HF folder converted from it for vLLM")
    port: int
    pid: int
    log_path: Path
    startup_s: float = Field(description="seconds from process start until /v1/models answered")
    conversion_s: float | None = Field(default=None, description="GGUF → HF conversion time, when it ran now")

    def client(self, api: Api = "chat", timeout_s: float = 300.0) -> OpenAIHttpBackend:
        return OpenAIHttpBackend(self.url, self.model, api=api, timeout_s=timeout_s)


def served_name(model_id: str, quant: str) -> str:
    return f"{model_id}:{quant}"


def default_log_path(backend_id: str, model_id: str, quant: str, log_dir: Path | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (log_dir or store.home() / "logs") / f"{backend_id}_{model_id}_{quant}_{stamp}.log"


@contextmanager
def launch_server(
    catalog: Catalog,
    model_id: str,
    quant: str | None,
    backend_id: str,
    port: int | None = None,
    n_threads: int | None = None,
    log_dir: Path | None = None,
    n_ctx: int = 2048,
    ready_timeout_s: float | None = None,
    kv_cache_gib: int = 1,
    enforce_eager: bool = True,
    progress: ByteProgress | None = None,
) -> Iterator[RunningServer]:
    """Serve ``model_id``/``quant`` on ``backend_id`` until the block exits; the server is stopped on any exit.

    ``n_ctx`` is the context length (llama.cpp ``--n_ctx``, vLLM ``--max-model-len``).
    """
    try:
        spec = catalog.backend(backend_id)
    except KeyError as exc:
        raise BackendError(str(exc.args[0])) from None
    if spec.kind not in SERVER_KINDS:
        servers = ", ".join(b.id for b in catalog.backends if b.kind in SERVER_KINDS)
        raise BackendError(
            f"backend '{backend_id}' (kind {spec.kind}) is not a server lalo-bench starts; use one of: {servers}"
        )
    kind: ServerKind = spec.kind  # type: ignore[assignment]
    model = acquire.resolve(catalog, model_id, quant)
    quant = quant or model.default_quant
    fmt = catalog.quant_formats[quant].file_format
    if fmt != "gguf":
        ggufs = [q for q in model.quants if catalog.quant_formats[q].file_format == "gguf"]
        hint = f"pick a GGUF quant ({', '.join(ggufs)})" if ggufs else "this model has no GGUF quant"
        raise BackendError(
            f"{model_id}:{quant} is {fmt}, but lalo-bench starts servers from GGUF files; {hint}, "
            "or serve it yourself and use the 'openai' backend"
        )
    if kind == "llamacpp_server":
        llamacpp_server.check_installed()
        python = None
    else:
        python = vllm_env.vllm_python()
        vllm_env.vllm_version(python)  # before any download: a vLLM that cannot run on this CPU says so now
    if port is not None:
        ensure_port_free(port)

    record = quantize.ensure(catalog, model_id, quant, progress=progress)  # verified against its sha256
    gguf = store.model_dir(model_id) / record.file
    name = served_name(model_id, quant)
    conversion_s: float | None = None
    if kind == "llamacpp_server":
        version = llamacpp_server.version()
        served: Path = gguf
        timeout = ready_timeout_s or llamacpp_server.READY_TIMEOUT_S
        port = port or free_port()
        cmd = llamacpp_server.command(gguf, port, name, n_threads=n_threads, n_ctx=n_ctx, host=HOST)
        env = None
    else:
        assert python is not None
        version = vllm_env.vllm_version(python)
        was_current = hf_convert.is_current(hf_convert.hf_dir(model_id, quant), record)
        started = time.perf_counter()
        served = hf_convert.ensure_hf_folder(record, python)
        conversion_s = None if was_current else round(time.perf_counter() - started, 1)
        timeout = ready_timeout_s or vllm_server.READY_TIMEOUT_S
        port = port or free_port()
        cmd = vllm_server.command(
            python, served, port, name, max_model_len=n_ctx, enforce_eager=enforce_eager, host=HOST
        )
        env = vllm_server.environment(kv_cache_gib=kv_cache_gib, n_threads=n_threads)

    log_path = default_log_path(backend_id, model_id, quant, log_dir)
    label = f"{backend_id} server for {model_id}:{quant}"
    with ServerProcess(label, cmd, port, log_path, env=env, host=HOST, ready_timeout_s=timeout) as server:
        assert server.startup_s is not None
        yield RunningServer(
            url=server.base_url,
            model=name,
            backend_id=backend_id,
            backend_kind=kind,
            backend_version=version,
            model_id=model_id,
            quant=quant,
            weights_sha256=record.sha256,
            served_path=served,
            port=port,
            pid=server.pid,
            log_path=log_path,
            startup_s=round(server.startup_s, 2),
            conversion_s=conversion_s,
        )
