"""Metric definitions on hand-made timestamp lists (seconds in, milliseconds out)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lalo_bench.backends.base import ChatMessage, GenerationRequest, StreamChunk
from lalo_bench.measure import metrics as m
from lalo_bench.measure.timing import timed_generate

# sent at 10.0; tokens at 10.5, 10.6, 10.8, 11.1; done at 11.2; 40 prompt tokens
T = m.RequestTiming(start=10.0, token_times=[10.5, 10.6, 10.8, 11.1], end=11.2, prompt_tokens=40)


def test_ttft_is_first_token_minus_start() -> None:
    assert m.ttft_ms(T) == pytest.approx(500.0)


def test_itl_is_every_gap() -> None:
    assert m.itl_ms(T) == pytest.approx([100.0, 200.0, 300.0])


def test_tpot_excludes_first_token_vllm_convention() -> None:
    # (11.1 - 10.5) / (4 - 1) = 0.2 s
    assert m.tpot_ms(T) == pytest.approx(200.0)


def test_tpot_incl_first_is_guidellm_convention() -> None:
    # (11.1 - 10.0) / 4 = 0.275 s
    assert m.tpot_incl_first_ms(T) == pytest.approx(275.0)


def test_e2e_and_rates() -> None:
    assert m.e2e_ms(T) == pytest.approx(1200.0)
    assert m.decode_tok_s(T) == pytest.approx(3 / 0.6)
    assert m.prefill_tok_s(T) == pytest.approx(40 / 0.5)
    assert m.output_tok_s(T) == pytest.approx(4 / 1.2)


def test_single_token_has_no_decode_figures() -> None:
    one = m.RequestTiming(start=0.0, token_times=[0.2], end=0.25, prompt_tokens=5)
    assert m.tpot_ms(one) is None
    assert m.decode_tok_s(one) is None
    assert m.itl_ms(one) == []
    assert m.ttft_ms(one) == pytest.approx(200.0)


def test_no_tokens() -> None:
    none = m.RequestTiming(start=0.0, token_times=[], end=0.3)
    assert m.ttft_ms(none) is None
    assert m.tpot_incl_first_ms(none) is None
    assert m.e2e_ms(none) == pytest.approx(300.0)


def test_timestamps_must_not_go_backwards() -> None:
    with pytest.raises(ValueError):
        m.RequestTiming(start=1.0, token_times=[1.2, 1.1], end=1.3)
    with pytest.raises(ValueError):
        m.RequestTiming(start=1.0, token_times=[0.9], end=1.3)


def test_percentile_matches_linear_interpolation() -> None:
    xs = [1.0, 2.0, 3.0, 4.0]
    assert m.percentile(xs, 50) == pytest.approx(2.5)
    assert m.percentile(xs, 95) == pytest.approx(3.85)
    assert m.percentile(xs, 0) == 1.0
    assert m.percentile([], 50) is None


def test_aggregate_pools_itl_and_weights_rates_by_tokens() -> None:
    other = m.RequestTiming(start=0.0, token_times=[1.0, 1.1], end=1.1, prompt_tokens=10)
    agg = m.aggregate([T, other])
    # gaps: 100, 200, 300 (T) and 100 (other) -> p50 of [100, 100, 200, 300] = 150
    assert agg.itl_ms_p50 == pytest.approx(150.0)
    # decode: 3 + 1 tokens over 0.6 + 0.1 s
    assert agg.decode_tok_s == pytest.approx(4 / 0.7)
    # prefill: 40 + 10 prompt tokens over 0.5 + 1.0 s of TTFT
    assert agg.prefill_tok_s == pytest.approx(50 / 1.5)
    assert agg.ttft_ms_p50 == pytest.approx(750.0)
    assert agg.tpot_ms_p50 == pytest.approx(150.0)  # median of 200 and 100
    assert agg.requests == 2


class ScriptedBackend:
    """Known chunks on a scripted clock: checks that timed_generate stamps what it receives."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        yield StreamChunk(text="Hel", tokens=1, prompt_tokens=7)
        yield StreamChunk(text="lo wor", tokens=2)  # one network chunk carrying two tokens
        yield StreamChunk(text="ld", tokens=1)
        yield StreamChunk(text="", tokens=0, finish_reason="stop")

    def close(self) -> None:
        pass


def test_timed_generate_stamps_each_token_on_one_clock() -> None:
    ticks = iter([0.0, 0.4, 0.5, 0.7, 0.75, 0.8])
    gen = timed_generate(
        ScriptedBackend([]),
        GenerationRequest(messages=[ChatMessage(role="user", content="hi")]),
        clock=lambda: next(ticks),
    )
    assert gen.text == "Hello world"
    assert gen.finish_reason == "stop"
    assert gen.timing.token_times == [0.4, 0.5, 0.5, 0.7]
    assert gen.timing.prompt_tokens == 7
    assert gen.timing.end == 0.8
    assert m.ttft_ms(gen.timing) == pytest.approx(400.0)
    assert m.itl_ms(gen.timing) == pytest.approx([100.0, 0.0, 200.0])
