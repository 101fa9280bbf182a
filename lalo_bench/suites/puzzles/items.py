"""The puzzle suite's item types, one per family, and the category names they report under."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from lalo_bench.suites.base import SuiteItem
from lalo_bench.suites.puzzles.sudoku import Grid

ArcGrid = list[list[int]]
FAMILIES = ("sudoku", "maze", "arc")


class PuzzleItem(SuiteItem):
    task_type: Literal["puzzle"] = "puzzle"


class SudokuItem(PuzzleItem):
    """Rows are digit strings, ``0`` for a blank; ``source`` says whether it was generated or taken from a list."""

    kind: Literal["sudoku"] = "sudoku"
    size: int
    box_rows: int
    box_cols: int
    puzzle: list[str]
    solution: list[str]
    givens: int
    source: str

    @property
    def puzzle_grid(self) -> Grid:
        return to_grid(self.puzzle)

    @property
    def solution_grid(self) -> Grid:
        return to_grid(self.solution)


class MazeItem(PuzzleItem):
    """Rows in HRM's charset ``# SGo`` (space = open); ``solution`` marks one shortest path with ``o``."""

    kind: Literal["maze"] = "maze"
    size: int
    maze: list[str]
    solution: list[str]
    shortest_steps: int


class ArcPair(BaseModel):
    input: ArcGrid
    output: ArcGrid


class ArcItem(PuzzleItem):
    """One test input of an ARC-AGI-1 task, built at load time from the pinned task file."""

    kind: Literal["arc"] = "arc"
    task_id: str
    split: str
    test_index: int
    train: list[ArcPair]
    test_input: ArcGrid
    expected: ArcGrid


AnyPuzzle = Annotated[SudokuItem | MazeItem | ArcItem, Field(discriminator="kind")]
PUZZLE_ADAPTER: TypeAdapter[SudokuItem | MazeItem | ArcItem] = TypeAdapter(AnyPuzzle)


def to_grid(rows: list[str]) -> Grid:
    return tuple(tuple(int(ch) for ch in row) for row in rows)


def to_rows(grid: Grid) -> list[str]:
    return ["".join(str(v) for v in row) for row in grid]


def sudoku_category(size: int) -> str:
    return f"sudoku_{size}x{size}"


def maze_category(size: int) -> str:
    return f"maze_{size}x{size}"


def family_of(category: str) -> str:
    return category.split("_", 1)[0]
