"""The gateway's front door, before any parsing: the API key and the body-size cap, as one ASGI middleware.

Checking here (not in a FastAPI dependency) means a client without the key never gets its body read or parsed,
and an oversized body is cut off while it streams in, not after it has been buffered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lalo_bench.gateway.errors import error_bytes
from lalo_bench.gateway.keys import matches

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/health", "/openapi.json")  # liveness and the API schema: nothing secret


class BodyTooLarge(Exception):
    pass


async def send_error(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *(headers or [])],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, key: Callable[[], str], max_body_bytes: int) -> None:
        self.app, self.key, self.max_body_bytes = app, key, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not matches(token, self.key()):
            why = "missing API key" if token is None else "wrong API key"
            body = error_bytes(f"{why}: send 'Authorization: Bearer <key>'", "invalid_request_error", "invalid_api_key")
            await send_error(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, error_bytes("bad Content-Length header", "invalid_request_error"))
                return
            if declared > self.max_body_bytes:
                await self._too_large(send)
                return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = error_bytes(
            f"request body over {self.max_body_bytes} bytes", "invalid_request_error", "request_too_large"
        )
        await send_error(send, 413, body)
