"""The load generator's HTTP client: one streamed request in, one :class:`RequestRecord` out.

Asynchronous (aiohttp) so one process keeps hundreds of streams open. Each
network read is stamped once on arrival; every content event in that read gets
that stamp. Bodies arrive pre-encoded, so the timed path holds only the send,
the reads and a JSON parse per event (orjson: the stdlib parser was a third of the client's time).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from lalo_bench.backends.openai_http import auth_headers, normalize_base_url
from lalo_bench.backends.openai_protocol import ENDPOINTS, Api, parse_object
from lalo_bench.measure.load.schemas import RequestRecord


class LoadClient:
    """Holds one connection pool to the server; use as ``async with``."""

    def __init__(self, base_url: str, api: Api = "chat", api_key: str | None = None, timeout_s: float = 600.0) -> None:
        self.url = normalize_base_url(base_url) + ENDPOINTS[api]
        self.headers = {"Content-Type": "application/json", **auth_headers(api_key)}
        self.timeout_s = timeout_s
        self.keep_alive = True
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LoadClient:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=10),
            headers=self.headers,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def send(self, index: int, body: bytes, t0: float, scheduled_s: float | None = None) -> RequestRecord:
        """Send one request; failures are recorded on the record, never raised.

        Some servers (llama.cpp's ``llama-server``) close a kept-alive connection after a
        streamed reply without saying so. A request that finds its pooled connection dead
        before any byte of reply came back is sent again, with a fresh clock, and the record
        counts the reconnect; from then on every request asks for its own connection
        (``Connection: close``), as such a server wants. Anything else is the server's
        failure and stays one.
        """
        assert self.session is not None, "use LoadClient as an async context manager"
        for attempt in range(STALE_RETRIES + 1):
            out = _Attempt(start=time.perf_counter())
            try:
                await self._stream(body, t0, out)
            except asyncio.CancelledError:
                raise
            except aiohttp.ClientConnectorError as exc:  # nothing listening: the server's failure, not a stale pool
                out.error = _describe(exc)
            except STALE_CONNECTION as exc:
                if not out.responded and attempt < STALE_RETRIES:
                    self.keep_alive = False  # this server drops connections: stop pooling them
                    continue
                out.error = _describe(exc)
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                out.error = _describe(exc)
            break
        if out.error is None and not out.chunks:
            out.error = "stream ended without any output"
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
        assert self.session is not None
        clock = time.perf_counter
        headers = None if self.keep_alive else CLOSE
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            out.responded = True
            if resp.status != 200:
                text = (await resp.text())[:160].replace("\n", " ")
                out.error = f"HTTP {resp.status}: {text}"
                return
            pending = b""
            async for data in resp.content.iter_any():
                now = clock() - t0
                pending += data
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


STALE_RETRIES = 32
"""Enough to drain every dead connection a pool of the largest usual concurrency can hold."""
CLOSE = {"Connection": "close"}
STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


@dataclass(slots=True)
class _Attempt:
    """What one try of a request saw."""

    start: float
    responded: bool = False
    chunks: list[float] = field(default_factory=list)
    usage_tokens: int | None = None
    prompt_tokens: int | None = None
    error: str | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else type(exc).__name__
