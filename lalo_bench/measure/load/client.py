"""The load generator's client: one streamed request in, one :class:`RequestRecord` out.

Asynchronous, so one process keeps hundreds of streams open, over the minimal
HTTP/1.1 transport in :mod:`~lalo_bench.measure.load.http1` (aiohttp's own
request and reply paths cost about 0.5 ms per request here, all of it inside
every TTFT). Each network read is stamped once on arrival; every content event
in that read gets that stamp. Bodies arrive pre-encoded, so the timed path
holds only the send, the reads and a JSON parse per event (orjson: the stdlib
parser was a third of the client's time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson

from lalo_bench.backends.openai_http import auth_headers, normalize_base_url
from lalo_bench.backends.openai_protocol import ENDPOINTS, Api, parse_object
from lalo_bench.measure.load.http1 import Http1Pool, HttpError, Reply, StaleConnection
from lalo_bench.measure.load.schemas import RequestRecord

STALE_RETRIES = 32
"""Enough to drain every dead connection a pool of the largest usual concurrency can hold."""


class LoadClient:
    """Holds one connection pool to the server; use as ``async with``."""

    def __init__(self, base_url: str, api: Api = "chat", api_key: str | None = None, timeout_s: float = 600.0) -> None:
        self.path = ENDPOINTS[api]
        self.pool = Http1Pool(normalize_base_url(base_url), headers=auth_headers(api_key))
        self.timeout_s = timeout_s

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.close()

    async def send(self, index: int, body: bytes, t0: float, scheduled_s: float | None = None) -> RequestRecord:
        """Send one request; failures are recorded on the record, never raised.

        Some servers (llama.cpp's ``llama-server``) close a kept-alive connection after a
        streamed reply without saying so. A request that finds its pooled connection dead
        before any byte of reply came back is sent again, with a fresh clock, and the record
        counts the reconnect; from then on every request asks for its own connection
        (``Connection: close``), as such a server wants. Anything else is the server's
        failure and stays one.
        """
        for attempt in range(STALE_RETRIES + 1):
            out = _Attempt(start=time.perf_counter())
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._stream(body, t0, out)
            except asyncio.CancelledError:
                raise
            except StaleConnection as exc:
                if attempt < STALE_RETRIES:
                    self.pool.keep_alive = False  # this server drops connections: stop pooling them
                    continue
                out.error = _describe(exc)
            except (HttpError, OSError, TimeoutError, orjson.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
                out.error = _describe(exc)
            break
        if out.error is None and not out.chunks:
            out.error = (
                f"server reported {out.usage_tokens} output tokens but streamed no text (tokens it does not render?)"
                if out.usage_tokens
                else "stream ended without any output"
            )
        return RequestRecord.model_construct(
            index=index,
            scheduled_s=scheduled_s,
            start_s=out.start - t0,
            chunk_times_s=out.chunks,
            end_s=time.perf_counter() - t0,
            prompt_tokens=out.prompt_tokens,
            output_tokens=out.usage_tokens if out.usage_tokens is not None else len(out.chunks),
            output_tokens_source="usage" if out.usage_tokens is not None else "chunks",
            error=out.error,
            warmup=False,
            reconnects=attempt,
        )

    async def _stream(self, body: bytes, t0: float, out: _Attempt) -> None:
        clock = time.perf_counter
        pending = b""
        async with contextlib.aclosing(self.pool.stream_post(self.path, body)) as parts:
            async for part in parts:
                if isinstance(part, Reply):
                    if part.status != 200:
                        text = b"".join([p async for p in parts if isinstance(p, bytes)])
                        out.error = f"HTTP {part.status}: {text[:160].decode(errors='replace')}".replace("\n", " ")
                        return
                    continue
                now = clock() - t0
                pending += part
                lines = pending.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        continue
                    event = parse_object(orjson.loads(payload))
                    if event.error is not None:
                        out.error = f"server error mid-stream: {event.error[:120]}"
                    elif event.text or event.tool_calls:
                        out.chunks.append(now)
                    if event.completion_tokens is not None:
                        out.usage_tokens = event.completion_tokens
                    if event.prompt_tokens is not None:
                        out.prompt_tokens = event.prompt_tokens


@dataclass(slots=True)
class _Attempt:
    """What one try of a request saw."""

    start: float
    chunks: list[float] = field(default_factory=list)
    usage_tokens: int | None = None
    prompt_tokens: int | None = None
    error: str | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else type(exc).__name__
