"""One completion request, body in, answer out: limits, routing, fallback, tagging, metrics.

``model: "auto"`` is routed by the policy and falls back down its list; any other model id goes to that model
only. Every answer says who served it and the router's score: headers ``x-lalo-model``, ``x-lalo-route-score``,
``x-lalo-fallback-from`` and a ``lalo`` field in the JSON (in a stream, in the first event), which OpenAI clients
ignore. Kept free of any web framework, so the hot path costs only what it does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from lalo_bench.gateway.errors import GatewayError, sse_error
from lalo_bench.gateway.schemas import AUTO, ENDPOINTS, ChatRequest, parse
from lalo_bench.gateway.state import GatewayState, Loaded
from lalo_bench.gateway.upstream import Opened, StreamBroken, Upstream, UpstreamFailed

log = logging.getLogger("lalo_bench.gateway")
TOKEN_CAPS = ("max_tokens", "max_completion_tokens", "n_predict")  # n_predict: llama.cpp's own name for it
Headers = list[tuple[bytes, bytes]]


@dataclass
class Whole:
    status: int
    headers: Headers
    body: bytes


@dataclass
class Stream:
    headers: Headers
    chunks: AsyncIterator[bytes]


@dataclass
class Route:
    chain: list[Upstream]
    score: float | None
    routed: bool


class Proxy:
    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.limits = state.settings.limits
        self.m = state.metrics

    async def handle(self, path: str, raw: bytes) -> Whole | Stream:
        """Answer one POST to a completion endpoint; refusals raise :class:`GatewayError`."""
        upstream_path, model, _ = ENDPOINTS[path]
        endpoint = upstream_path.strip("/")
        body = parse(model, raw)
        if isinstance(body, ChatRequest):
            if len(body.messages) > self.limits.max_messages:
                raise GatewayError(400, f"over {self.limits.max_messages} messages", "invalid_request_error",
                                   param="messages")  # fmt: skip
            messages = [msg.model_dump(exclude_none=True) for msg in body.messages]
            tools = body.tools
        else:
            texts = [body.prompt] if isinstance(body.prompt, str) else [p for p in body.prompt if isinstance(p, str)]
            messages = [{"role": "user", "content": "\n".join(texts)}]  # token ids: nothing to route on
            tools = None
        payload = body.model_dump(exclude_unset=True)
        _check_forwardable(payload, self.limits.max_tokens)
        if self.state.in_flight >= self.limits.max_concurrency:
            self.m.errors.labels("rejected").inc()
            self.m.request(endpoint, "none", 429).inc()
            raise GatewayError(429, f"over {self.limits.max_concurrency} requests in flight; retry shortly",
                               "rate_limit_error", code="concurrency_limit")  # fmt: skip
        started = time.perf_counter()
        self.state.in_flight += 1
        self.m.in_flight.inc()
        streaming, served, status = False, "none", 500
        try:
            stream = bool(payload.get("stream"))
            route = await self.resolve(str(payload.get("model", AUTO)), messages, tools, self.state.loaded)
            opened, passed = await self.open_first(route, upstream_path, payload, stream)
            served, status = opened.upstream.name, opened.status
            tag = {"model": served, "score": route.score, "routed": route.routed, "fallback_from": passed}
            if self.state.settings.log_content:
                log.info("request to %s: %s", served, orjson.dumps(messages).decode()[:4000])
            if not stream or not opened.streaming:
                content = _tag_json(opened.first, tag, served, self.m) if status == 200 else opened.first
                return Whole(status, [(b"content-type", b"application/json"), *_headers(tag)], content)
            streaming = True
            headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), *_headers(tag)]
            return Stream(headers, self.relay(opened, tag, started, endpoint))
        except GatewayError as exc:
            status = exc.status
            raise
        finally:
            if not streaming:
                self._done(started, endpoint, served, status)

    async def resolve(self, model: str, messages: list[dict[str, Any]], tools: Any, loaded: Loaded) -> Route:
        if model == AUTO:
            # Off the event loop: a learned router embeds the prompt (milliseconds of CPU) and must not stall streams.
            decision = await asyncio.to_thread(loaded.router.route, messages, tools)
            self.m.routes.labels(decision.model).inc()
            score = decision.score if math.isfinite(decision.score) else None
            return Route(self.state.candidates(decision.model, loaded), score, routed=True)
        ups = self.state.upstreams
        named = ups.get(model) or next((u for u in ups.values() if u.spec.served_model == model), None)
        if named is None:
            known = ", ".join([AUTO, *ups])
            raise GatewayError(404, f"model '{model}' is not served here (models: {known})", "invalid_request_error",
                               code="model_not_found", param="model")  # fmt: skip
        return Route([named], None, routed=False)

    async def open_first(
        self, route: Route, path: str, payload: dict[str, Any], stream: bool
    ) -> tuple[Opened, list[str]]:
        """Try the chain, local upstreams that failed their last health check after the others (the check may be
        stale), the cloud always last.

        The fallbacks reported are every model ahead of the one that answered in policy order: each either failed
        now or was passed over as down, and either way the client was not served by the model it was routed to.
        """
        cloud = self.state.cloud
        local = [u for u in route.chain if u is not cloud]
        order = [u for u in local if u.healthy] + [u for u in local if not u.healthy]
        order += [u for u in route.chain if u is cloud]
        reasons: list[str] = []
        for upstream in order:
            try:
                opened = await upstream.open(path, payload, stream)
            except UpstreamFailed as exc:
                self.m.errors.labels("upstream_down").inc()
                reasons.append(str(exc))
                log.warning("upstream failed before answering: %s", exc)
                continue
            passed = [u.name for u in route.chain[: route.chain.index(upstream)]]
            if passed:
                self.m.fallbacks.labels(passed[0], upstream.name).inc()
            return opened, passed
        raise GatewayError(503, "no model could answer: " + "; ".join(reasons), "service_unavailable",
                           code="upstreams_down")  # fmt: skip

    async def relay(self, opened: Opened, tag: dict[str, Any], started: float, endpoint: str) -> AsyncIterator[bytes]:
        served = opened.upstream.name
        status = 200
        try:
            first = _tag_first_event(opened.first, tag)
            self.m.ttft.labels(served).observe(time.perf_counter() - started)
            events = self.m.stream_events.labels(served)
            events.inc(opened.first.count(b"\n\n"))
            yield first
            async for chunk in opened.rest():
                events.inc(chunk.count(b"\n\n"))
                yield chunk
        except StreamBroken as exc:
            status = 502
            self.m.errors.labels("mid_stream").inc()
            log.warning("%s", exc)
            yield sse_error(str(exc))
        except (asyncio.CancelledError, GeneratorExit):
            status = 499  # the client hung up (nginx's code for it); not a success, not the gateway's error
            raise
        finally:
            await opened.aclose()
            self._done(started, endpoint, served, status)

    def _done(self, started: float, endpoint: str, served: str, status: int) -> None:
        elapsed = time.perf_counter() - started
        self.state.in_flight -= 1
        self.m.in_flight.dec()
        self.m.request(endpoint, served, status).inc()
        if status == 200:
            self.m.latency_of(served).observe(elapsed)
        self.state.access.add(endpoint, served, status, elapsed * 1000)


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


def _headers(tag: dict[str, Any]) -> Headers:
    headers = [(b"x-lalo-model", tag["model"].encode())]
    if tag["score"] is not None:
        headers.append((b"x-lalo-route-score", f"{tag['score']:.4f}".encode()))
    if tag["fallback_from"]:
        headers.append((b"x-lalo-fallback-from", ",".join(tag["fallback_from"]).encode()))
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
