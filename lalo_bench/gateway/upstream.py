"""The servers behind the gateway: one pooled HTTP client each, health, and opening a request that can fall back.

A request is *committed* to an upstream once its first byte of answer (the first stream event, or the whole
body) has arrived: before that, any failure — refused connection, 5xx, 429, a timeout to the first token — moves
the request to the next model of the fallback list; after it, a failure ends the stream with an error event.

Completions go over the load generator's own HTTP/1.1 client (:mod:`lalo_bench.measure.load.http1`: one
pre-encoded write per request, kept-alive connections), which costs a fraction of aiohttp's per-request work on
the hot path; aiohttp is kept for the health checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import orjson

from lalo_bench.gateway.settings import CloudFallback, Limits, UpstreamSpec
from lalo_bench.measure.load.http1 import Http1Pool, HttpError, Reply, StaleConnection

RETRYABLE = {408, 429}
DONE = b"data: [DONE]"
Body = AsyncGenerator["Reply | bytes", None]


class UpstreamFailed(Exception):
    """An upstream failed before the client saw anything: the next one may be tried."""


@dataclass
class Upstream:
    spec: UpstreamSpec
    session: aiohttp.ClientSession
    limits: Limits
    healthy: bool = True
    last_error: str | None = None
    checked_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._auth = {"Authorization": f"Bearer {self.spec.api_key}"} if self.spec.api_key else {}
        self.pool = Http1Pool(self.spec.url, headers=self._auth)

    @property
    def name(self) -> str:
        return self.spec.name

    async def check(self) -> bool:
        """``GET /models`` within 2 s: the server is up and answering."""
        try:
            async with self.session.get(
                f"{self.spec.url}/models", headers=self._auth, timeout=aiohttp.ClientTimeout(total=2.0)
            ) as resp:
                self.healthy = resp.status == 200
                self.last_error = None if self.healthy else f"HTTP {resp.status} on /models"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.healthy, self.last_error = False, _reason(exc)
        self.checked_at = time.monotonic()
        return self.healthy

    def _down(self, reason: str) -> UpstreamFailed:
        self.healthy, self.last_error = False, reason
        return UpstreamFailed(f"{self.name}: {reason}")

    async def _post(self, path: str, body: bytes) -> tuple[Reply, Body]:
        """Send on a kept-alive connection (once more on a fresh one if the server had closed it)."""
        for _ in range(2):
            gen = self.pool.stream_post(path, body)
            try:
                reply = await anext(gen)
            except StaleConnection:
                await gen.aclose()
                continue
            except BaseException:
                await gen.aclose()
                raise
            assert isinstance(reply, Reply)
            return reply, gen
        raise HttpError("the server closed two connections in a row before replying")

    async def open(self, path: str, payload: dict, stream: bool) -> Opened:
        """Send the request and wait for its first event (or whole body); raise :class:`UpstreamFailed` if none.

        A stream's first event is due within the first-token timeout, connecting and the response headers
        included; a whole body and a whole stream within the request timeout.
        """
        body = orjson.dumps({**payload, "model": self.spec.served_model})
        now = asyncio.get_running_loop().time()
        deadline = now + self.limits.request_timeout_s
        first_by = now + self.limits.first_token_timeout_s if stream else deadline
        gen: Body | None = None
        try:
            async with asyncio.timeout_at(first_by):  # one timer per request (asyncio.wait_for costs a task each)
                reply, gen = await self._post(path, body)
                if reply.status >= 500 or reply.status in RETRYABLE:
                    # The server is up and answered: try the next model, but do not mark this one down (one bad
                    # request that a server answers with 500 must not take every upstream out of rotation).
                    text = " ".join((await _drain(gen)).decode("utf-8", "replace").split())[:200]
                    self.last_error = f"HTTP {reply.status}: {text}"
                    raise UpstreamFailed(f"{self.name}: {self.last_error}")
                if reply.status != 200 or not stream:  # a non-200 is the request's own fault: the client's to see
                    data = await _drain(gen)
                    self.healthy = self.healthy or reply.status == 200
                    return Opened(self, reply.status, first=data)
                first = await _first_event(gen)
        except TimeoutError as exc:
            await _close(gen)
            why = f"no first token within {self.limits.first_token_timeout_s:g} s" if stream else _reason(exc)
            raise self._down(why) from None
        except (HttpError, OSError) as exc:
            await _close(gen)
            raise self._down(_reason(exc)) from None
        except UpstreamFailed:
            await _close(gen)
            raise
        if first is None:
            await _close(gen)
            raise self._down("closed the stream before its first event")
        self.healthy = True
        return Opened(self, 200, first=first, stream=gen, deadline=deadline)


@dataclass
class Opened:
    """An upstream that answered: its status, the first event (or whole body), and the rest of the stream."""

    upstream: Upstream
    status: int
    first: bytes
    stream: Body | None = None
    deadline: float = 0.0

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    async def rest(self) -> AsyncIterator[bytes]:
        """The stream after the first event, as raw chunks; ends with :class:`StreamBroken` if it breaks."""
        it = self.stream
        if it is None:
            return
        tail = b""
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self.deadline):  # scoped to the read, never across a yield
                        chunk = await anext(it)
                except StopAsyncIteration:
                    break
                assert isinstance(chunk, bytes)
                tail = (tail + chunk)[-64:]
                yield chunk
        except (HttpError, OSError, TimeoutError) as exc:
            self.upstream.healthy, self.upstream.last_error = False, _reason(exc)
            raise StreamBroken(f"{self.upstream.name} failed mid-stream: {_reason(exc)}") from None
        finally:
            await it.aclose()
        if DONE not in tail and DONE not in self.first:
            self.upstream.last_error = "stream ended without [DONE]"
            raise StreamBroken(f"{self.upstream.name} closed the stream before it finished")

    async def aclose(self) -> None:
        await _close(self.stream)


class StreamBroken(Exception):
    """The upstream failed after the client had part of the answer: the stream ends with an error event."""


async def _first_event(gen: Body) -> bytes | None:
    """Read up to the end of the first SSE event (a blank line); None if the stream closes first."""
    buf = b""
    async for data in gen:
        assert isinstance(data, bytes)
        buf += data
        if b"\n\n" in buf:
            return buf
    return None


async def _drain(gen: Body) -> bytes:
    return b"".join([d async for d in gen if isinstance(d, bytes)])


async def _close(gen: Body | None) -> None:
    if gen is not None:
        await gen.aclose()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def cloud_upstream(cloud: CloudFallback, session: aiohttp.ClientSession, limits: Limits) -> Upstream:
    return Upstream(
        UpstreamSpec(name=f"cloud:{cloud.model}", url=cloud.url.rstrip("/"), served_model=cloud.model,
                     api_key=cloud.api_key),
        session,
        limits,
    )  # fmt: skip
