"""The load generator's HTTP client: one streamed request in, one :class:`RequestRecord` out.

Asynchronous (aiohttp) so one process keeps hundreds of streams open. Each
network read is stamped once on arrival; every content event in that read gets
that stamp. Bodies arrive pre-encoded, so the timed path holds only the send,
the reads and a JSON parse per event (orjson: the stdlib parser was a third of the client's time).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from lalo_bench.backends.openai_http import auth_headers, normalize_base_url
from lalo_bench.backends.openai_protocol import ENDPOINTS, Api, parse_object
from lalo_bench.load.schemas import RequestRecord


class LoadClient:
    """Holds one connection pool to the server; use as ``async with``."""

    def __init__(self, base_url: str, api: Api = "chat", api_key: str | None = None, timeout_s: float = 600.0) -> None:
        self.url = normalize_base_url(base_url) + ENDPOINTS[api]
        self.headers = {"Content-Type": "application/json", **auth_headers(api_key)}
        self.timeout_s = timeout_s
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
        """Send one request; failures are recorded on the record, never raised."""
        assert self.session is not None, "use LoadClient as an async context manager"
        clock = time.perf_counter
        chunks: list[float] = []
        usage_tokens: int | None = None
        prompt_tokens: int | None = None
        error: str | None = None
        start = clock()
        try:
            async with self.session.post(self.url, data=body) as resp:
                if resp.status != 200:
                    text = (await resp.text())[:160].replace("\n", " ")
                    error = f"HTTP {resp.status}: {text}"
                else:
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
                                error = f"server error mid-stream: {event.error[:120]}"
                            elif event.text or event.tool_calls:
                                chunks.append(now)
                            if event.completion_tokens is not None:
                                usage_tokens = event.completion_tokens
                            if event.prompt_tokens is not None:
                                prompt_tokens = event.prompt_tokens
                    if error is None and not chunks:
                        error = "stream ended without any output"
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else type(exc).__name__
        end = clock() - t0
        return RequestRecord.model_construct(
            index=index,
            scheduled_s=scheduled_s,
            start_s=start - t0,
            chunk_times_s=chunks,
            end_s=end,
            prompt_tokens=prompt_tokens,
            output_tokens=usage_tokens if usage_tokens is not None else len(chunks),
            output_tokens_source="usage" if usage_tokens is not None else "chunks",
            error=error,
            warmup=False,
        )
