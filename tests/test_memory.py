"""The memory sampler sees a real allocation, even one freed before the next sample."""

from __future__ import annotations

from lalo_bench.measure.memory import MemorySampler


def test_peak_rss_sees_an_allocation() -> None:
    with MemorySampler(interval_s=0.01) as sampler:
        block = bytearray(200 * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        del block
    peak = sampler.result
    assert peak is not None
    assert peak.peak_rss_mb - peak.baseline_rss_mb > 150


def test_short_spike_is_caught_by_the_high_water_mark() -> None:
    with MemorySampler(interval_s=10.0) as sampler:  # the thread never samples inside the block
        block = bytearray(120 * 2**20)
        block[::4096] = b"y" * len(block[::4096])
        del block
    assert sampler.result is not None
    assert sampler.result.peak_rss_mb - sampler.result.baseline_rss_mb > 100
