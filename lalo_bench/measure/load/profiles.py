"""Load profiles: which load points a test runs, and how a sweep picks its rates.

- ``synchronous``: one request at a time (the latency floor);
- ``concurrent``: N requests always in flight, one point per N in ``--concurrency``;
- ``throughput``: every slot busy from the start — the maximum the server sustains;
- ``constant``: requests released at a fixed rate, one point per ``--rate``;
- ``poisson``: exponential inter-arrival times; with ``--burstiness`` b they are
  gamma-distributed with shape b (b < 1 burstier, b > 1 smoother), mean 1/rate,
  as in ``vllm bench serve``;
- ``sweep`` (GuideLLM's): synchronous, then throughput, then rates evenly spaced
  strictly between the two measured request rates (see :func:`sweep_rates` for a
  server that does not gain from concurrency).
"""

from __future__ import annotations

import random
from typing import Literal

from lalo_bench.errors import LaloError
from lalo_bench.measure.load.schemas import LoadTarget

CliProfile = Literal["synchronous", "concurrent", "throughput", "constant", "poisson", "sweep"]


def fixed_targets(
    profile: CliProfile, concurrency: list[int], rates: list[float], burstiness: float = 1.0
) -> list[LoadTarget]:
    """The load points of every profile except ``sweep`` (whose rates depend on what it measures)."""
    if profile == "synchronous":
        return [LoadTarget(profile="synchronous", concurrency=1)]
    if profile in ("concurrent", "throughput"):
        if not concurrency:
            raise LaloError(f"--profile {profile} needs --concurrency, e.g. --concurrency 1,16,64")
        return [LoadTarget(profile=profile, concurrency=c) for c in concurrency]
    if profile in ("constant", "poisson"):
        if not rates:
            raise LaloError(f"--profile {profile} needs --rate (requests/s), e.g. --rate 0.5,1,2")
        b = burstiness if profile == "poisson" else None
        return [LoadTarget(profile=profile, rate=r, burstiness=b) for r in rates]
    raise LaloError(f"profile '{profile}' has no fixed load points")


SERIAL_GAIN = 1.1
"""Below this throughput/synchronous ratio a server is treated as serving one request at a time."""


def sweep_rates(sync_rps: float, max_rps: float, points: int) -> list[float]:
    """The rates a sweep runs after its synchronous and throughput points.

    GuideLLM's rule: ``points`` rates evenly spaced strictly between the synchronous and the
    maximum rate. A server that gains nothing from concurrency (llama.cpp's Python server
    decodes one request at a time) leaves no room between the two; the rates then climb
    evenly from below to the highest rate seen, so the curve still shows queueing set in.
    """
    if points <= 0 or max(sync_rps, max_rps) <= 0:
        return []
    if max_rps >= sync_rps * SERIAL_GAIN:
        step = (max_rps - sync_rps) / (points + 1)
        return [sync_rps + step * (i + 1) for i in range(points)]
    top = max(sync_rps, max_rps)
    return [top * (i + 1) / points for i in range(points)]


def interarrival(target: LoadTarget, rng: random.Random) -> float:
    """Seconds until the next release for a rate profile."""
    assert target.rate is not None
    if target.profile == "constant":
        return 1.0 / target.rate
    shape = target.burstiness or 1.0
    return rng.gammavariate(shape, 1.0 / (target.rate * shape))


def parse_list(text: str | None, cast: type, what: str) -> list:
    """``"1,16,64"`` → ``[1, 16, 64]``, with a one-line error naming the flag."""
    if not text:
        return []
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise LaloError(f"{what}: '{text}' is not a comma-separated list of numbers") from None
    if any(v <= 0 for v in values):
        raise LaloError(f"{what}: every value must be positive (got '{text}')")
    return values
