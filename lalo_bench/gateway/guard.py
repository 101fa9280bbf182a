"""The gateway's front door, before any parsing: the API key and the body-size cap.

Checked on the raw ASGI scope, so a client without the key never gets its body read or parsed, and an oversized
body is cut off while it streams in, not after it has been buffered.
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


def refusal(headers: dict[bytes, bytes], key: str, max_body_bytes: int) -> tuple[int, bytes, list] | None:
    """Why a request is refused before its body is read (status, body, headers), or None to go on."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    if not matches(token, key):
        why = "missing API key" if token is None else "wrong API key"
        body = error_bytes(f"{why}: send 'Authorization: Bearer <key>'", "invalid_request_error", "invalid_api_key")
        return 401, body, [(b"www-authenticate", b"Bearer")]
    length = headers.get(b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            return 400, error_bytes("bad Content-Length header", "invalid_request_error"), []
        if declared > max_body_bytes:
            return 413, too_large_body(max_body_bytes), []
    return None


def too_large_body(max_body_bytes: int) -> bytes:
    return error_bytes(f"request body over {max_body_bytes} bytes", "invalid_request_error", "request_too_large")


def limited(receive: Receive, max_body_bytes: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once more than the cap has arrived."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise BodyTooLarge
        return message

    return wrapped


async def read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away while sending its body")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)
