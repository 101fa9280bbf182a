"""The in-process llama.cpp backend and the quantizer on a real model (SmolLM2-135M)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.backends.llamacpp import LlamaCppBackend
from lalo_bench.config import Catalog
from lalo_bench.errors import BackendError
from lalo_bench.measure.metrics import request_metrics
from lalo_bench.measure.timing import timed_generate
from lalo_bench.models import quantize, store
from tests.conftest import SMOL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backend(smollm2: Path):
    b = LlamaCppBackend(smollm2, n_ctx=512, n_threads=2)
    yield b
    b.close()


def ask(text: str, max_tokens: int = 24) -> GenerationRequest:
    return GenerationRequest(messages=[ChatMessage(role="user", content=text)], max_tokens=max_tokens)


def test_multi_token_prompt_streams_with_a_stamp_per_token(backend: LlamaCppBackend) -> None:
    request = ask("List three colours of the rainbow.", max_tokens=24)
    tokens, _ = backend.prompt_tokens(request)
    gen = timed_generate(backend, request)
    assert gen.text.strip()
    assert gen.timing.prompt_tokens == len(tokens) > 10
    assert 0 < gen.timing.output_tokens <= 24
    assert gen.finish_reason in {"stop", "length"}
    m = request_metrics(gen.timing)
    assert m.ttft_ms is not None and m.ttft_ms > 0
    assert m.e2e_ms >= m.ttft_ms


def test_max_tokens_is_respected(backend: LlamaCppBackend) -> None:
    gen = timed_generate(backend, ask("Count from one to one hundred in words.", max_tokens=5))
    assert gen.timing.output_tokens == 5
    assert gen.finish_reason == "length"


def test_greedy_is_deterministic(backend: LlamaCppBackend) -> None:
    a = timed_generate(backend, ask("What is the capital of France?"))
    b = timed_generate(backend, ask("What is the capital of France?"))
    assert a.text == b.text


def test_prompt_longer_than_context_is_a_clear_error(backend: LlamaCppBackend) -> None:
    with pytest.raises(BackendError, match="exceeds the context window"):
        timed_generate(backend, ask("word " * 600, max_tokens=8))


def test_corrupt_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(BackendError, match="could not load"):
        LlamaCppBackend(bad)


def test_quantize_records_a_derived_variant(catalog: Catalog, smollm2: Path) -> None:
    record = quantize.ensure(catalog, SMOL, "q8_0")
    assert record.origin == "derived"
    assert record.source_quant == "q4_1" and record.requantized
    path = store.verified_path(record)
    assert path.stat().st_size == record.size_bytes > smollm2.stat().st_size  # 8-bit is bigger than 4-bit
    b = LlamaCppBackend(path, n_ctx=256)
    try:
        assert timed_generate(b, ask("Hi", max_tokens=3)).timing.output_tokens >= 1
    finally:
        b.close()


def test_multi_token_stop_string_is_cut_from_the_output(backend: LlamaCppBackend) -> None:
    free = timed_generate(backend, ask("Write the word Hello, then a newline, then Question: what?", max_tokens=40))
    assert free.text.strip()
    # Stop on a string the unconstrained reply contains, spanning more than one token.
    words = [w for w in free.text.split() if len(w) > 4]
    assert words, free.text
    stop = words[0]
    request = ask("Write the word Hello, then a newline, then Question: what?", max_tokens=40)
    cut = timed_generate(backend, request.model_copy(update={"stop": [stop]}))
    assert stop not in cut.text
    assert cut.finish_reason == "stop"
    assert free.text.startswith(cut.text)


def test_partial_stop_suffix() -> None:
    from lalo_bench.backends.llamacpp import _partial_stop_len

    assert _partial_stop_len("abc\n\nQues", ["Question:"]) == 4
    assert _partial_stop_len("abc", ["Question:"]) == 0
    assert _partial_stop_len("xQ", ["Question:", "Qx"]) == 1
