"""The ``puzzles`` suite: the HRM paper's tasks (Sudoku, mazes, ARC-AGI-1) posed to any backend as text.

Sudoku (4×4, 6×6, 9×9 graded by givens) and mazes (10×10, 20×20, 30×30 in
HRM's Maze-Hard charset) are generated from a seed and shipped pinned in
``eval_suites/puzzles/v1``; ARC items are built at load time from the ARC-AGI-1
evaluation set shipped in ``eval_suites/puzzles/arc-agi-1``, with each task file
pinned by sha256 in ``arc_tasks.json``.

Every item is scored by an exact verifier, not by comparison with one stored
answer: a Sudoku must keep every rule and given; a maze path must be valid and
as short as BFS says; an ARC reply may hold two attempt grids and is right if
either equals the expected output (pass@2).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from lalo_bench import datafiles
from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites.base import ItemScore, SuiteItem, TaskType
from lalo_bench.suites.manifest import verify, write_jsonl, write_manifest
from lalo_bench.suites.puzzles import arc, maze, sudoku
from lalo_bench.suites.puzzles.items import (
    FAMILIES,
    PUZZLE_ADAPTER,
    ArcItem,
    MazeItem,
    SudokuItem,
    family_of,
    maze_category,
    sudoku_category,
    to_rows,
)
from lalo_bench.suites.puzzles.text import (
    SYSTEM_PROMPT,
    MalformedAnswer,
    parse_arc,
    parse_maze,
    parse_sudoku,
    prompt_for,
)

SUITE_ID = "puzzles"
SUITE_VERSION = "1"
GENERATOR = "lalo_bench.suites.puzzles"
GENERATOR_VERSION = "1"
DEFAULT_SEED = 1234
ITEMS_FILE = "items.jsonl"
ENV_ROOT = datafiles.ENV_EVAL_SUITES

Puzzle = SudokuItem | MazeItem | ArcItem

SUDOKU_TIERS: dict[int, list[int]] = {4: [10, 7, 4], 6: [20, 14, 9], 9: [44, 34, 28, 22, 17]}
"""Givens per difficulty tier (difficulty = index + 1); 17 comes from a known list, the rest are generated."""
SUDOKU_PER_TIER = {4: 10, 6: 10, 9: 5}

MAZE_TIERS: dict[int, list[float]] = {10: [0.5, 0.9], 20: [0.5, 0.9], 30: [0.5, 0.9]}
"""Goal distance as a share of the farthest cell from S, per difficulty tier (mid-range, then farthest)."""
MAZE_PER_TIER = {10: 15, 20: 10, 30: 5}

ROYLE_17 = [
    "000000010400000000020000000000050407008000300001090000300400200050100000000806000",
    "000000010400000000020000000000050604008000300001090000300400200050100000000807000",
    "000000012000035000000600070700000300000400800100000000000120000080000040050000600",
    "000000012003600000000007000410020000000500300700000600280000040000300500000000000",
    "000000012008030000000000040120500000000004700060000000507000300000620000000100000",
    "000000012040050000000009000070600400000100000000000050000087500601000300200000000",
    "000000012050400000000000030700600400001000000000080000920000800000510700000003000",
    "000000012300000060000040000900000500000001070020000000000350400001400800060000000",
    "000000012400090000000000050070200000600000400000108000018000000000030700502000000",
    "000000012500008000000700000600120000700000450000030000030000800000500700020000000",
]
"""Opening lines of Gordon Royle's list of 17-clue Sudoku, as recalled; :func:`known_17` re-checks each one."""


# ---------------------------------------------------------------- generation


def known_17() -> list[sudoku.Grid]:
    """The 17-clue puzzles above, keeping only those verified here to have 17 givens and one solution."""
    grids = [sudoku.parse_line(line) for line in ROYLE_17]
    return [g for g in grids if sudoku.givens(g) == 17 and sudoku.count_solutions(g) == 1]


def _sudoku_item(index: int, size: int, tier: int, puzzle: sudoku.Grid, source: str) -> SudokuItem:
    shape = sudoku.shape_for(size)
    solution = sudoku.solve(puzzle)
    if solution is None or sudoku.count_solutions(puzzle) != 1:
        raise ValueError(f"sudoku {source} is not uniquely solvable")
    return SudokuItem(
        id=f"puzzles-{sudoku_category(size)}-{index:03d}",
        category=sudoku_category(size),
        difficulty=tier + 1,
        size=size,
        box_rows=shape.box_rows,
        box_cols=shape.box_cols,
        puzzle=to_rows(puzzle),
        solution=to_rows(solution),
        givens=sudoku.givens(puzzle),
        source=source,
    )


def generate_sudoku(rng: random.Random, size: int) -> list[SudokuItem]:
    """``SUDOKU_PER_TIER[size]`` puzzles per tier, tiers cycling; 17-given ones are transformed known puzzles."""
    shape = sudoku.shape_for(size)
    tiers = SUDOKU_TIERS[size]
    known = known_17()
    out: list[SudokuItem] = []
    for i in range(SUDOKU_PER_TIER[size] * len(tiers)):
        tier = i % len(tiers)
        target = tiers[tier]
        if target == 17:
            k = (i // len(tiers)) % len(known)
            puzzle, source = sudoku.transform(rng, known[k], shape), f"royle-17 #{k + 1}, relabelled and permuted"
        else:
            puzzle, _ = sudoku.make_puzzle(rng, shape, target, attempts=400)
            source = "generated"
        out.append(_sudoku_item(i, size, tier, puzzle, source))
    return out


def generate_mazes(rng: random.Random, size: int) -> list[MazeItem]:
    tiers = MAZE_TIERS[size]
    out: list[MazeItem] = []
    for i in range(MAZE_PER_TIER[size] * len(tiers)):
        tier = i % len(tiers)
        question, answer = maze.generate(rng, size, far=tiers[tier])
        out.append(
            MazeItem(
                id=f"puzzles-{maze_category(size)}-{i:03d}",
                category=maze_category(size),
                difficulty=tier + 1,
                size=size,
                maze=question,
                solution=answer,
                shortest_steps=len(maze.shortest_path(question)) - 1,
            )
        )
    return out


def generate(seed: int = DEFAULT_SEED) -> list[SudokuItem | MazeItem]:
    """The generated items (Sudoku and mazes), deterministic for ``seed``; one RNG stream per category."""
    items: list[SudokuItem | MazeItem] = []
    for size in SUDOKU_TIERS:
        items.extend(generate_sudoku(random.Random(f"{seed}:{sudoku_category(size)}"), size))
    for size in MAZE_TIERS:
        items.extend(generate_mazes(random.Random(f"{seed}:{maze_category(size)}"), size))
    return items


def write_dataset(out_dir: Path, seed: int = DEFAULT_SEED) -> Path:
    """Write ``items.jsonl``, ``arc_tasks.json`` and their ``manifest.json`` into ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = generate(seed)
    write_jsonl(out_dir / ITEMS_FILE, items)
    pins = arc.select(seed)
    pins_file = arc.write_pins(pins, out_dir)
    return write_manifest(
        out_dir,
        suite=SUITE_ID,
        version=SUITE_VERSION,
        generator=GENERATOR,
        generator_version=GENERATOR_VERSION,
        seed=seed,
        count=len(items) + len(arc.items_from_pins(pins)),
        files=[ITEMS_FILE, pins_file],
    )


def default_data_dir() -> Path:
    """``$LALO_EVAL_SUITES/puzzles/v1`` when set, else the folder shipped with lalo-bench."""
    return datafiles.eval_suites() / SUITE_ID / f"v{SUITE_VERSION}"


def load_generated(data_dir: Path) -> list[SudokuItem | MazeItem]:
    """Sudoku and maze items of a verified folder (:class:`LaloError` if a file differs from the manifest)."""
    verify(data_dir)
    text = (data_dir / ITEMS_FILE).read_text(encoding="utf-8")
    items = [PUZZLE_ADAPTER.validate_json(line) for line in text.splitlines() if line.strip()]
    return [i for i in items if not isinstance(i, ArcItem)]


def load_arc(data_dir: Path) -> list[ArcItem]:
    """ARC items from the shipped ARC-AGI-1 folder, each task file checked against the pins of a verified folder."""
    verify(data_dir)
    return arc.items_from_pins(arc.read_pins(data_dir))


# ---------------------------------------------------------------- ordering


def interleave(items: Sequence[Puzzle]) -> list[Puzzle]:
    """Every category spread evenly over the order, and within one the difficulties cycling.

    The first round takes one item of each category; after that item j of a category of n sits at
    position j/n, so any prefix holds each category in proportion. Category k starts its difficulty
    cycle at offset k, so the first round mixes difficulties too.
    """
    cats: dict[str, list[Puzzle]] = {}
    for it in items:
        cats.setdefault(it.category, []).append(it)
    keyed: list[tuple[float, int, Puzzle]] = []
    for k, category in enumerate(sorted(cats)):
        group = cats[category]
        for j, it in enumerate(_cycle_difficulties(group, offset=k)):
            keyed.append((j / len(group), k, it))
    return [it for _, _, it in sorted(keyed, key=lambda t: (t[0], t[1]))]


def _cycle_difficulties(group: list[Puzzle], offset: int) -> list[Puzzle]:
    by_diff: dict[int, list[Puzzle]] = {}
    for it in group:
        by_diff.setdefault(it.difficulty, []).append(it)
    diffs = sorted(by_diff)
    diffs = diffs[offset % len(diffs) :] + diffs[: offset % len(diffs)]
    out: list[Puzzle] = []
    for j in range(max(len(g) for g in by_diff.values())):
        out.extend(by_diff[d][j] for d in diffs if j < len(by_diff[d]))
    return out


# ---------------------------------------------------------------- scoring


def _malformed(exc: MalformedAnswer) -> ItemScore:
    return ItemScore(score=0.0, correct=False, details={"parsed": 0.0}, error=f"malformed answer: {exc}")


def score_sudoku(item: SudokuItem, output: str) -> ItemScore:
    try:
        answer = parse_sudoku(output, item.size)
    except MalformedAnswer as exc:
        return _malformed(exc)
    result = sudoku.check(item.puzzle_grid, answer)
    blanks = [(r, c) for r in range(item.size) for c in range(item.size) if item.puzzle_grid[r][c] == 0]
    right = sum(answer[r][c] == item.solution_grid[r][c] for r, c in blanks)
    details = {
        "parsed": 1.0,
        "rows_ok": float(result.rows_ok),
        "cols_ok": float(result.cols_ok),
        "boxes_ok": float(result.boxes_ok),
        "givens_ok": float(result.givens_ok),
        "complete": float(result.complete),
        "cell_accuracy": right / len(blanks) if blanks else 1.0,
    }
    return ItemScore(score=float(result.correct), correct=result.correct, details=details)


def score_maze(item: MazeItem, output: str) -> ItemScore:
    try:
        answer = parse_maze(output, item.size)
    except MalformedAnswer as exc:
        return _malformed(exc)
    result = maze.check(item.maze, answer)
    details = {
        "parsed": 1.0,
        "maze_kept": float(result.maze_kept),
        "walls_ok": float(result.walls_ok),
        "reaches_goal": float(result.reaches_goal),
        "valid_path": float(result.valid),
        "stray_cells": float(result.stray_cells),
        "path_steps": float(result.path_steps),
        "shortest_steps": float(result.shortest_steps),
    }
    return ItemScore(score=float(result.correct), correct=result.correct, details=details)


def score_arc(item: ArcItem, output: str) -> ItemScore:
    try:
        attempts = parse_arc(output)
    except MalformedAnswer as exc:
        return _malformed(exc)
    hit = next((i for i, grid in enumerate(attempts, start=1) if grid == item.expected), 0)
    details = {"parsed": 1.0, "attempts": float(len(attempts)), "matched_attempt": float(hit)}
    return ItemScore(score=float(hit > 0), correct=hit > 0, details=details)


def score_item(item: Puzzle, output: str) -> ItemScore:
    if isinstance(item, SudokuItem):
        return score_sudoku(item, output)
    if isinstance(item, MazeItem):
        return score_maze(item, output)
    return score_arc(item, output)


def summarize(records: Sequence[ItemRecord]) -> dict[str, float]:
    """Accuracy overall, per family, per category and per category × difficulty; the malformed-reply rate."""
    out: dict[str, float] = {}
    groups: dict[str, list[ItemRecord]] = {"accuracy": list(records)}
    for r in records:
        groups.setdefault(f"accuracy.{family_of(r.category)}", []).append(r)
        if family_of(r.category) != r.category:
            groups.setdefault(f"accuracy.{r.category}", []).append(r)
        groups.setdefault(f"accuracy.{r.category}.d{r.difficulty}", []).append(r)
    for key, group in sorted(groups.items()):
        if group:
            out[key] = sum(r.correct for r in group) / len(group)
    if records:
        out["malformed_rate"] = sum(r.error is not None for r in records) / len(records)
    return out


# ---------------------------------------------------------------- suite


def parse_kinds(kinds: str | None) -> set[str] | None:
    """Families (sudoku, maze, arc) or exact categories (sudoku_9x9, maze_30x30, …); None for all."""
    if kinds is None or not str(kinds).strip():
        return None
    known = set(FAMILIES) | {sudoku_category(s) for s in SUDOKU_TIERS} | {maze_category(s) for s in MAZE_TIERS}
    chosen = {k.strip() for k in str(kinds).split(",") if k.strip()}
    unknown = sorted(chosen - known)
    if unknown:
        raise LaloError(f"puzzles: unknown kind(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return chosen


def _wanted(category: str, chosen: set[str] | None) -> bool:
    return chosen is None or category in chosen or family_of(category) in chosen


def _narrow(item: SuiteItem) -> Puzzle:
    if not isinstance(item, SudokuItem | MazeItem | ArcItem):
        raise TypeError(f"puzzle suite got a {type(item).__name__}, not a puzzle item")
    return item


class PuzzleSuite:
    """Sudoku, mazes and ARC-AGI-1 over the pinned data folder; ``kinds`` picks families or categories."""

    id: str = SUITE_ID
    version: str = SUITE_VERSION
    task_type: TaskType = "puzzle"

    def __init__(self, kinds: str | None = None, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir or default_data_dir()
        if not self.data_dir.is_dir():
            raise LaloError(
                f"{self.data_dir}: puzzles data folder not found; regenerate with "
                f"`lalo-bench suites generate {SUITE_ID}` or set {ENV_ROOT}"
            )
        chosen = parse_kinds(kinds)
        items: list[Puzzle] = [i for i in load_generated(self.data_dir) if _wanted(i.category, chosen)]
        if _wanted("arc", chosen):
            items.extend(load_arc(self.data_dir))
        self._items = interleave(items)

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        return list(self._items if limit is None else self._items[:limit])

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest:
        return GenerationRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM_PROMPT),
                ChatMessage(role="user", content=prompt_for(_narrow(item))),
            ],
            max_tokens=max_tokens,
        )

    def score(self, item: SuiteItem, output: str) -> ItemScore:
        return score_item(_narrow(item), output)

    def summarize(self, records: Sequence[ItemRecord]) -> dict[str, float]:
        return summarize(records)
