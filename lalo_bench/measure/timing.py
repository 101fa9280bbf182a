"""Drive a backend's stream and stamp every token with one clock."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from lalo_bench.backends.base import Backend, GenerationRequest
from lalo_bench.measure.metrics import RequestTiming


class Generation(BaseModel):
    """A finished reply and the raw timestamps it was measured by."""

    text: str
    timing: RequestTiming
    finish_reason: str | None = None


def timed_generate(backend: Backend, request: GenerationRequest, clock=time.perf_counter) -> Generation:
    """Stream ``request`` through ``backend``; a chunk of k tokens records k stamps at its arrival time."""
    start = clock()
    stamps: list[float] = []
    parts: list[str] = []
    prompt_tokens = 0
    finish: str | None = None
    for chunk in backend.stream(request):
        now = clock()
        if chunk.tokens:
            stamps.extend([now] * chunk.tokens)
        parts.append(chunk.text)
        if chunk.prompt_tokens is not None:
            prompt_tokens = chunk.prompt_tokens
        if chunk.finish_reason is not None:
            finish = chunk.finish_reason
    end = clock()
    timing = RequestTiming(start=start, token_times=stamps, end=end, prompt_tokens=prompt_tokens)
    return Generation(text="".join(parts), timing=timing, finish_reason=finish)


async def busy_poll() -> None:
    """Keep an event loop spinning (one core at 100%) so nothing it stamps waits for a wake-up.

    A process that sleeps in the kernel wakes late: on these VMs each wake-up from idle
    (a socket becoming readable, a timer firing) took 0.4–0.6 ms, which lands in every
    timestamp taken after it. The timing mock always spins; the load generator only
    with ``--busy-poll``, since on a shared box the core it burns is the server's.
    """
    while True:
        await asyncio.sleep(0)
