"""The OpenAI-compatible API: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, ``/health``, ``/metrics``.

Every request passes the guard (key, body size) on the raw ASGI scope. The two completion endpoints — the hot
path — go straight to :class:`~lalo_bench.gateway.proxy.Proxy`; FastAPI serves the rest, the OpenAPI schema
(the completion endpoints described from the same pydantic models the proxy validates with) and every error as an
OpenAI-style JSON body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lalo_bench import __version__
from lalo_bench.gateway.errors import GatewayError, error_bytes
from lalo_bench.gateway.guard import (
    OPEN_PATHS,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    limited,
    read_body,
    refusal,
    send_error,
    too_large_body,
)
from lalo_bench.gateway.proxy import Proxy, Stream, Whole
from lalo_bench.gateway.schemas import AUTO, ENDPOINTS, add_to_openapi
from lalo_bench.gateway.state import GatewayState

log = logging.getLogger("lalo_bench.gateway")
JSON = "application/json"


def create_app(state: GatewayState) -> GatewayApp:
    return GatewayApp(state, _fastapi(state))


class GatewayApp:
    """The ASGI entry point: guard, then the proxy for completions, FastAPI for everything else."""

    def __init__(self, state: GatewayState, rest: FastAPI) -> None:
        self.state, self.rest, self.proxy = state, rest, Proxy(state)
        self.max_body = state.settings.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.rest(scope, receive, send)
            return
        refused = refusal(dict(scope["headers"]), self.state.key, self.max_body)
        if refused is not None:
            await send_error(send, *refused)
            return
        path = scope["path"]
        if path not in ENDPOINTS:  # FastAPI's routes take no body: the Content-Length cap above is enough
            await self.rest(scope, receive, send)
            return
        if scope["method"] != "POST":
            body = error_bytes(f"{scope['method']} is not allowed on {path}; use POST", "invalid_request_error")
            await send_error(send, 405, body, [(b"allow", b"POST")])
            return
        try:
            raw = await read_body(limited(receive, self.max_body))
            answer = await self.proxy.handle(path, raw)
        except BodyTooLarge:
            await send_error(send, 413, too_large_body(self.max_body))
            return
        except GatewayError as exc:
            await send_error(send, exc.status, exc.body(), [(b"retry-after", b"1")] if exc.status == 429 else None)
            return
        except ConnectionError:
            return
        except Exception as exc:  # a bug: logged whole, answered as JSON clients can parse
            log.exception("unexpected error: %s", exc)
            await send_error(send, 500, error_bytes(f"internal error ({type(exc).__name__})", "server_error"))
            return
        if isinstance(answer, Whole):
            headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await _stream(answer, receive, send)


async def _stream(answer: Stream, receive: Receive, send: Send) -> None:
    """Relay the events; stop (and let the upstream go) as soon as the client hangs up."""
    gone = asyncio.ensure_future(receive())  # the body is read: the next message is the client leaving
    try:
        await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
        async for chunk in answer.chunks:
            if gone.done():
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client's connection broke while we wrote: nothing left to tell it
    finally:
        gone.cancel()
        await answer.chunks.aclose()  # type: ignore[attr-defined]


def _fastapi(state: GatewayState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    app = FastAPI(title="lalo-bench gateway", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = add_to_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _error(GatewayError(exc.status_code, str(exc.detail), "invalid_request_error"))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error: %s", exc)
        return _error(GatewayError(500, f"internal error ({type(exc).__name__})", "server_error"))

    @app.get("/health")
    async def health() -> Response:
        up = sum(u.healthy for u in state.upstreams.values())
        status = "ok" if up == len(state.upstreams) else ("degraded" if up else "down")
        body = {"status": status, "upstreams_up": up, "upstreams": len(state.upstreams)}
        return Response(orjson.dumps(body), status_code=200 if up else 503, media_type=JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> Response:
        names = [AUTO, *(mod.name for mod in state.loaded.router.policy.models)]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "lalo-bench"} for n in names]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)

    return app


def _error(exc: GatewayError) -> Response:
    headers = {"retry-after": "1"} if exc.status == 429 else None
    return Response(exc.body(), status_code=exc.status, media_type=JSON, headers=headers)
