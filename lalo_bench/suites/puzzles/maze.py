"""Mazes in HRM's Maze-Hard character set: generator, BFS oracle and shortest-path verifier.

HRM's ``dataset/build_maze_dataset.py`` reads square grids over the charset
``"# SGo"``: ``#`` wall, space open, ``S`` start, ``G`` goal, and in the label
``o`` on every path cell between S and G. Grids here are lists of row strings
in exactly that charset (prompts show open cells as ``.``, see ``text.py``).

The generator carves a thin-walled perfect maze by randomized depth-first
search, then knocks out extra walls so several routes exist and "shortest"
means something; a valid but longer path is wrong.
"""

from __future__ import annotations

import random
from collections import deque

from pydantic import BaseModel

WALL, OPEN, START, GOAL, PATH = "#", " ", "S", "G", "o"
CHARSET = "# SGo"
"""HRM's maze charset; token id = index + 1, 0 is padding."""

Cell = tuple[int, int]
STEPS: tuple[Cell, ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))


def find(rows: list[str], ch: str) -> Cell:
    for r, row in enumerate(rows):
        c = row.find(ch)
        if c >= 0:
            return r, c
    raise ValueError(f"maze has no {ch!r}")


def _neighbours(rows: list[str], cell: Cell) -> list[Cell]:
    r, c = cell
    out = []
    for dr, dc in STEPS:
        nr, nc = r + dr, c + dc
        if 0 <= nr < len(rows) and 0 <= nc < len(rows[0]) and rows[nr][nc] != WALL:
            out.append((nr, nc))
    return out


def distances(rows: list[str], start: Cell) -> dict[Cell, int]:
    """BFS distance (in moves) from ``start`` to every reachable non-wall cell."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in _neighbours(rows, cell):
            if nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def shortest_path(rows: list[str]) -> list[Cell]:
    """A shortest S→G path (both ends included) by BFS; raises ValueError when G is unreachable."""
    start, goal = find(rows, START), find(rows, GOAL)
    dist = distances(rows, goal)
    if start not in dist:
        raise ValueError("G is not reachable from S")
    path = [start]
    while path[-1] != goal:
        here = path[-1]
        path.append(min((n for n in _neighbours(rows, here) if n in dist), key=lambda n: (dist[n], n)))
    return path


def solve(rows: list[str]) -> list[str]:
    """The maze with one shortest path marked ``o`` (HRM's label format)."""
    grid = [list(row) for row in rows]
    for r, c in shortest_path(rows)[1:-1]:
        grid[r][c] = PATH
    return ["".join(row) for row in grid]


# ---------------------------------------------------------------- verifier


class MazeCheck(BaseModel):
    """How an answer grid's path fares; ``correct`` is a valid path of shortest length."""

    maze_kept: bool
    walls_ok: bool
    reaches_goal: bool
    stray_cells: int
    path_steps: int
    shortest_steps: int

    @property
    def valid(self) -> bool:
        return self.maze_kept and self.walls_ok and self.reaches_goal and self.stray_cells == 0

    @property
    def correct(self) -> bool:
        return self.valid and self.path_steps == self.shortest_steps

    @property
    def verdict(self) -> str:
        if not self.walls_ok:
            return "path goes through a wall"
        if not self.maze_kept:
            return "answer changes the maze (walls, S or G)"
        if not self.reaches_goal:
            return "path does not connect S to G"
        if self.stray_cells:
            return f"{self.stray_cells} marked cells are off the S–G path"
        if self.path_steps > self.shortest_steps:
            return f"valid path but not shortest ({self.path_steps} steps, shortest {self.shortest_steps})"
        return "shortest path"


def check(maze: list[str], answer: list[str]) -> MazeCheck:
    """Any 4-connected S→G path through open cells whose length equals the BFS distance is correct."""
    kept, walls_ok = True, True
    marked: set[Cell] = set()
    for r, (row_in, row_out) in enumerate(zip(maze, answer, strict=True)):
        for c, (a, b) in enumerate(zip(row_in, row_out, strict=True)):
            if b == PATH:
                marked.add((r, c))
                walls_ok = walls_ok and a != WALL
                kept = kept and a in (OPEN, WALL)
            elif a != b:
                kept = False
    start, goal = find(maze, START), find(maze, GOAL)
    reached = _flood(start, marked | {goal})
    shortest = distances(maze, start).get(goal, -1)
    return MazeCheck(
        maze_kept=kept,
        walls_ok=walls_ok,
        reaches_goal=goal in reached,
        stray_cells=len(marked - reached),
        path_steps=len(marked) + 1,
        shortest_steps=shortest,
    )


def _flood(start: Cell, allowed: set[Cell]) -> set[Cell]:
    """Cells of ``allowed`` 4-connected to ``start`` (which is included)."""
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in STEPS:
            nxt = (r + dr, c + dc)
            if nxt in allowed and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


# ---------------------------------------------------------------- generator


def _carve(rng: random.Random, n: int) -> list[list[str]]:
    """A perfect thin-walled maze inside a wall border: DFS opens a wall only if it touches no other corridor."""
    grid = [[WALL] * n for _ in range(n)]
    lattice = (n - 1) // 2
    first = (1 + 2 * rng.randrange(lattice), 1 + 2 * rng.randrange(lattice))
    grid[first[0]][first[1]] = OPEN
    stack = [first]
    while stack:
        r, c = stack[-1]
        options = []
        for dr, dc in STEPS:
            r1, c1, r2, c2 = r + dr, c + dc, r + 2 * dr, c + 2 * dc
            if 1 <= r2 <= n - 2 and 1 <= c2 <= n - 2 and grid[r2][c2] == WALL:
                options.append((r1, c1, r2, c2))
        if not options:
            stack.pop()
            continue
        r1, c1, r2, c2 = rng.choice(options)
        grid[r1][c1] = grid[r2][c2] = OPEN
        stack.append((r2, c2))
    return grid


def _loops(rng: random.Random, grid: list[list[str]], share: float) -> None:
    """Open a ``share`` of the inner walls that separate two corridors in a straight line (adds cycles)."""
    n = len(grid)
    walls = [
        (r, c)
        for r in range(1, n - 1)
        for c in range(1, n - 1)
        if grid[r][c] == WALL
        and (
            (grid[r - 1][c] == OPEN and grid[r + 1][c] == OPEN and grid[r][c - 1] == WALL and grid[r][c + 1] == WALL)
            or (grid[r][c - 1] == OPEN and grid[r][c + 1] == OPEN and grid[r - 1][c] == WALL and grid[r + 1][c] == WALL)
        )
    ]
    for r, c in rng.sample(walls, k=int(len(walls) * share)):
        grid[r][c] = OPEN


def _use_edges(rng: random.Random, grid: list[list[str]]) -> None:
    """On even sizes the lattice leaves the last inner row and column solid; open some dead-end nooks there."""
    n = len(grid)
    if n % 2:
        return
    k = n - 2
    for i in range(1, n - 1):
        if grid[k][i] == WALL and grid[k - 1][i] == OPEN and rng.random() < 0.5:
            grid[k][i] = OPEN
        if grid[i][k] == WALL and grid[i][k - 1] == OPEN and rng.random() < 0.5:
            grid[i][k] = OPEN


def generate(rng: random.Random, n: int, far: float, loops: float = 0.12) -> tuple[list[str], list[str]]:
    """An n×n maze (question, HRM-style label) whose S–G distance is at least ``far`` × the farthest from S.

    ``far`` near 1 picks a goal among the farthest cells (long "hard" paths); 0.5 a mid-range one.
    """
    grid = _carve(rng, n)
    _use_edges(rng, grid)
    _loops(rng, grid, loops)
    rows = ["".join(row) for row in grid]
    open_cells = [(r, c) for r in range(n) for c in range(n) if rows[r][c] == OPEN]
    start = rng.choice(open_cells)
    dist = distances(rows, start)
    longest = max(dist.values())
    lo = max(1, int(far * longest))
    hi = max(lo, int(min(1.0, far + 0.25) * longest))
    goal = rng.choice(sorted(cell for cell, d in dist.items() if lo <= d <= hi))
    grid[start[0]][start[1]] = START
    grid[goal[0]][goal[1]] = GOAL
    question = ["".join(row) for row in grid]
    return question, solve(question)
