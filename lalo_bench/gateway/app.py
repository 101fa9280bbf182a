"""The OpenAI-compatible API: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, ``/health``, ``/metrics``.

``model: "auto"`` is routed by the policy and falls back down its list; any other model id goes to that model
only. Every answer says who served it and the router's score: headers ``x-lalo-model``, ``x-lalo-route-score``
and a ``lalo`` field in the JSON (in a stream, in the first event), which OpenAI clients ignore.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lalo_bench import __version__
from lalo_bench.gateway.errors import GatewayError, error_bytes, sse_error
from lalo_bench.gateway.guard import BodyTooLarge, Guard
from lalo_bench.gateway.state import GatewayState, Loaded
from lalo_bench.gateway.upstream import Opened, StreamBroken, Upstream, UpstreamFailed

log = logging.getLogger("lalo_bench.gateway")
JSON = "application/json"
AUTO = "auto"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Open):
    """The fields the gateway reads; every other field passes through to the model's server untouched."""

    model: str = Field(default=AUTO, description="'auto' (routed by the policy) or one of GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None


class CompletionRequest(_Open):
    model: str = Field(default=AUTO)
    prompt: str | list[str] | list[int] | list[list[int]] = Field(description="text, texts, or token ids")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)


class Route(BaseModel):
    chain: list[Upstream] = Field(repr=False)
    score: float | None
    routed: bool
    model_config = ConfigDict(arbitrary_types_allowed=True)


def create_app(state: GatewayState) -> Any:
    """The ASGI app: the FastAPI routes behind :class:`~lalo_bench.gateway.guard.Guard`."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    # strict_content_type off: a JSON body sent without its Content-Type (curl -d) is still read as JSON.
    app = FastAPI(
        title="lalo-bench gateway", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        strict_content_type=False,
    )  # fmt: skip
    limits = state.settings.limits
    m = state.metrics

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg", "invalid"))
        if first.get("type") == "json_invalid":
            message, where = "request body is not valid JSON", ""
        elif tuple(first.get("loc", ())) == ("body",):
            message = "request body must be a JSON object"
        return _error(GatewayError(400, message, "invalid_request_error", param=where or None))

    @app.exception_handler(GatewayError)
    async def refused(_request: Request, exc: GatewayError) -> Response:
        return _error(exc)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_request: Request, _exc: BodyTooLarge) -> Response:
        return _error(GatewayError(413, f"request body over {limits.max_body_bytes} bytes", "invalid_request_error",
                                   code="request_too_large"))  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI turns a failed body read into a 400
            return await too_large(_request, exc.__cause__)
        return _error(GatewayError(exc.status_code, str(exc.detail), "invalid_request_error"))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error: %s", exc)  # a bug: logged whole, answered as JSON clients can parse
        return _error(GatewayError(500, f"internal error ({type(exc).__name__})", "server_error"))

    @app.get("/health")
    async def health() -> Response:
        up = sum(u.healthy for u in state.upstreams.values())
        status = "ok" if up == len(state.upstreams) else ("degraded" if up else "down")
        body = {"status": status, "upstreams_up": up, "upstreams": len(state.upstreams)}
        return Response(orjson.dumps(body), status_code=200 if up else 503, media_type=JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(m.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> Response:
        names = [AUTO, *(mod.name for mod in state.loaded.router.policy.models)]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "lalo-bench"} for n in names]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Response:
        if len(body.messages) > limits.max_messages:
            raise GatewayError(400, f"over {limits.max_messages} messages", "invalid_request_error", param="messages")
        messages = [msg.model_dump(exclude_none=True) for msg in body.messages]
        return await serve("/chat/completions", body, messages, body.tools)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Response:
        texts = [body.prompt] if isinstance(body.prompt, str) else [p for p in body.prompt if isinstance(p, str)]
        prompt = "\n".join(texts)  # token ids carry no text to route on: the router scores an empty prompt
        return await serve("/completions", body, [{"role": "user", "content": prompt}], None)

    async def resolve(model: str, messages: list[dict[str, Any]], tools: Any, loaded: Loaded) -> Route:
        if model == AUTO:
            # Off the event loop: a learned router embeds the prompt (milliseconds of CPU) and must not stall streams.
            decision = await asyncio.to_thread(loaded.router.route, messages, tools)
            m.routes.labels(decision.model).inc()
            score = decision.score if math.isfinite(decision.score) else None
            return Route(chain=state.candidates(decision.model, loaded), score=score, routed=True)
        named = state.upstreams.get(model) or next(
            (u for u in state.upstreams.values() if u.spec.served_model == model), None
        )
        if named is None:
            known = ", ".join([AUTO, *state.upstreams])
            raise GatewayError(404, f"model '{model}' is not served here (models: {known})", "invalid_request_error",
                               code="model_not_found", param="model")  # fmt: skip
        return Route(chain=[named], score=None, routed=False)

    async def open_first(route: Route, path: str, payload: dict[str, Any], stream: bool) -> tuple[Opened, list[str]]:
        """Try the chain, upstreams that failed their last health check last (the check may be stale).

        The fallbacks reported are every model ahead of the one that answered in policy order: each either failed
        now or was passed over as down, and either way the client was not served by the model it was routed to.
        """
        local = [u for u in route.chain if u is not state.cloud]
        order = [u for u in local if u.healthy] + [u for u in local if not u.healthy]
        order += [u for u in route.chain if u is state.cloud]  # the cloud stays last whatever the health flags say
        reasons: list[str] = []
        for upstream in order:
            try:
                opened = await upstream.open(path, payload, stream)
            except UpstreamFailed as exc:
                m.errors.labels("upstream_down").inc()
                reasons.append(str(exc))
                log.warning("upstream failed before answering: %s", exc)
                continue
            passed = [u.name for u in route.chain[: route.chain.index(upstream)]]
            if passed:
                m.fallbacks.labels(passed[0], upstream.name).inc()
            return opened, passed
        raise GatewayError(503, "no model could answer: " + "; ".join(reasons), "service_unavailable",
                           code="upstreams_down")  # fmt: skip

    async def serve(path: str, body: BaseModel, messages: list[dict[str, Any]], tools: Any) -> Response:
        if state.in_flight >= limits.max_concurrency:
            m.errors.labels("rejected").inc()
            m.requests.labels(path.strip("/"), "none", "429").inc()
            raise GatewayError(429, f"over {limits.max_concurrency} requests in flight; retry shortly",
                               "rate_limit_error", code="concurrency_limit")  # fmt: skip
        started = time.perf_counter()
        state.in_flight += 1
        m.in_flight.inc()
        streaming = False
        endpoint = path.strip("/")
        served, status = "none", 500
        try:
            payload = body.model_dump(exclude_unset=True)
            _check_forwardable(payload, limits.max_tokens)
            stream = bool(payload.get("stream"))
            route = await resolve(str(payload.get("model", AUTO)), messages, tools, state.loaded)
            opened, failed = await open_first(route, path, payload, stream)
            served, status = opened.upstream.name, opened.status
            tag = {"model": served, "score": route.score, "routed": route.routed, "fallback_from": failed}
            headers = _headers(tag)
            if state.settings.log_content:
                log.info("request to %s: %s", served, orjson.dumps(messages).decode()[:4000])
            if not stream or opened.response is None:
                content = _tag_json(opened.first, tag, served, m) if status == 200 else opened.first
                return Response(content, status_code=status, media_type=JSON, headers=headers)
            streaming = True
            return StreamingResponse(
                relay(opened, tag, started, endpoint), media_type="text/event-stream", headers=headers
            )
        except GatewayError as exc:
            status = exc.status
            raise
        finally:
            if not streaming:
                _done(started, endpoint, served, status)

    async def relay(opened: Opened, tag: dict[str, Any], started: float, endpoint: str) -> AsyncIterator[bytes]:
        served = opened.upstream.name
        status = 200
        try:
            first = _tag_first_event(opened.first, tag)
            m.ttft.labels(served).observe(time.perf_counter() - started)
            m.stream_events.labels(served).inc(opened.first.count(b"\n\n"))
            yield first
            async for chunk in opened.rest():
                m.stream_events.labels(served).inc(chunk.count(b"\n\n"))
                yield chunk
        except StreamBroken as exc:
            status = 502
            m.errors.labels("mid_stream").inc()
            log.warning("%s", exc)
            yield sse_error(str(exc))
        except (asyncio.CancelledError, GeneratorExit):
            status = 499  # the client hung up (nginx's code for it); not a success, not the gateway's error
            raise
        finally:
            opened.close()
            _done(started, endpoint, served, status)

    def _done(started: float, endpoint: str, served: str, status: int) -> None:
        elapsed = time.perf_counter() - started
        state.in_flight -= 1
        m.in_flight.dec()
        m.requests.labels(endpoint, served, str(status)).inc()
        if status == 200:
            m.latency.labels(served).observe(elapsed)
        log.info("%s %s %d %.1f ms", endpoint, served, status, elapsed * 1000)

    return Guard(app, lambda: state.key, limits.max_body_bytes)


TOKEN_CAPS = ("max_tokens", "max_completion_tokens", "n_predict")  # n_predict: llama.cpp's own name for it


def _check_forwardable(payload: dict[str, Any], cap: int) -> None:
    """Refuse what the upstream would choke on: output caps over the limit under any name, unencodable values."""
    for name in TOKEN_CAPS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            raise GatewayError(400, f"{name} over the cap of {cap}", "invalid_request_error", param=name)
    try:
        orjson.dumps(payload)
    except TypeError as exc:  # integers over 64 bits, lone surrogates: the client's error, not a 500
        raise GatewayError(400, f"request cannot be forwarded: {exc}", "invalid_request_error") from None


def _error(exc: GatewayError) -> Response:
    headers = {"retry-after": "1"} if exc.status == 429 else None
    return Response(exc.body(), status_code=exc.status, media_type=JSON, headers=headers)


def _headers(tag: dict[str, Any]) -> dict[str, str]:
    headers = {"x-lalo-model": tag["model"]}
    if tag["score"] is not None:
        headers["x-lalo-route-score"] = f"{tag['score']:.4f}"
    if tag["fallback_from"]:
        headers["x-lalo-fallback-from"] = ",".join(tag["fallback_from"])
    return headers


def _tag_json(data: bytes, tag: dict[str, Any], served: str, m: Any) -> bytes:
    """The upstream's JSON with the ``lalo`` field added and its usage counted; unparseable bodies pass as they are."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if not isinstance(obj, dict):
        return data
    obj["lalo"] = tag
    usage = obj.get("usage") or {}
    for direction, key in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        if isinstance(usage.get(key), int):
            m.tokens.labels(served, direction).inc(usage[key])
    return orjson.dumps(obj)


def _tag_first_event(first: bytes, tag: dict[str, Any]) -> bytes:
    """Add the ``lalo`` field to the stream's first ``data:`` event; anything else passes as it is."""
    head, sep, rest = first.partition(b"\n\n")
    if not head.startswith(b"data: {"):
        return first
    try:
        obj = orjson.loads(head[6:])
    except orjson.JSONDecodeError:
        return first
    obj["lalo"] = tag
    return b"data: " + orjson.dumps(obj) + sep + rest


__all__ = ["ChatRequest", "CompletionRequest", "create_app", "error_bytes"]
