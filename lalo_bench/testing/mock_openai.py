"""A tiny OpenAI-compatible server with exact, injected timing — for measuring the measurer.

It streams ``max_tokens`` one-token chunks per request, the first ``ttft_ms``
after the request arrived and each next one ``itl_ms`` later, on an absolute
schedule (no drift). Used only where a test or benchmark needs known timings
(to check lalo-bench's own clock) or injected faults; every real figure comes
from real servers.

Timers run on ``select()`` rather than epoll, whose millisecond timeouts would
add up to 1 ms to every delay, and a timed mock busy-polls (see :func:`busy_poll`). Run it as::

    python -m lalo_bench.testing.mock_openai --port 8100 --ttft-ms 50 --itl-ms 10

``--log FILE`` writes, per streamed request, when it arrived and when each chunk left (``time.perf_counter``,
the machine's monotonic clock, shared with the client's process): what the server really did, so a test can
hold the client's stamps against it even where the VM wakes the mock late.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lalo_bench.measure.timing import busy_poll
from lalo_bench.serving.process import ServerProcess, free_port

MODEL = "mock"


@dataclass(frozen=True)
class Timing:
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    fail_every: int = 0
    """Every n-th request is answered with HTTP 500 (0: never) — an injected fault."""
    close_after_stream: bool = False
    """Drop the connection after each streamed reply without announcing it, as llama.cpp's llama-server does."""
    drop_after: int = 0
    """Streamed replies stop after this many chunks: the connection closes with no ``[DONE]`` and no end of the
    chunked body, as when a server dies mid-answer (0: never) — an injected fault."""
    hang: bool = False
    """Completion requests are read and never answered (the connection stays open) — an injected fault."""
    echo: bool = False
    """Whole (not streamed) replies carry ``echo: {"headers", "body"}``, the request as the mock received it."""


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(obj: dict) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def _delta(api: str, text: str, finish: str | None) -> dict:
    if api == "chat":
        choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        return {"id": "m", "object": "chat.completion.chunk", "model": MODEL, "choices": [choice]}
    return {
        "id": "m",
        "object": "text_completion",
        "model": MODEL,
        "choices": [{"index": 0, "text": text, "finish_reason": finish}],
    }


def _json_response(writer: asyncio.StreamWriter, status: str, obj: object) -> None:
    payload = json.dumps(obj).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    writer.write(head.encode() + payload)


def _usage(n: int) -> dict[str, int]:
    return {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}


class MockServer:
    def __init__(self, timing: Timing, log: Path | None = None) -> None:
        self.timing = timing
        self.count = 0
        self.log = log.open("a", buffering=1, encoding="utf-8") if log else None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                streamed = await self.respond(method, path, body, arrived, writer, headers)
                if streamed and self.timing.close_after_stream:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def respond(
        self,
        method: str,
        path: str,
        body: bytes,
        arrived: float,
        writer: asyncio.StreamWriter,
        headers: dict[str, str] | None = None,
    ) -> bool:
        """Answer one request; True when the reply was streamed."""
        if method == "GET" and path.rstrip("/") in ("/v1/models", "/health"):
            _json_response(writer, "200 OK", {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            return False
        api = "chat" if path.endswith("/chat/completions") else "completions" if path.endswith("/completions") else None
        if method != "POST" or api is None:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return False
        self.count += 1
        if self.timing.hang:
            await asyncio.Event().wait()  # until the client gives up and the server is stopped
        if self.timing.fail_every and self.count % self.timing.fail_every == 0:
            _json_response(writer, "500 Internal Server Error", {"error": {"message": "injected fault"}})
            return False
        req = json.loads(body)
        n = int(req.get("max_tokens") or req.get("max_completion_tokens") or 16)
        usage = (req.get("stream_options") or {}).get("include_usage", False)
        if not req.get("stream"):
            await self._sleep_until(arrived + (self.timing.ttft_ms + (n - 1) * self.timing.itl_ms) / 1000)
            reply = _delta(api, "tok " * n, "length")
            if api == "chat":
                reply["choices"][0]["message"] = {"role": "assistant", "content": "tok " * n}
                del reply["choices"][0]["delta"]
            reply["usage"] = _usage(n)
            if self.timing.echo:
                reply["echo"] = {"headers": headers or {}, "body": req}
            _json_response(writer, "200 OK", reply)
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent: list[float] = []
        for i in range(n):
            await self._sleep_until(arrived + (self.timing.ttft_ms + i * self.timing.itl_ms) / 1000)
            if writer.is_closing():  # the client hung up (e.g. cut off at its deadline)
                return True
            if self.timing.drop_after and i == self.timing.drop_after:
                await writer.drain()
                await asyncio.sleep(0.2)  # the chunks sent are read before the reset, which may discard them
                writer.transport.abort()  # mid-answer: no [DONE], no terminating chunk
                raise ConnectionResetError("injected drop")
            writer.write(_event(_delta(api, "tok ", "length" if i == n - 1 else None)))
            sent.append(time.perf_counter())
        if usage:
            writer.write(_event({"id": "m", "model": MODEL, "choices": [], "usage": _usage(n)}))
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        if self.log:
            self.log.write(json.dumps({"seed": req.get("seed"), "arrived": arrived, "sent": sent}) + "\n")
        return True

    @staticmethod
    async def _sleep_until(when: float) -> None:
        delay = when - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def serve(host: str, port: int, timing: Timing, log: Path | None = None, spin: bool = True) -> None:
    """``spin=False`` lets a timed mock sleep between events: delays then run up to a millisecond late, and it spares
    the core that busy-polling burns (for tests that need slow answers, not exact ones)."""
    server = await asyncio.start_server(MockServer(timing, log).handle, host, port, backlog=1024, reuse_address=True)
    hot = asyncio.create_task(busy_poll()) if spin and (timing.ttft_ms or timing.itl_ms) else None
    async with server:
        await server.serve_forever()
    if hot is not None:
        hot.cancel()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ttft-ms", type=float, default=0.0)
    ap.add_argument("--itl-ms", type=float, default=0.0)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--close-after-stream", action="store_true")
    ap.add_argument("--drop-after", type=int, default=0, help="streams: drop the connection after N chunks")
    ap.add_argument("--hang", action="store_true", help="never answer completion requests")
    ap.add_argument("--echo", action="store_true", help="whole replies carry the request's headers and body")
    ap.add_argument("--no-busy-poll", action="store_true", help="sleep between events instead of spinning a core")
    ap.add_argument("--log", type=Path, help="JSON lines: arrival and chunk send times per streamed request")
    args = ap.parse_args(argv)
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    timing = Timing(
        args.ttft_ms, args.itl_ms, args.fail_every, args.close_after_stream, args.drop_after, args.hang, args.echo
    )
    loop.run_until_complete(serve(args.host, args.port, timing, args.log, spin=not args.no_busy_poll))


@contextlib.contextmanager
def running_mock(
    ttft_ms: float = 0.0,
    itl_ms: float = 0.0,
    fail_every: int = 0,
    close_after_stream: bool = False,
    log: Path | None = None,
    drop_after: int = 0,
    hang: bool = False,
    busy_poll: bool = True,
    echo: bool = False,
) -> Iterator[str]:
    """Start the mock in its own process (its own core and event loop); yields the base URL ending in /v1.

    Started, health-checked and stopped like any server lalo-bench launches (:class:`ServerProcess`).
    ``drop_after`` and ``hang`` inject faults, ``echo`` returns what the mock received (see :class:`Timing`);
    ``busy_poll=False`` spares a core where slow answers matter but their exact timing does not.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "lalo_bench.testing.mock_openai", "--port", str(port)]
    cmd += ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--fail-every", str(fail_every)]
    cmd += ["--close-after-stream"] if close_after_stream else []
    cmd += ["--drop-after", str(drop_after)] if drop_after else []
    cmd += ["--hang"] if hang else []
    cmd += ["--echo"] if echo else []
    cmd += [] if busy_poll else ["--no-busy-poll"]
    cmd += ["--log", str(log)] if log else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (
        tempfile.TemporaryDirectory(prefix="lalo-mock-") as tmp,
        ServerProcess("timing mock", cmd, port, Path(tmp) / "mock.log", env=env, ready_timeout_s=20) as server,
    ):
        yield server.base_url


if __name__ == "__main__":
    main()
