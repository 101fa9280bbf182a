"""Sudoku of any box shape (4×4 with 2×2 boxes, 6×6 with 2×3, 9×9 with 3×3): solver, generator, verifier.

The solver is an exact counting backtracker over bitmasks with constraint
propagation (naked and hidden singles) and minimum-remaining-values branching;
it is both the uniqueness check of the generator and the oracle the solver
backend answers with. Grids are tuples of rows of ints, 0 for a blank.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

Grid = tuple[tuple[int, ...], ...]


class Shape(BaseModel):
    """An N×N board split into boxes of ``box_rows`` × ``box_cols`` (N = box_rows · box_cols)."""

    model_config = ConfigDict(frozen=True)

    box_rows: int
    box_cols: int

    @property
    def n(self) -> int:
        return self.box_rows * self.box_cols

    def box_of(self, r: int, c: int) -> int:
        return (r // self.box_rows) * (self.n // self.box_cols) + c // self.box_cols


SHAPES: dict[int, Shape] = {
    4: Shape(box_rows=2, box_cols=2),
    6: Shape(box_rows=2, box_cols=3),
    9: Shape(box_rows=3, box_cols=3),
}


def shape_for(n: int) -> Shape:
    if n not in SHAPES:
        raise ValueError(f"no sudoku shape for size {n} (known: {sorted(SHAPES)})")
    return SHAPES[n]


def givens(grid: Grid) -> int:
    return sum(v != 0 for row in grid for v in row)


# ---------------------------------------------------------------- solver


class _Board:
    """Mutable search state: cell values plus used-digit bitmasks per row, column and box."""

    def __init__(self, grid: Grid, shape: Shape) -> None:
        n = shape.n
        self.n, self.full = n, (1 << (n + 1)) - 2
        self.unit_of = [(r, c, shape.box_of(r, c)) for r in range(n) for c in range(n)]
        boxes: list[list[int]] = [[] for _ in range(n)]
        for i, (_, _, b) in enumerate(self.unit_of):
            boxes[b].append(i)
        rows = [[r * n + c for c in range(n)] for r in range(n)]
        cols = [[r * n + c for r in range(n)] for c in range(n)]
        self.groups = rows + cols + boxes
        self.cells = [v for row in grid for v in row]
        self.rows, self.cols, self.boxes = [0] * n, [0] * n, [0] * n
        self.peers_ok = True
        for i, v in enumerate(self.cells):
            if v and not self._place(i, v):
                self.peers_ok = False

    def _place(self, i: int, v: int) -> bool:
        r, c, b = self.unit_of[i]
        bit = 1 << v
        if (self.rows[r] | self.cols[c] | self.boxes[b]) & bit:
            return False
        self.rows[r] |= bit
        self.cols[c] |= bit
        self.boxes[b] |= bit
        self.cells[i] = v
        return True

    def _unplace(self, i: int) -> None:
        r, c, b = self.unit_of[i]
        bit = ~(1 << self.cells[i])
        self.rows[r] &= bit
        self.cols[c] &= bit
        self.boxes[b] &= bit
        self.cells[i] = 0

    def candidates(self, i: int) -> int:
        r, c, b = self.unit_of[i]
        return self.full & ~(self.rows[r] | self.cols[c] | self.boxes[b])

    def _naked(self, filled: list[int]) -> bool | None:
        """Place every cell with one candidate; None on a cell with none, else whether anything changed."""
        changed = False
        for i, v in enumerate(self.cells):
            if v:
                continue
            cand = self.candidates(i)
            if cand == 0:
                return None
            if cand & (cand - 1) == 0:
                self._place(i, cand.bit_length() - 1)
                filled.append(i)
                changed = True
        return changed

    def _hidden(self, filled: list[int]) -> bool | None:
        """Place every digit that fits only one cell of a unit; None when a digit fits nowhere."""
        changed = False
        for group in self.groups:
            once = twice = placed = 0
            for i in group:
                v = self.cells[i]
                if v:
                    placed |= 1 << v
                    continue
                cand = self.candidates(i)
                twice |= once & cand
                once |= cand
            if (once | placed) != self.full:
                return None
            single = once & ~twice & ~placed
            while single:
                bit = single & -single
                single ^= bit
                for i in group:
                    if not self.cells[i] and self.candidates(i) & bit:
                        self._place(i, bit.bit_length() - 1)
                        filled.append(i)
                        changed = True
                        break
        return changed

    def propagate(self) -> list[int] | None:
        """Fill naked and hidden singles until none remain; the cells filled, or None on a contradiction."""
        filled: list[int] = []
        while True:
            naked = self._naked(filled)
            hidden = None if naked is None else self._hidden(filled)
            if naked is None or hidden is None:
                self.undo(filled)
                return None
            if not (naked or hidden):
                return filled

    def undo(self, filled: list[int]) -> None:
        for i in reversed(filled):
            self._unplace(i)

    def best_cell(self) -> tuple[int, int] | None:
        """The blank with the fewest candidates (MRV), with its candidate mask; None when full."""
        best, best_mask, best_count = -1, 0, 99
        for i, v in enumerate(self.cells):
            if v:
                continue
            mask = self.candidates(i)
            count = mask.bit_count()
            if count < best_count:
                best, best_mask, best_count = i, mask, count
                if count <= 2:
                    break
        return None if best < 0 else (best, best_mask)


def _search(board: _Board, limit: int, found: list[Grid]) -> None:
    filled = board.propagate()
    if filled is None:
        return
    pick = board.best_cell()
    if pick is None:
        n = board.n
        found.append(tuple(tuple(board.cells[r * n : (r + 1) * n]) for r in range(n)))
    else:
        i, mask = pick
        while mask and len(found) < limit:
            bit = mask & -mask
            mask ^= bit
            board._place(i, bit.bit_length() - 1)
            _search(board, limit, found)
            board._unplace(i)
    board.undo(filled)


def solutions(grid: Grid, limit: int = 2) -> list[Grid]:
    """Up to ``limit`` solutions of ``grid`` (its shape from its size); [] when the givens clash."""
    shape = shape_for(len(grid))
    board = _Board(grid, shape)
    if not board.peers_ok:
        return []
    found: list[Grid] = []
    _search(board, limit, found)
    return found


def count_solutions(grid: Grid, limit: int = 2) -> int:
    """Number of solutions, counted up to ``limit`` (2 is enough to tell unique from not)."""
    return len(solutions(grid, limit))


def solve(grid: Grid) -> Grid | None:
    """The first solution found, or None if there is none."""
    found = solutions(grid, 1)
    return found[0] if found else None


# ---------------------------------------------------------------- verifier


class SudokuCheck(BaseModel):
    """Which rules a filled grid keeps; ``correct`` only when all of them hold."""

    complete: bool
    rows_ok: bool
    cols_ok: bool
    boxes_ok: bool
    givens_ok: bool

    @property
    def correct(self) -> bool:
        return self.complete and self.rows_ok and self.cols_ok and self.boxes_ok and self.givens_ok


def check(puzzle: Grid, answer: Grid) -> SudokuCheck:
    """Verify ``answer`` against the rules and ``puzzle``'s givens (no reference solution needed)."""
    shape = shape_for(len(puzzle))
    n = shape.n
    want = set(range(1, n + 1))
    rows = [list(row) for row in answer]
    cols = [[answer[r][c] for r in range(n)] for c in range(n)]
    boxes: list[list[int]] = [[] for _ in range(n)]
    for r in range(n):
        for c in range(n):
            boxes[shape.box_of(r, c)].append(answer[r][c])
    return SudokuCheck(
        complete=all(1 <= v <= n for row in answer for v in row),
        rows_ok=all(set(u) == want for u in rows),
        cols_ok=all(set(u) == want for u in cols),
        boxes_ok=all(set(u) == want for u in boxes),
        givens_ok=all(puzzle[r][c] in (0, answer[r][c]) for r in range(n) for c in range(n)),
    )


# ---------------------------------------------------------------- generator


def random_full_grid(rng: random.Random, shape: Shape) -> Grid:
    """A uniformly shuffled solved grid: search an empty board with random digit order per cell."""
    n = shape.n
    cells = [0] * (n * n)
    order = list(range(n * n))

    def fill(k: int) -> bool:
        if k == len(order):
            return True
        i = order[k]
        r, c = divmod(i, n)
        used = {cells[r * n + j] for j in range(n)} | {cells[j * n + c] for j in range(n)}
        used |= {cells[j] for j in range(n * n) if shape.box_of(*divmod(j, n)) == shape.box_of(r, c)}
        digits = [d for d in range(1, n + 1) if d not in used]
        rng.shuffle(digits)
        for d in digits:
            cells[i] = d
            if fill(k + 1):
                return True
        cells[i] = 0
        return False

    fill(0)
    return tuple(tuple(cells[r * n : (r + 1) * n]) for r in range(n))


def dig(rng: random.Random, solution: Grid, target: int) -> Grid:
    """Remove clues in random order while the puzzle stays unique, stopping at ``target`` givens.

    May stop above ``target`` when the puzzle becomes minimal (no clue can go without a second solution).
    """
    n = len(solution)
    cells = [list(row) for row in solution]
    order = [(r, c) for r in range(n) for c in range(n)]
    rng.shuffle(order)
    count = n * n
    for r, c in order:
        if count <= target:
            break
        keep = cells[r][c]
        cells[r][c] = 0
        if count_solutions(tuple(tuple(row) for row in cells)) == 1:
            count -= 1
        else:
            cells[r][c] = keep
    return tuple(tuple(row) for row in cells)


def make_puzzle(rng: random.Random, shape: Shape, target: int, attempts: int = 30) -> tuple[Grid, Grid]:
    """A unique puzzle with exactly ``target`` givens (new full grids are tried until one gets there).

    Raises ValueError when ``attempts`` grids all became minimal above ``target``.
    """
    for _ in range(attempts):
        solution = random_full_grid(rng, shape)
        puzzle = dig(rng, solution, target)
        if givens(puzzle) == target:
            return puzzle, solution
    raise ValueError(f"no {shape.n}x{shape.n} puzzle with {target} givens in {attempts} attempts")


def transform(rng: random.Random, grid: Grid, shape: Shape, digits: Sequence[int] | None = None) -> Grid:
    """A validity-preserving relabelling (HRM's sudoku augmentation): digits, bands, rows, stacks, columns.

    ``digits`` fixes the digit map (for transforming a puzzle and its solution alike); transposition
    only for square boxes.
    """
    n = shape.n
    digit_map = [0, *(digits or rng.sample(range(1, n + 1), n))]
    bands = rng.sample(range(n // shape.box_rows), n // shape.box_rows)
    row_perm = [b * shape.box_rows + r for b in bands for r in rng.sample(range(shape.box_rows), shape.box_rows)]
    stacks = rng.sample(range(n // shape.box_cols), n // shape.box_cols)
    col_perm = [s * shape.box_cols + c for s in stacks for c in rng.sample(range(shape.box_cols), shape.box_cols)]
    out = tuple(tuple(digit_map[grid[row_perm[r]][col_perm[c]]] for c in range(n)) for r in range(n))
    if shape.box_rows == shape.box_cols and rng.random() < 0.5:
        out = tuple(zip(*out, strict=True))
    return out


def parse_line(line: str) -> Grid:
    """An 81-character (or N²) one-line puzzle, ``0`` or ``.`` for blanks, as a grid."""
    digits = [0 if ch in "0." else int(ch) for ch in line.strip()]
    n = math.isqrt(len(digits))
    if n * n != len(digits):
        raise ValueError(f"a one-line sudoku has a square number of cells, got {len(digits)}")
    return tuple(tuple(digits[r * n : (r + 1) * n]) for r in range(n))
