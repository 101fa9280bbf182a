"""Any OpenAI-compatible server as a :class:`~lalo_bench.backends.base.Backend`.

One class reaches vLLM, llama.cpp's server, Ollama, SGLang or a hosted API:
the base URL ends in ``/v1``. Connection failures become one-line
:class:`~lalo_bench.errors.BackendError` messages that name the URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import requests

from lalo_bench.backends.base import GenerationRequest, StreamChunk
from lalo_bench.backends.openai_protocol import (
    ENDPOINTS,
    Api,
    ToolCallPart,
    parse_data_line,
    request_body,
    tool_calls_as_text,
)
from lalo_bench.errors import BackendError


def normalize_base_url(url: str) -> str:
    """``http://host:port`` and ``…/v1/`` both become ``…/v1``, the form every endpoint is joined to."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def auth_headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


class OpenAIHttpBackend:
    """Streams chat (or completions) from a server; one output token per content chunk unless usage says more."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api: Api = "chat",
        api_key: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.api = api
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers.update(auth_headers(api_key))
        # A proxy from the environment must not capture a server on this machine.
        self.session.trust_env = not is_loopback(self.base_url)

    def models(self) -> list[str]:
        """The model ids the server offers (``GET /v1/models``)."""
        reply = self._get("/models")
        return [m.get("id", "") for m in reply.get("data", [])]

    def _get(self, path: str) -> dict[str, Any]:
        try:
            resp = self.session.get(self.base_url + path, timeout=10)
        except requests.RequestException as exc:
            raise BackendError(f"cannot reach {self.base_url}: {_reason(exc)}; is the server running?") from exc
        if resp.status_code != 200:
            raise BackendError(f"{self.base_url}{path} answered HTTP {resp.status_code}: {resp.text[:120]}")
        return resp.json()

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        body = request_body(request, self.model, self.api, stream=True)
        url = self.base_url + ENDPOINTS[self.api]
        try:
            resp = self.session.post(url, json=body, stream=True, timeout=(10, self.timeout_s))
        except requests.RequestException as exc:
            raise BackendError(f"cannot reach {url}: {_reason(exc)}; is the server running?") from exc
        with resp:
            if resp.status_code != 200:
                raise BackendError(f"{url} answered HTTP {resp.status_code}: {resp.text[:160]}")
            yield from self._chunks(resp.iter_lines(chunk_size=None))  # as they arrive, not per 512 bytes

    def _chunks(self, lines: Iterator[bytes]) -> Iterator[StreamChunk]:
        content_chunks = 0
        calls: list[ToolCallPart] = []
        finish: str | None = None
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        for line in lines:
            event = parse_data_line(line)
            if event is None:
                continue
            if event.error:
                raise BackendError(f"{self.base_url}: server reported an error mid-stream: {event.error}")
            if event.done:
                break
            calls.extend(event.tool_calls)
            prompt_tokens = event.prompt_tokens if event.prompt_tokens is not None else prompt_tokens
            completion_tokens = event.completion_tokens if event.completion_tokens is not None else completion_tokens
            finish = event.finish_reason or finish
            if event.has_content:
                content_chunks += 1
                yield StreamChunk(text=event.text, tokens=1)
        # A closing chunk with no new tokens: usage-reported tokens beyond the chunks seen, structured calls as text.
        extra = max((completion_tokens or 0) - content_chunks, 0)
        text = tool_calls_as_text(calls) if calls else ""
        yield StreamChunk(text=text, tokens=extra, finish_reason=finish, prompt_tokens=prompt_tokens)

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Max retries exceeded"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:120] if text else type(exc).__name__
