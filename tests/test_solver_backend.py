"""The solver oracle answers every puzzle item from its prompt alone, and the suite scores every answer correct."""

from __future__ import annotations

from collections import Counter

import pytest

from lalo_bench.backends import open_backend
from lalo_bench.backends.base import Backend, ChatMessage, GenerationRequest
from lalo_bench.backends.solver import SolverBackend
from lalo_bench.config import BackendSpec, GenerationSettings
from lalo_bench.errors import BackendError
from lalo_bench.measure.timing import timed_generate
from lalo_bench.suites.puzzles import PuzzleSuite, SudokuItem


@pytest.fixture(scope="module")
def suite() -> PuzzleSuite:
    return PuzzleSuite()


def test_solver_scores_every_item(suite: PuzzleSuite) -> None:
    backend = SolverBackend()
    assert isinstance(backend, Backend)
    items = suite.items()
    seen: Counter[str] = Counter()
    for item in items:
        generation = timed_generate(backend, suite.request(item, 4096))
        scored = suite.score(item, generation.text)
        assert scored.correct and scored.score == 1.0 and scored.error is None, (item.id, generation.text)
        assert generation.finish_reason == "stop"
        seen[item.category] += 1
    backend.close()
    assert sum(seen.values()) == len(items) >= 150
    assert len(seen) == 7


def test_stream_counts_pieces_and_prompt_words(suite: PuzzleSuite) -> None:
    item = next(i for i in suite.items() if isinstance(i, SudokuItem) and i.size == 9)
    request = suite.request(item, 4096)
    chunks = list(SolverBackend().stream(request))
    assert len(chunks) == 9 and all(c.tokens == 1 for c in chunks)
    assert chunks[0].prompt_tokens == sum(len(m.content.split()) for m in request.messages)
    assert all(c.prompt_tokens is None for c in chunks[1:])
    assert "".join(c.text for c in chunks) == "\n".join(item.solution)
    generation = timed_generate(SolverBackend(), request)
    assert len(generation.timing.token_times) == 9


def test_max_tokens_cuts_the_answer(suite: PuzzleSuite) -> None:
    item = next(i for i in suite.items() if isinstance(i, SudokuItem) and i.size == 9)
    generation = timed_generate(SolverBackend(), suite.request(item, 4))
    assert generation.finish_reason == "length"
    assert generation.text.count("\n") == 4
    assert not suite.score(item, generation.text).correct


def test_unreadable_prompt_is_a_one_line_backend_error() -> None:
    request = GenerationRequest(messages=[ChatMessage(role="user", content="What is the capital of France?")])
    with pytest.raises(BackendError, match="solver backend cannot read the prompt") as err:
        list(SolverBackend().stream(request))
    assert "\n" not in str(err.value)


def test_unsolvable_sudoku_prompt_is_a_backend_error(suite: PuzzleSuite) -> None:
    item = next(i for i in suite.items() if isinstance(i, SudokuItem) and i.size == 4)
    clash = item.model_copy(update={"puzzle": ["1100", "0000", "0000", "0000"]})
    with pytest.raises(BackendError, match="no solution"):
        list(SolverBackend().stream(suite.request(clash, 64)))


def test_open_backend_builds_the_solver() -> None:
    spec = BackendSpec(id="solver", kind="solver", formats=[], description="oracle")
    backend = open_backend(spec, None, GenerationSettings())
    assert isinstance(backend, SolverBackend)
