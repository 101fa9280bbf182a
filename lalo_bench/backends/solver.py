"""The classical-solver oracle for the puzzle suite: a true solver for Sudoku and mazes, a ground-truth echo for ARC.

It reads the puzzle back from the prompt text (the same serialization every
LLM gets, via :func:`lalo_bench.suites.puzzles.text.parse_prompt`), solves it
with the exact solvers (constraint-propagating backtracking for Sudoku, BFS
for mazes) and streams the answer in the requested format. ARC has no general
classical solver, so for an ARC prompt it looks the task up by the ``task:``
line and echoes the expected output from the task file. A sweep cell with this
backend therefore shows the suite's ceiling and proves that every prompt can
be parsed and every correct answer is scored correct.
"""

from __future__ import annotations

from collections.abc import Iterator

from lalo_bench.backends.base import GenerationRequest, StreamChunk
from lalo_bench.errors import BackendError, LaloError
from lalo_bench.suites.puzzles import arc, maze, sudoku
from lalo_bench.suites.puzzles.text import (
    ArcSpec,
    MalformedPrompt,
    MazeSpec,
    PromptSpec,
    SudokuSpec,
    arc_answer,
    maze_answer,
    parse_prompt,
    sudoku_answer,
)


def prompt_text(request: GenerationRequest) -> str:
    """The last user message: where the puzzle is."""
    users = [m.content for m in request.messages if m.role == "user"]
    if not users:
        raise BackendError("request has no user message")
    return users[-1]


def answer(spec: PromptSpec) -> str:
    """The solved puzzle in the prompt's answer format; BackendError when it has no solution."""
    if isinstance(spec, SudokuSpec):
        solved = sudoku.solve(spec.grid)
        if solved is None:
            raise BackendError(f"sudoku {spec.size}x{spec.size} in the prompt has no solution")
        return sudoku_answer(solved)
    if isinstance(spec, MazeSpec):
        try:
            return maze_answer(maze.solve(spec.rows))
        except ValueError as exc:
            raise BackendError(f"maze in the prompt: {exc}") from None
    assert isinstance(spec, ArcSpec)
    try:
        return arc_answer(arc.lookup_output(spec.task_id, spec.test_input))
    except LaloError as exc:
        raise BackendError(f"ARC task {spec.task_id}: {exc}") from None


class SolverBackend:
    """Streams the exact answer line by line; ``tokens`` counts whitespace-separated pieces."""

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        text = prompt_text(request)
        try:
            spec = parse_prompt(text)
        except MalformedPrompt as exc:
            raise BackendError(f"solver backend cannot read the prompt: {exc}") from None
        lines = answer(spec).split("\n")
        prompt_tokens: int | None = sum(len(m.content.split()) for m in request.messages)
        budget = request.max_tokens
        for i, line in enumerate(lines):
            pieces = len(line.split())
            if pieces > budget:
                yield StreamChunk(text="", tokens=0, finish_reason="length", prompt_tokens=prompt_tokens)
                return
            budget -= pieces
            final = i == len(lines) - 1
            yield StreamChunk(
                text=line if final else line + "\n",
                tokens=pieces,
                finish_reason="stop" if final else None,
                prompt_tokens=prompt_tokens,
            )
            prompt_tokens = None

    def close(self) -> None:
        """Nothing to release: the solver holds no model."""
