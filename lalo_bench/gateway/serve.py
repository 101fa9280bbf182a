"""Starting a gateway: the policy's models on their servers (given, or launched here), then uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from lalo_bench.config import Catalog
from lalo_bench.errors import LaloError
from lalo_bench.gateway.settings import UpstreamSpec
from lalo_bench.routing.policy import RoutingPolicy, load_policy

# The backend a sweep measured a model on → the server lalo-bench launches to serve it.
SERVER_FOR = {"llamacpp": "llamacpp-server", "llamacpp-server": "llamacpp-server", "vllm": "vllm"}


def parse_upstream(text: str) -> tuple[str, str, str | None]:
    """``NAME=URL[#SERVED_MODEL]`` → (policy model name, base URL, model id to send)."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest.startswith(("http://", "https://")):
        raise LaloError(f"--upstream '{text}': expected NAME=URL, e.g. 'qwen:q4_k_m@llamacpp=http://127.0.0.1:8001/v1'")
    url, _, served = rest.partition("#")
    return name.strip(), url.rstrip("/"), served or None


@contextmanager
def upstreams_for(
    policy_file: Path,
    given: list[str],
    catalog: Callable[[], Catalog],
    launch: bool = True,
    n_threads: int | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Iterator[list[UpstreamSpec]]:
    """Every policy model's upstream: ``--upstream`` where given, else a server launched for it (stopped on exit)."""
    policy: RoutingPolicy = load_policy(policy_file)
    explicit = {name: (url, served) for name, url, served in map(parse_upstream, given)}
    unknown = sorted(set(explicit) - {m.name for m in policy.models})
    if unknown:
        raise LaloError(f"--upstream names {', '.join(unknown)}, which the policy does not hold")
    specs: list[UpstreamSpec] = []
    with ExitStack() as stack:
        for m in policy.models:
            if m.name in explicit:
                url, served = explicit[m.name]
                specs.append(UpstreamSpec(name=m.name, url=url, served_model=served or f"{m.model}:{m.quant}"))
                continue
            backend = SERVER_FOR.get(m.backend)
            if not launch or backend is None:
                hint = f"give --upstream '{m.name}=URL' (an OpenAI-compatible server)"
                raise LaloError(f"no upstream for {m.name}: {hint}")
            from lalo_bench.serving.launch import launch_server

            say(f"starting {backend} for {m.model}:{m.quant} …")
            srv = stack.enter_context(launch_server(catalog(), m.model, m.quant, backend, n_threads=n_threads))
            say(f"{m.name} on {srv.url} (log {srv.log_path})")
            specs.append(UpstreamSpec(name=m.name, url=srv.url, served_model=srv.model))
        yield specs


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("lalo_bench.gateway")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
