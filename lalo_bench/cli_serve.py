"""``lalo-bench serve``: the OpenAI-compatible gateway in front of the policy's models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lalo_bench.console import err


def serve(
    policy: Annotated[Path, typer.Option("--policy", help="e.g. reports/NAME/routing_policy.json.")],
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL[#MODEL]: serve a policy model from a running OpenAI-compatible server. Repeat."),
    ] = None,
    launch: Annotated[
        bool, typer.Option("--launch/--no-launch", help="Start a llama.cpp or vLLM server for models without one.")
    ] = True,
    threads: Annotated[int | None, typer.Option(help="CPU threads per launched server.")] = None,
    cloud_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible cloud URL, tried last where the policy allows the cloud.")
    ] = None,
    cloud_model: Annotated[str, typer.Option(help="Model id at the cloud endpoint.")] = "gpt-4o-mini",
    max_concurrency: Annotated[int, typer.Option(help="Requests in flight before 429.")] = 64,
    max_tokens: Annotated[int, typer.Option(help="Cap on a request's max_tokens.")] = 4096,
    max_body_kb: Annotated[int, typer.Option(help="Cap on a request body (KiB).")] = 1024,
    request_timeout: Annotated[float, typer.Option(help="Seconds a whole request may take.")] = 300.0,
    first_token_timeout: Annotated[float, typer.Option(help="Seconds to an upstream's first token.")] = 60.0,
    log_content: Annotated[bool, typer.Option(help="Log prompts (off by default: no text in logs).")] = False,
) -> None:
    """Route OpenAI requests to local models by the policy; the key is $LALO_API_KEY or a file made on first run."""
    import os

    import uvicorn

    from lalo_bench.config import load_catalog
    from lalo_bench.gateway.app import create_app
    from lalo_bench.gateway.keys import resolve_key
    from lalo_bench.gateway.serve import configure_logging, upstreams_for
    from lalo_bench.gateway.settings import CloudFallback, GatewaySettings, Limits
    from lalo_bench.gateway.state import GatewayState, load

    key, source = resolve_key()
    cloud = None
    if cloud_url:
        cloud = CloudFallback(url=cloud_url, model=cloud_model, api_key=os.environ.get("LALO_CLOUD_API_KEY"))
    limits = Limits(
        max_body_bytes=max_body_kb * 1024, max_tokens=max_tokens, max_concurrency=max_concurrency,
        request_timeout_s=request_timeout, first_token_timeout_s=first_token_timeout,
    )  # fmt: skip
    with upstreams_for(policy, upstream or [], lambda: load_catalog(None), launch, threads, err.print) as specs:
        settings = GatewaySettings(
            policy=policy, upstreams=specs, host=host, port=port, limits=limits, cloud=cloud, log_content=log_content
        )
        loaded = load(settings)
        if cloud and not loaded.router.policy.cloud_fallback:
            err.print("[yellow]the policy does not allow the cloud (cloud_fallback: false): --cloud-url is unused[/]")
        state = GatewayState(settings, key, loaded)
        configure_logging()
        err.print(f"[green]gateway[/] http://{host}:{port}/v1  models: auto, {', '.join(s.name for s in specs)}")
        err.print(f"API key from {source}; clients send it as 'Authorization: Bearer <key>'")
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
