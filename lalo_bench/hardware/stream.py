"""A STREAM-style triad: this machine's sustainable memory bandwidth, measured rather than taken from a spec sheet.

Decode on a CPU tier is memory-bound, so the roofline needs the bandwidth a program can actually reach here
(the catalog's ``cpu-local.memory_bandwidth_gbs`` is only a placeholder).

Counting convention (McCalpin's STREAM): the triad ``a = b + s*c`` is credited with 3 arrays x 8 bytes = 24 bytes
per element — two reads and one write — and the write-allocate read of ``a`` that most caches perform is *not*
counted. The reported figure is therefore comparable with published STREAM triad numbers (and a little below the
raw DRAM traffic).

numpy cannot fuse the triad into one pass: ``np.add(b, s * c, out=a)`` allocates a temporary the size of the
arrays, and the two-step ``multiply(c, s, out=a); add(a, b, out=a)`` over whole arrays streams ``a`` through memory
twice (40 bytes per element). Here both steps run on cache-sized chunks (:data:`CHUNK_ELEMENTS`), so the chunk of
``a`` written by the multiply is still in L2 when the add reads it back: memory sees b and c read and a written
once, which is exactly the 24 bytes STREAM counts.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

BYTES_PER_ELEMENT = 3 * 8  # STREAM triad: read b, read c, write a (float64); write-allocate not counted
CHUNK_ELEMENTS = 32 * 1024  # 256 KiB of float64 per array chunk: a's chunk stays in L2 between multiply and add
SCALAR = 3.0  # STREAM's scalar


class StreamResult(BaseModel):
    """One triad measurement: best-of-``repeats`` bandwidth, STREAM counting (24 bytes per element)."""

    model_config = ConfigDict(frozen=True)

    gbs: float = Field(description="best GB/s (1e9 bytes/s) over the repeats, STREAM triad counting")
    size_mb: int = Field(description="size of EACH of the three arrays, MiB")
    repeats: int = Field(description="timed repeats actually run (the time cap can cut them short)")
    seconds: float = Field(description="wall time of the whole measurement, allocation included")
    threads: int
    best_s: float = Field(description="the fastest single triad pass, seconds")
    convention: str = "STREAM triad a = b + s*c, 24 bytes/element counted (write-allocate excluded), best of N"


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _triad_slice(a: np.ndarray, b: np.ndarray, c: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo, hi, CHUNK_ELEMENTS):
        j = min(i + CHUNK_ELEMENTS, hi)
        ac = a[i:j]
        np.multiply(c[i:j], SCALAR, out=ac)
        np.add(ac, b[i:j], out=ac)


def measure_triad(
    size_mb: int = 256, repeats: int = 5, threads: int | None = None, max_seconds: float = 5.0
) -> StreamResult:
    """Measure the triad and return the best pass (STREAM reports the best, the least disturbed run).

    ``size_mb`` is per array, so the footprint is three times that; STREAM asks for arrays well beyond the
    last-level cache, which this VM reports as large (hundreds of MiB, shared with other guests), so small sizes
    measure cache, not DRAM. ``threads`` splits the arrays into contiguous slices run concurrently (numpy releases
    the GIL inside ufunc loops); it defaults to the CPUs this process may use. Repeats stop early once
    ``max_seconds`` have passed, keeping the measurement short on a shared machine.
    """
    if size_mb <= 0 or repeats <= 0:
        raise ValueError("size_mb and repeats must be positive")
    nthreads = threads or _default_threads()
    start = time.perf_counter()
    n = size_mb * 1024 * 1024 // 8
    # np.full touches every page now, so page faults are not timed as bandwidth.
    a = np.zeros(n)
    b = np.full(n, 1.0)
    c = np.full(n, 2.0)
    bounds = np.linspace(0, n, nthreads + 1).astype(int)
    # keep thread slices chunk-aligned so no chunk straddles two threads
    bounds = [0, *[int(x) // CHUNK_ELEMENTS * CHUNK_ELEMENTS for x in bounds[1:-1]], n]
    best = float("inf")
    done = 0
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        _triad_slice(a, b, c, 0, n)  # warm-up pass, untimed
        for _ in range(repeats):
            t0 = time.perf_counter()
            if nthreads == 1:
                _triad_slice(a, b, c, 0, n)
            else:
                list(pool.map(lambda k: _triad_slice(a, b, c, bounds[k], bounds[k + 1]), range(nthreads)))
            best = min(best, time.perf_counter() - t0)
            done += 1
            if time.perf_counter() - start > max_seconds:
                break
    if not np.isclose(a[n // 2], 1.0 + SCALAR * 2.0):
        raise RuntimeError("triad produced a wrong result")
    return StreamResult(
        gbs=BYTES_PER_ELEMENT * n / best / 1e9,
        size_mb=size_mb,
        repeats=done,
        seconds=time.perf_counter() - start,
        threads=nthreads,
        best_s=best,
    )
