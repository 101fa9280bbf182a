"""The servers behind the gateway: one pooled HTTP client each, health, and opening a request that can fall back.

A request is *committed* to an upstream once its first byte of answer (the first stream event, or the whole
body) has arrived: before that, any failure — refused connection, 5xx, 429, a timeout to the first token — moves
the request to the next model of the fallback list; after it, a failure ends the stream with an error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import orjson

from lalo_bench.gateway.settings import CloudFallback, Limits, UpstreamSpec

RETRYABLE = {408, 429}
DONE = b"data: [DONE]"


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

    @property
    def name(self) -> str:
        return self.spec.name

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.spec.api_key:
            headers["Authorization"] = f"Bearer {self.spec.api_key}"
        return headers

    async def check(self) -> bool:
        """``GET /models`` within 2 s: the server is up and answering."""
        try:
            async with self.session.get(
                f"{self.spec.url}/models", headers=self._headers(), timeout=aiohttp.ClientTimeout(total=2.0)
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

    async def open(self, path: str, payload: dict, stream: bool) -> Opened:
        """Send the request and wait for its first event (or whole body); raise :class:`UpstreamFailed` if none."""
        body = orjson.dumps({**payload, "model": self.spec.served_model})
        timeout = aiohttp.ClientTimeout(total=self.limits.request_timeout_s, sock_connect=self.limits.connect_timeout_s)
        loop = asyncio.get_running_loop()
        first_by = loop.time() + self.limits.first_token_timeout_s
        post = self.session.post(f"{self.spec.url}{path}", data=body, headers=self._headers(), timeout=timeout)
        try:  # streaming: the response's headers count against the first-token timeout too
            resp = await (asyncio.wait_for(post, self.limits.first_token_timeout_s) if stream else post)
        except TimeoutError as exc:
            why = f"no first token within {self.limits.first_token_timeout_s:g} s" if stream else _reason(exc)
            raise self._down(why) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._down(_reason(exc)) from None
        if resp.status >= 500 or resp.status in RETRYABLE:
            # The server is up and answered: try the next model, but do not mark this one down (one bad request
            # that a server answers with 500 must not take every upstream out of rotation).
            text = await _text(resp)
            self.last_error = f"HTTP {resp.status}: {text}"
            raise UpstreamFailed(f"{self.name}: {self.last_error}")
        if resp.status != 200:  # the request's own fault (context too long, bad parameter): the client's to see
            data = await resp.read()
            resp.release()
            return Opened(self, resp.status, first=data, response=None)
        try:
            if not stream:
                data = await asyncio.wait_for(resp.read(), self.limits.request_timeout_s)
                resp.release()
                self.healthy = True
                return Opened(self, 200, first=data, response=None)
            first = await asyncio.wait_for(_first_event(resp), max(first_by - loop.time(), 0.001))
        except TimeoutError:
            resp.close()
            raise self._down(f"no first token within {self.limits.first_token_timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise self._down(_reason(exc)) from None
        if first is None:
            resp.close()
            raise self._down("closed the stream before its first event")
        self.healthy = True
        return Opened(self, 200, first=first, response=resp)


@dataclass
class Opened:
    """An upstream that answered: its status, the first event (or whole body), and the rest of the stream."""

    upstream: Upstream
    status: int
    first: bytes
    response: aiohttp.ClientResponse | None

    async def rest(self) -> AsyncIterator[bytes]:
        """The stream after the first event, as raw chunks; ends with an error event if it breaks."""
        resp = self.response
        if resp is None:
            return
        tail = b""
        try:
            async for chunk in resp.content.iter_any():
                tail = (tail + chunk)[-64:]
                yield chunk
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.upstream.healthy, self.upstream.last_error = False, _reason(exc)
            raise StreamBroken(f"{self.upstream.name} failed mid-stream: {_reason(exc)}") from None
        finally:
            resp.release()
        if DONE not in tail and DONE not in self.first:
            self.upstream.last_error = "stream ended without [DONE]"
            raise StreamBroken(f"{self.upstream.name} closed the stream before it finished")

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


class StreamBroken(Exception):
    """The upstream failed after the client had part of the answer: the stream ends with an error event."""


async def _first_event(resp: aiohttp.ClientResponse) -> bytes | None:
    """Read up to the end of the first SSE event (a blank line); None if the stream closes first."""
    buf = b""
    while b"\n\n" not in buf:
        chunk = await resp.content.readany()
        if not chunk:
            return None
        buf += chunk
    return buf


async def _text(resp: aiohttp.ClientResponse) -> str:
    try:
        text = (await resp.read()).decode("utf-8", "replace")
    except (aiohttp.ClientError, OSError):
        text = ""
    resp.release()
    return " ".join(text.split())[:200]


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
