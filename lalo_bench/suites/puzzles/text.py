"""How puzzles travel as text: the prompt for each family, parsing a prompt back, and parsing replies.

Prompts are plain enough for a small LLM (rules, the grid as rows of digits
or characters, the exact answer format) and regular enough that the reference
backends (the classical solver, HRM) recover the puzzle from the prompt alone
with :func:`parse_prompt`, so every backend sees the same request.

Reply parsers are forgiving about presentation (code fences, spaces between
cells, ``|``/``-`` box borders, leading prose, an echoed puzzle before the
answer): they take the last complete grid of the right shape. A reply with no
such grid raises :class:`MalformedAnswer`, which the suite scores 0 with an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import BaseModel

from lalo_bench.suites.puzzles.items import ArcGrid, ArcItem, MazeItem, SudokuItem
from lalo_bench.suites.puzzles.sudoku import Grid

SYSTEM_PROMPT = "You solve grid puzzles. Reply with only the answer in the exact format requested, no explanation."

Row = TypeVar("Row")


class MalformedAnswer(ValueError):
    """The reply holds no grid of the shape the puzzle asks for."""


class MalformedPrompt(ValueError):
    """The prompt is not one of this suite's puzzle prompts."""


# ---------------------------------------------------------------- prompts


def _digits(grid: Grid | ArcGrid) -> str:
    return "\n".join("".join(str(v) for v in row) for row in grid)


def maze_display(rows: list[str]) -> str:
    """HRM's open cell is a space; prompts and answers show ``.`` so no cell is lost to whitespace trimming."""
    return "\n".join(row.replace(" ", ".") for row in rows)


def sudoku_prompt(item: SudokuItem) -> str:
    n, br, bc = item.size, item.box_rows, item.box_cols
    return (
        f"Puzzle: sudoku {n}x{n}, boxes {br}x{bc}\n"
        f"Fill every blank (0) with a digit from 1 to {n} so that each row, each column and each {br}x{bc} box "
        f"({br} rows by {bc} columns) contains every digit from 1 to {n} exactly once. Keep the given digits.\n\n"
        f"Grid ({n} lines of {n} digits, 0 = blank):\n{_digits(item.puzzle_grid)}\n\n"
        f"Answer with the solved grid only: {n} lines of {n} digits, no spaces."
    )


def maze_prompt(item: MazeItem) -> str:
    n = item.size
    return (
        f"Puzzle: maze {n}x{n}\n"
        "Find a shortest path from S to G. Each move goes one cell up, down, left or right (no diagonals) "
        "and never enters a wall.\nLegend: # wall, . open cell, S start, G goal.\n\n"
        f"Maze ({n} lines of {n} characters):\n{maze_display(item.maze)}\n\n"
        f"Answer with the maze only: the same {n} lines of {n} characters, with every open cell of your path "
        "between S and G changed from . to o. Keep S, G and the walls unchanged."
    )


def _shape(grid: ArcGrid) -> str:
    return f"{len(grid)} rows, {len(grid[0]) if grid else 0} columns"


def arc_prompt(item: ArcItem) -> str:
    examples = "\n\n".join(
        f"Example {i} input ({_shape(p.input)}):\n{_digits(p.input)}\n"
        f"Example {i} output ({_shape(p.output)}):\n{_digits(p.output)}"
        for i, p in enumerate(item.train, start=1)
    )
    return (
        f"Puzzle: ARC\ntask: {item.task_id}\n"
        "Each example turns an input grid into an output grid by the same rule. Grids are rows of digits 0-9, "
        "one digit per cell (each digit is a colour). Find the rule and apply it to the test input.\n\n"
        f"{examples}\n\nTest input ({_shape(item.test_input)}):\n{_digits(item.test_input)}\n\n"
        "Answer with the test output grid only, one row of digits per line. You may give a second attempt "
        "after a blank line; at most two grids are scored."
    )


def prompt_for(item: SudokuItem | MazeItem | ArcItem) -> str:
    if isinstance(item, SudokuItem):
        return sudoku_prompt(item)
    if isinstance(item, MazeItem):
        return maze_prompt(item)
    return arc_prompt(item)


# ---------------------------------------------------------------- prompts, read back


class SudokuSpec(BaseModel):
    kind: Literal["sudoku"] = "sudoku"
    size: int
    box_rows: int
    box_cols: int
    grid: Grid


class MazeSpec(BaseModel):
    """``rows`` in HRM's charset (space = open)."""

    kind: Literal["maze"] = "maze"
    size: int
    rows: list[str]


class ArcSpec(BaseModel):
    kind: Literal["arc"] = "arc"
    task_id: str
    test_input: ArcGrid


PromptSpec = SudokuSpec | MazeSpec | ArcSpec

SUDOKU_HEAD = re.compile(r"^Puzzle: sudoku (\d)x\1, boxes (\d)x(\d)\s*$", re.MULTILINE)
MAZE_HEAD = re.compile(r"^Puzzle: maze (\d+)x\1\s*$", re.MULTILINE)
ARC_HEAD = re.compile(r"^Puzzle: ARC\s*\ntask: (\S+)\s*$", re.MULTILINE)


def _block(text: str, intro: str, count: int | None) -> list[str]:
    """The ``count`` lines after the line starting with ``intro`` (or up to the next blank line)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(intro):
            rest = lines[i + 1 :]
            if count is not None:
                return rest[:count]
            return rest[: next((j for j, x in enumerate(rest) if not x.strip()), len(rest))]
    raise MalformedPrompt(f"no '{intro}' block in the prompt")


def parse_prompt(text: str) -> PromptSpec:
    """Recover the puzzle from a prompt made by this module."""
    if m := SUDOKU_HEAD.search(text):
        n, br, bc = int(m.group(1)), int(m.group(2)), int(m.group(3))
        rows = _block(text, "Grid (", n)
        if len(rows) != n or any(not re.fullmatch(rf"\d{{{n}}}", r) for r in rows):
            raise MalformedPrompt(f"sudoku grid is not {n} lines of {n} digits")
        return SudokuSpec(size=n, box_rows=br, box_cols=bc, grid=tuple(tuple(int(ch) for ch in r) for r in rows))
    if m := MAZE_HEAD.search(text):
        n = int(m.group(1))
        rows = _block(text, "Maze (", n)
        if len(rows) != n or any(not re.fullmatch(rf"[#.SG]{{{n}}}", r) for r in rows):
            raise MalformedPrompt(f"maze is not {n} lines of {n} characters from '#.SG'")
        return MazeSpec(size=n, rows=[r.replace(".", " ") for r in rows])
    if m := ARC_HEAD.search(text):
        rows = _block(text, "Test input", None)
        if not rows or any(not re.fullmatch(r"\d+", r) for r in rows) or len({len(r) for r in rows}) != 1:
            raise MalformedPrompt("ARC test input is not a rectangle of digits")
        return ArcSpec(task_id=m.group(1), test_input=[[int(ch) for ch in r] for r in rows])
    raise MalformedPrompt("not a puzzle prompt (no 'Puzzle: sudoku|maze|ARC' header)")


# ---------------------------------------------------------------- answers, rendered


def sudoku_answer(grid: Grid) -> str:
    return _digits(grid)


def maze_answer(rows: list[str]) -> str:
    return maze_display(rows)


def arc_answer(grid: ArcGrid) -> str:
    return _digits(grid)


# ---------------------------------------------------------------- answers, parsed

FENCE = re.compile(r"^\s*```")
RULE = re.compile(r"^[\s\-+|=_*:~]+$")
"""A line of box-border characters only: skipped, it neither is nor ends a grid."""
ROW_LABEL = re.compile(r"^\s*row\s*\d+\s*[:.)=-]\s*", re.IGNORECASE)
CELL_SEPARATORS = re.compile(r"[\s|,;\[\]()'\"`+]")


def _runs(text: str, row_of: Callable[[str], Row | None], blank_ends_grid: bool) -> list[list[Row]]:
    """Maximal runs of consecutive row lines; prose (and, if asked, a blank or fence line) ends a run."""
    runs: list[list[Row]] = [[]]
    for line in text.replace("\r", "").split("\n"):
        blank = not line.strip() or bool(FENCE.match(line))
        if blank and not blank_ends_grid:
            continue
        if not blank and RULE.match(line):
            continue
        row = None if blank else row_of(line)
        if row is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(row)
    return [r for r in runs if r]


def _last_grid(runs: list[list[Row]], height: int) -> list[Row] | None:
    for run in reversed(runs):
        if len(run) >= height:
            return run[-height:]
    return None


def _sudoku_row(line: str, n: int) -> tuple[int, ...] | None:
    s = CELL_SEPARATORS.sub("", ROW_LABEL.sub("", line)).replace("-", "")
    if len(s) != n or not re.fullmatch(r"[0-9.]+", s):
        return None
    return tuple(0 if ch == "." else int(ch) for ch in s)


def parse_sudoku(text: str, n: int) -> Grid:
    """The last n×n grid of digits in the reply (``.`` or ``0`` read as blank); also one line of n² digits."""
    grid = _last_grid(_runs(text, lambda line: _sudoku_row(line, n), blank_ends_grid=False), n)
    if grid is not None:
        return tuple(grid)
    for line in reversed(text.splitlines()):
        flat = _sudoku_row(line, n * n)
        if flat is not None:
            return tuple(flat[r * n : (r + 1) * n] for r in range(n))
    raise MalformedAnswer(f"no {n}x{n} grid of digits in the reply")


MAZE_CELLS = {"#": "#", ".": " ", "S": "S", "G": "G", "o": "o", "O": "o"}


def _maze_row(line: str, n: int) -> str | None:
    packed = "".join(line.split())
    if len(packed) == n and all(ch in MAZE_CELLS for ch in packed):
        return "".join(MAZE_CELLS[ch] for ch in packed)
    if len(line) == n and set(line) <= set("# SGo"):  # HRM's own format, spaces for open cells
        return line
    return None


def parse_maze(text: str, n: int) -> list[str]:
    """The last n×n maze in the reply, in HRM's charset (``.`` read as open)."""
    grid = _last_grid(_runs(text, lambda line: _maze_row(line, n), blank_ends_grid=False), n)
    if grid is None:
        raise MalformedAnswer(f"no {n}x{n} maze grid in the reply")
    return grid


def _arc_row(line: str) -> list[int] | None:
    s = CELL_SEPARATORS.sub("", ROW_LABEL.sub("", line))
    return [int(ch) for ch in s] if re.fullmatch(r"\d+", s) else None


def parse_arc(text: str, attempts: int = 2) -> list[ArcGrid]:
    """The last ``attempts`` rectangular digit grids of the reply (blank lines and prose separate grids).

    Nested-list JSON (``[[0,1],[2,3]]``) is split into rows first.
    """
    text = re.sub(r"\[\s*\[", "[\n[", text)
    text = re.sub(r"\]\s*\]", "]\n]", text)
    text = re.sub(r"\]\s*,\s*\[", "]\n[", text)
    grids: list[ArcGrid] = []
    for run in _runs(text, _arc_row, blank_ends_grid=True):
        current: ArcGrid = []
        for row in run:
            if current and len(row) != len(current[0]):
                grids.append(current)
                current = []
            current.append(row)
        grids.append(current)
    if not grids:
        raise MalformedAnswer("no grid of digits in the reply")
    return grids[-attempts:]
