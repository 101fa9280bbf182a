"""The puzzle suite (Sudoku, mazes, ARC-AGI-1): see :mod:`lalo_bench.suites.puzzles.suite`."""

from __future__ import annotations

from lalo_bench.suites.puzzles.items import ArcItem, MazeItem, SudokuItem
from lalo_bench.suites.puzzles.suite import (
    DEFAULT_SEED,
    PuzzleSuite,
    default_data_dir,
    generate,
    interleave,
    score_item,
    write_dataset,
)

__all__ = [
    "DEFAULT_SEED",
    "ArcItem",
    "MazeItem",
    "PuzzleSuite",
    "SudokuItem",
    "default_data_dir",
    "generate",
    "interleave",
    "score_item",
    "write_dataset",
]
