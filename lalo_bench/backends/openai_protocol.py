"""The OpenAI wire format, spoken by vLLM, llama.cpp's server, Ollama, SGLang and hosted APIs.

Kept apart from any HTTP client so the synchronous backend (suites) and the
asynchronous load generator build the same request bodies and read the same
server-sent events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from lalo_bench.backends.base import GenerationRequest

Api = Literal["chat", "completions"]
ENDPOINTS: dict[str, str] = {"chat": "/chat/completions", "completions": "/completions"}


@dataclass(slots=True)
class ToolCallPart:
    """A streamed fragment of a structured tool call; fragments with one ``index`` concatenate."""

    index: int = 0
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class StreamEvent:
    """What one ``data:`` line of the stream says (a slotted dataclass: it is built once per token)."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_calls: list[ToolCallPart] = field(default_factory=list)
    error: str | None = None
    done: bool = False

    @property
    def has_content(self) -> bool:
        return bool(self.text) or bool(self.tool_calls)


def request_body(
    request: GenerationRequest,
    model: str,
    api: Api = "chat",
    stream: bool = True,
    ignore_eos: bool = False,
) -> dict[str, Any]:
    """JSON body for ``request``; ``ignore_eos`` (vLLM, llama.cpp) makes replies run to ``max_tokens``.

    With ``ignore_eos`` (benchmark mode) special tokens are also rendered (``skip_special_tokens: false``, vLLM and
    SGLang; llama.cpp ignores it): a reply of special tokens — common from synthetic or dummy weights — would
    otherwise stream no text at all, and no chunk means no TTFT or ITL.
    """
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "stream": stream,
    }
    if api == "chat":
        body["messages"] = [m.model_dump() for m in request.messages]
        if request.tools:
            body["tools"] = request.tools
    else:
        body["prompt"] = "\n\n".join(m.content for m in request.messages)
    if request.stop:
        body["stop"] = request.stop
    if stream:
        body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True
        body["skip_special_tokens"] = False
    return body


def parse_data_line(line: bytes | str) -> StreamEvent | None:
    """Parse one line of a server-sent event stream; ``None`` for blank lines, comments and other fields."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return StreamEvent(done=True)
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        return StreamEvent(error=f"unreadable stream event: {payload[:80]}")
    return parse_object(obj)


def parse_object(obj: Any) -> StreamEvent:
    """Read a chat or completions chunk (or a whole non-streamed reply)."""
    if not isinstance(obj, dict):
        return StreamEvent(error="stream event is not a JSON object")
    if "error" in obj:
        err = obj["error"]
        return StreamEvent(error=str(err.get("message", err) if isinstance(err, dict) else err))
    event = StreamEvent()
    usage = obj.get("usage")
    if isinstance(usage, dict):
        event.prompt_tokens = usage.get("prompt_tokens")
        event.completion_tokens = usage.get("completion_tokens")
    choices = obj.get("choices") or []
    if choices:
        choice = choices[0]
        event.finish_reason = choice.get("finish_reason")
        delta = choice.get("delta") or choice.get("message")
        if delta is not None:
            event.text = delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") or {}
                event.tool_calls.append(
                    ToolCallPart(index=call.get("index", 0), name=fn.get("name"), arguments=fn.get("arguments") or "")
                )
        else:
            event.text = choice.get("text") or ""
    return event


def tool_calls_as_text(parts: list[ToolCallPart]) -> str:
    """Structured calls rendered as ``<tool_call>`` tags, the form the tool-call suite's parser reads."""
    calls: dict[int, dict[str, str]] = {}
    for part in parts:
        call = calls.setdefault(part.index, {"name": "", "arguments": ""})
        if part.name:
            call["name"] += part.name
        call["arguments"] += part.arguments
    rendered = []
    for call in calls.values():
        try:
            args: Any = json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError:
            args = call["arguments"]
        rendered.append(f"<tool_call>{json.dumps({'name': call['name'], 'arguments': args})}</tool_call>")
    return "\n".join(rendered)
