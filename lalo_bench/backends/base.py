"""The one small protocol every backend speaks.

A backend only streams text chunks; timing is taken by the caller
(:func:`lalo_bench.measure.timing.timed_generate`) so every backend is
measured by the same clock in the same place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class GenerationRequest(BaseModel):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.0, ge=0)
    seed: int = 0
    stop: list[str] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="OpenAI-format tool definitions, rendered by the backend's native tool calling"
    )


class StreamChunk(BaseModel):
    """A piece of the reply as it arrives; ``tokens`` is how many output tokens it carries."""

    text: str = ""
    tokens: int = 1
    finish_reason: str | None = None
    prompt_tokens: int | None = Field(default=None, description="set on the chunk that knows it")


@runtime_checkable
class Backend(Protocol):
    """A loaded model that streams completions for chat requests."""

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]: ...

    def close(self) -> None: ...
