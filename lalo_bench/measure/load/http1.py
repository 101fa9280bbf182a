"""A minimal HTTP/1.1 client for streamed POSTs: the load generator's transport.

Why not aiohttp: its request and reply machinery cost about 0.36 ms and 0.2 ms
per request on these VMs, and that lands in every TTFT the load generator
reports. This client writes a pre-encoded request in one ``send`` and stamps
each network read as it arrives; it speaks just what OpenAI-compatible servers
answer with (a status line, headers, then a chunked or Content-Length body),
keeps connections alive and pools them per server.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection or the reply broke the protocol (not an HTTP error status)."""


class StaleConnection(HttpError):
    """A pooled connection was found closed before any byte of the reply came back."""


@dataclass
class Reply:
    """Status and headers of a reply whose body is still to be read."""

    status: int
    headers: dict[str, str]
    keep_alive: bool


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoder: feed raw bytes, get payload bytes."""

    def __init__(self) -> None:
        self.buf = b""
        self.need: int | None = None  # payload bytes still due in the current chunk
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out: list[bytes] = []
        while not self.done:
            if self.need is None:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    break
                size_text = self.buf[:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpError(f"bad chunk size {size_text[:20]!r}") from None
                self.buf = self.buf[end + 2 :]
                if size == 0:
                    self.done = True  # the trailer section (normally just CRLF) is not needed
                    break
                self.need = size
            if len(self.buf) < self.need + 2:
                if len(self.buf) > self.need:  # all payload, part of the CRLF
                    out.append(self.buf[: self.need])
                    self.buf, self.need = self.buf[self.need :], 0
                elif self.buf and self.need:
                    out.append(self.buf)
                    self.need -= len(self.buf)
                    self.buf = b""
                break
            out.append(self.buf[: self.need])
            self.buf = self.buf[self.need + 2 :]
            self.need = None
        return b"".join(out)


@dataclass
class Http1Pool:
    """Kept-alive connections to one server; ``stream_post`` yields body bytes as they arrive."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    keep_alive: bool = True
    _idle: list[_Conn] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {self.base_url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/")
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self._head = f"Host: {host_header}\r\nContent-Type: application/json\r\nAccept: */*\r\n{extra}"

    def request_bytes(self, path: str, body: bytes) -> bytes:
        connection = "" if self.keep_alive else "Connection: close\r\n"
        head = f"POST {self.prefix}{path} HTTP/1.1\r\n{self._head}{connection}Content-Length: {len(body)}\r\n\r\n"
        return head.encode("latin-1") + body

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=2**20)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # no Nagle delay on the request; every loop sets this, not every loop documents it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    async def stream_post(self, path: str, body: bytes) -> AsyncIterator[Reply | bytes]:
        """Yield the :class:`Reply` first, then each piece of body bytes as it arrives."""
        conn = self._idle.pop() if self._idle else await self._connect()
        reused = conn.reused
        reusable = False
        try:
            conn.writer.write(self.request_bytes(path, body))
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if reused:
                    raise StaleConnection("server closed the kept-alive connection") from exc
                raise HttpError(f"connection closed before a reply ({type(exc).__name__})") from exc
            reply = _parse_head(head)
            yield reply
            reader = conn.reader
            if reply.headers.get("transfer-encoding", "").lower() == "chunked":
                decoder = ChunkedDecoder()
                while not decoder.done:
                    data = await reader.read(65536)
                    if not data:
                        raise HttpError("connection closed mid-reply")
                    payload = decoder.feed(data)
                    if payload:
                        yield payload
                reusable = reply.keep_alive and not decoder.buf.strip()
            elif "content-length" in reply.headers:
                left = int(reply.headers["content-length"])
                while left > 0:
                    data = await reader.read(min(left, 65536))
                    if not data:
                        raise HttpError("connection closed mid-reply")
                    left -= len(data)
                    yield data
                reusable = reply.keep_alive
            else:  # body runs until the server closes
                while data := await reader.read(65536):
                    yield data
        finally:
            if reusable and self.keep_alive:
                conn.reused = True
                self._idle.append(conn)
            else:
                conn.writer.close()

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.writer.close()


def _parse_head(head: bytes) -> Reply:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError(f"not an HTTP reply: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    version = parts[0]
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Reply(status=int(parts[1]), headers=headers, keep_alive=keep_alive)
