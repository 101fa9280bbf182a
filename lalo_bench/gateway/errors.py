"""OpenAI-style error bodies: what any OpenAI client expects to parse on a 4xx or 5xx."""

from __future__ import annotations

from typing import Any

import orjson


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_bytes(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps(error_body(message, type_, code, param))


def sse_error(message: str, type_: str = "upstream_error", code: str | None = None) -> bytes:
    """An error event in a stream: the openai client raises it as an APIError instead of waiting."""
    return b"data: " + error_bytes(message, type_, code) + b"\n\n"


class GatewayError(Exception):
    """A request the gateway refuses or cannot serve: an HTTP status and an OpenAI error body."""

    def __init__(self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> bytes:
        return error_bytes(self.message, self.type, self.code, self.param)
