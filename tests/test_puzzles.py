"""The puzzle suite: seeded generators, exact verifiers, forgiving reply parsers, ARC pinning and the manifest."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from lalo_bench import datafiles
from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites import get_suite
from lalo_bench.suites.manifest import Manifest, verify
from lalo_bench.suites.puzzles import PuzzleSuite, arc, maze, sudoku, write_dataset
from lalo_bench.suites.puzzles.items import ArcItem, MazeItem, SudokuItem, to_rows
from lalo_bench.suites.puzzles.suite import (
    SUDOKU_TIERS,
    generate_mazes,
    generate_sudoku,
    known_17,
    score_item,
)
from lalo_bench.suites.puzzles.text import maze_display, parse_arc, parse_maze, parse_prompt, parse_sudoku

DATA_DIR = Path(__file__).resolve().parents[1] / "eval_suites" / "puzzles" / "v1"
CATEGORIES = {
    "sudoku_4x4",
    "sudoku_6x6",
    "sudoku_9x9",
    "maze_10x10",
    "maze_20x20",
    "maze_30x30",
    "arc",
}


@pytest.fixture(scope="module")
def suite() -> PuzzleSuite:
    return PuzzleSuite()


def _of(suite: PuzzleSuite, cls: type, category: str | None = None) -> list:
    return [i for i in suite.items() if isinstance(i, cls) and (category is None or i.category == category)]


# ---------------------------------------------------------------- data


def test_generators_are_deterministic() -> None:
    for size in (4, 6):  # 9x9 is covered byte for byte by the regeneration test below
        one = generate_sudoku(random.Random(f"t:{size}"), size)
        assert one == generate_sudoku(random.Random(f"t:{size}"), size)
        assert one != generate_sudoku(random.Random(f"u:{size}"), size)
    shape = sudoku.shape_for(9)
    assert sudoku.make_puzzle(random.Random(1), shape, 30) == sudoku.make_puzzle(random.Random(1), shape, 30)
    assert sudoku.make_puzzle(random.Random(1), shape, 30) != sudoku.make_puzzle(random.Random(2), shape, 30)
    assert generate_mazes(random.Random(5), 20) == generate_mazes(random.Random(5), 20)
    assert generate_mazes(random.Random(5), 20) != generate_mazes(random.Random(6), 20)


def test_regenerated_files_match_shipped_manifest(tmp_path: Path) -> None:
    manifest = Manifest.model_validate_json((DATA_DIR / "manifest.json").read_bytes())
    assert (manifest.suite, manifest.version, manifest.seed) == ("puzzles", "1", 1234)
    assert set(manifest.files) == {"items.jsonl", "arc_tasks.json"}
    write_dataset(tmp_path, seed=manifest.seed)
    for name in ("items.jsonl", "arc_tasks.json", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
    assert hashlib.sha256((tmp_path / "items.jsonl").read_bytes()).hexdigest() == manifest.files["items.jsonl"].sha256


def test_counts_categories_and_difficulties(suite: PuzzleSuite) -> None:
    items = suite.items()
    assert 150 <= len(items) <= 250
    assert len({i.id for i in items}) == len(items)
    assert {i.category for i in items} == CATEGORIES
    assert all(i.task_type == "puzzle" and i.difficulty >= 1 for i in items)
    by_cat = {c: [i for i in items if i.category == c] for c in CATEGORIES}
    assert len(by_cat["sudoku_9x9"]) + len(by_cat["maze_30x30"]) < len(items) / 4
    assert {i.difficulty for i in by_cat["sudoku_9x9"]} == {1, 2, 3, 4, 5}
    manifest = Manifest.model_validate_json((DATA_DIR / "manifest.json").read_bytes())
    assert manifest.count == len(items)


def test_every_sudoku_has_exactly_one_solution(suite: PuzzleSuite) -> None:
    items: list[SudokuItem] = _of(suite, SudokuItem)
    assert len(items) == 85
    for item in items:
        puzzle = item.puzzle_grid
        assert sudoku.count_solutions(puzzle, limit=3) == 1, item.id
        assert sudoku.solutions(puzzle, 1) == [item.solution_grid]
        assert sudoku.check(puzzle, item.solution_grid).correct
        assert sudoku.givens(puzzle) == item.givens == SUDOKU_TIERS[item.size][item.difficulty - 1]


def test_lowest_tier_uses_verified_17_clue_puzzles(suite: PuzzleSuite) -> None:
    assert len(known_17()) == 10
    hardest = [i for i in _of(suite, SudokuItem, "sudoku_9x9") if i.difficulty == 5]
    assert len(hardest) == 5
    assert all(i.givens == 17 and i.source.startswith("royle-17") for i in hardest)
    assert all(i.source == "generated" for i in _of(suite, SudokuItem) if i.givens > 17)


def test_mazes_use_hrm_charset_and_bfs_distance(suite: PuzzleSuite) -> None:
    for item in _of(suite, MazeItem):
        assert len(item.maze) == item.size and all(len(r) == item.size for r in item.maze)
        assert set("".join(item.maze)) == set("# SG")
        assert set("".join(item.solution)) <= set(maze.CHARSET)
        assert item.shortest_steps == maze.distances(item.maze, maze.find(item.maze, "S"))[maze.find(item.maze, "G")]
        assert "".join(item.solution).count("o") == item.shortest_steps - 1
        assert maze.check(item.maze, item.solution).correct


def test_items_are_interleaved(suite: PuzzleSuite) -> None:
    items = suite.items()
    first = items[: len(CATEGORIES)]
    assert {i.category for i in first} == CATEGORIES
    assert len({i.difficulty for i in first}) > 1
    assert {i.category for i in items[:40]} == CATEGORIES
    assert suite.items(10) == items[:10]


def test_kinds_option_selects_families_and_categories() -> None:
    only = PuzzleSuite(kinds="sudoku")
    assert {i.category for i in only.items()} == {"sudoku_4x4", "sudoku_6x6", "sudoku_9x9"}
    mixed = get_suite("puzzles", {"kinds": "maze_30x30,arc"})
    assert {i.category for i in mixed.items()} == {"maze_30x30", "arc"}
    with pytest.raises(LaloError, match="unknown kind"):
        PuzzleSuite(kinds="sudoku,chess")


# ---------------------------------------------------------------- sudoku verifier


def _reply(grid: sudoku.Grid) -> str:
    return "\n".join(to_rows(grid))


def test_sudoku_right_and_wrong(suite: PuzzleSuite) -> None:
    item: SudokuItem = _of(suite, SudokuItem, "sudoku_9x9")[0]
    right = score_item(item, _reply(item.solution_grid))
    assert right.correct and right.score == 1.0 and right.error is None
    blank = next((r, c) for r in range(9) for c in range(9) if item.puzzle_grid[r][c] == 0)
    rows = [list(row) for row in item.solution_grid]
    rows[blank[0]][blank[1]] = rows[blank[0]][blank[1]] % 9 + 1
    wrong = score_item(item, _reply(tuple(tuple(r) for r in rows)))
    assert not wrong.correct and wrong.score == 0.0 and wrong.error is None
    assert wrong.details["rows_ok"] == 0.0 and wrong.details["givens_ok"] == 1.0


def test_sudoku_breaking_only_a_box_is_wrong() -> None:
    solution = ((1, 2, 3, 4), (3, 4, 1, 2), (2, 1, 4, 3), (4, 3, 2, 1))
    assert sudoku.check(solution, solution).correct
    swapped = (solution[0], solution[2], solution[1], solution[3])  # rows of two bands: rows, columns stay Latin
    item = SudokuItem(
        id="t-box",
        category="sudoku_4x4",
        difficulty=1,
        size=4,
        box_rows=2,
        box_cols=2,
        puzzle=["1234", "0000", "0000", "4321"],
        solution=to_rows(solution),
        givens=8,
        source="test",
    )
    scored = score_item(item, _reply(swapped))
    assert not scored.correct
    d = scored.details
    assert (d["rows_ok"], d["cols_ok"], d["givens_ok"], d["complete"], d["boxes_ok"]) == (1, 1, 1, 1, 0)
    latin = tuple(tuple((r + c) % 9 + 1 for c in range(9)) for r in range(9))
    check = sudoku.check((latin[0], *((0,) * 9 for _ in range(8))), latin)
    assert check.rows_ok and check.cols_ok and check.givens_ok and not check.boxes_ok and not check.correct


def test_sudoku_changing_a_given_is_wrong(suite: PuzzleSuite) -> None:
    item: SudokuItem = _of(suite, SudokuItem, "sudoku_9x9")[1]
    a, b = item.puzzle_grid[0][0] or 1, (item.puzzle_grid[0][0] or 1) % 9 + 1
    swap = {a: b, b: a}
    relabelled = tuple(tuple(swap.get(v, v) for v in row) for row in item.solution_grid)
    scored = score_item(item, _reply(relabelled))
    assert not scored.correct
    d = scored.details
    assert (d["rows_ok"], d["cols_ok"], d["boxes_ok"], d["givens_ok"]) == (1, 1, 1, 0)


def test_sudoku_malformed_replies_score_zero_with_error(suite: PuzzleSuite) -> None:
    item: SudokuItem = _of(suite, SudokuItem, "sudoku_9x9")[0]
    rows = to_rows(item.solution_grid)
    for reply in ("\n".join(rows[:8]), "\n".join(r[:8] for r in rows), "I could not solve this one, sorry.", ""):
        scored = score_item(item, reply)
        assert scored.score == 0.0 and not scored.correct
        assert scored.error is not None and "9x9" in scored.error


def test_sudoku_parser_tolerates_presentation(suite: PuzzleSuite) -> None:
    item: SudokuItem = _of(suite, SudokuItem, "sudoku_9x9")[0]
    rows = to_rows(item.solution_grid)
    boxed = []
    for r, row in enumerate(rows):
        if r in (3, 6):
            boxed.append("------+-------+------")
        boxed.append(" | ".join(" ".join(row[k : k + 3]) for k in (0, 3, 6)))
    replies = [
        "Sure! Here is the solved grid:\n```text\n" + "\n".join(boxed) + "\n```\nDone.",
        "Puzzle:\n" + "\n".join(item.puzzle) + "\n\nSolution:\n" + "\n".join(rows),
        "\n".join(f"Row {k + 1}: {row}" for k, row in enumerate(rows)),
        "".join(rows),
    ]
    for reply in replies:
        assert parse_sudoku(reply, 9) == item.solution_grid
        assert score_item(item, reply).correct


# ---------------------------------------------------------------- maze verifier

TOY = [
    "#######",
    "#S # G#",
    "#     #",
    "# ### #",
    "#     #",
    "#######",
    "#######",
]


def _toy_item() -> MazeItem:
    return MazeItem(
        id="t-maze", category="maze_10x10", difficulty=1, size=7, maze=TOY, solution=maze.solve(TOY), shortest_steps=6
    )


def _mark(cells: list[tuple[int, int]]) -> str:
    grid = [list(row) for row in TOY]
    for r, c in cells:
        grid[r][c] = "o"
    return maze_display(["".join(row) for row in grid])


def test_maze_shortest_path_is_right() -> None:
    item = _toy_item()
    assert maze.distances(TOY, (1, 1))[(1, 5)] == 6
    for path in ([(1, 2), (2, 2), (2, 3), (2, 4), (1, 4)], [(2, 1), (2, 2), (2, 3), (2, 4), (2, 5)]):
        scored = score_item(item, _mark(path))
        assert scored.correct and scored.details["path_steps"] == 6


def test_maze_path_through_wall_is_wrong() -> None:
    scored = score_item(_toy_item(), _mark([(1, 2), (1, 3), (1, 4)]))
    assert not scored.correct and scored.error is None
    assert scored.details["walls_ok"] == 0.0 and scored.details["path_steps"] == 4


def test_maze_longer_valid_path_is_wrong() -> None:
    detour = [(2, 1), (3, 1), (4, 1), (4, 2), (4, 3), (4, 4), (4, 5), (3, 5), (2, 5)]
    scored = score_item(_toy_item(), _mark(detour))
    assert not scored.correct
    assert scored.details["valid_path"] == 1.0
    assert (scored.details["path_steps"], scored.details["shortest_steps"]) == (10, 6)
    answer = parse_maze(_mark(detour), 7)
    assert maze.check(TOY, answer).verdict == "valid path but not shortest (10 steps, shortest 6)"


def test_maze_path_not_reaching_goal_is_wrong() -> None:
    scored = score_item(_toy_item(), _mark([(1, 2), (2, 2), (2, 3)]))
    assert not scored.correct and scored.details["reaches_goal"] == 0.0


def test_maze_altered_or_malformed_answers(suite: PuzzleSuite) -> None:
    item: MazeItem = _of(suite, MazeItem, "maze_10x10")[0]
    opened = maze_display(item.solution).replace("#", ".", 1)
    scored = score_item(item, opened)
    assert not scored.correct and scored.details["maze_kept"] == 0.0
    for reply in ("Go right, then down.", "\n".join(maze_display(item.solution).split("\n")[:9])):
        bad = score_item(item, reply)
        assert bad.score == 0.0 and bad.error is not None and "10x10" in bad.error


def test_maze_parser_accepts_hrm_spaces_and_spaced_cells(suite: PuzzleSuite) -> None:
    item: MazeItem = _of(suite, MazeItem, "maze_20x20")[0]
    native = "\n".join(item.solution)
    spaced = "Path:\n" + "\n".join(" ".join(row) for row in maze_display(item.solution).split("\n"))
    fenced = "```\n" + maze_display(item.solution) + "\n```"
    for reply in (native, spaced, fenced):
        assert parse_maze(reply, 20) == item.solution
        assert score_item(item, reply).correct


# ---------------------------------------------------------------- ARC


def _grid_text(grid: list[list[int]]) -> str:
    return "\n".join("".join(str(v) for v in row) for row in grid)


def test_arc_exact_match_and_pass_at_2(suite: PuzzleSuite) -> None:
    item: ArcItem = next(i for i in _of(suite, ArcItem) if len(i.expected) > 1 and len(i.expected[0]) > 1)
    right = _grid_text(item.expected)
    off = [row[:] for row in item.expected]
    off[0][0] = (off[0][0] + 1) % 10
    wrong = _grid_text(off)
    first = score_item(item, right)
    assert first.correct and first.details["matched_attempt"] == 1
    second = score_item(item, f"Attempt 1:\n{wrong}\n\nAttempt 2:\n{right}")
    assert second.correct and second.details["matched_attempt"] == 2
    assert not score_item(item, wrong).correct
    assert not score_item(item, f"{right}\n\n{wrong}\n\n{wrong}").correct  # only the last two grids count
    as_json = json.dumps(item.expected)
    assert score_item(item, f"The output is {as_json}").correct
    malformed = score_item(item, "The rule is to mirror the shape.")
    assert malformed.score == 0.0 and malformed.error is not None


def test_arc_parser_splits_attempts() -> None:
    reply = "Here:\n1 2\n3 4\n\n[[5, 6, 7], [8, 9, 0]]\n"
    assert parse_arc(reply) == [[[1, 2], [3, 4]], [[5, 6, 7], [8, 9, 0]]]


def test_arc_items_come_from_pinned_shared_files(suite: PuzzleSuite) -> None:
    pins = arc.read_pins(DATA_DIR)
    assert pins.split == "evaluation" and len(pins.tasks) == arc.TASKS
    items = _of(suite, ArcItem)
    assert {i.task_id for i in items} == {p.id for p in pins.tasks}
    for pin in pins.tasks:
        path = arc.task_path(pin.id)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pin.sha256
    for item in items:
        assert arc.prompt_cells(arc.read_task(arc.task_path(item.task_id)), item.test_index) <= arc.MAX_PROMPT_CELLS
        assert f"task: {item.task_id}" in suite.request(item, 64).messages[-1].content


# ---------------------------------------------------------------- prompts, summaries


def test_prompts_parse_back_to_the_puzzle(suite: PuzzleSuite) -> None:
    for item in suite.items():
        spec = parse_prompt(suite.request(item, 64).messages[-1].content)
        if isinstance(item, SudokuItem):
            assert spec.kind == "sudoku" and spec.grid == item.puzzle_grid
            assert (spec.box_rows, spec.box_cols) == (item.box_rows, item.box_cols)
        elif isinstance(item, MazeItem):
            assert spec.kind == "maze" and spec.rows == item.maze
        else:
            assert spec.kind == "arc" and spec.task_id == item.task_id and spec.test_input == item.test_input


def test_summary_reports_accuracy_per_category(suite: PuzzleSuite) -> None:
    records = []
    for k, item in enumerate(suite.items(21)):
        records.append(
            ItemRecord(
                item_id=item.id,
                category=item.category,
                difficulty=item.difficulty,
                output="",
                score=float(k % 2 == 0),
                correct=k % 2 == 0,
                error=None if k % 3 else "malformed answer: x",
            )
        )
    summary = suite.summarize(records)
    assert summary["accuracy"] == pytest.approx(11 / 21)
    assert summary["malformed_rate"] == pytest.approx(7 / 21)
    for category in CATEGORIES:
        group = [r for r in records if r.category == category]
        assert summary[f"accuracy.{category}"] == pytest.approx(sum(r.correct for r in group) / len(group))
    assert "accuracy.sudoku" in summary and "accuracy.maze" in summary


# ---------------------------------------------------------------- pinning


def test_manifest_refuses_tampered_items(tmp_path: Path) -> None:
    copy = tmp_path / "puzzles" / "v1"
    shutil.copytree(DATA_DIR, copy)
    PuzzleSuite(kinds="sudoku", data_dir=copy)
    text = (copy / "items.jsonl").read_text(encoding="utf-8")
    (copy / "items.jsonl").write_text(text.replace('"givens": 10', '"givens": 11', 1), encoding="utf-8")
    with pytest.raises(LaloError, match=r"items\.jsonl: sha256 mismatch with manifest") as err:
        PuzzleSuite(data_dir=copy)
    assert "lalo-bench suites generate puzzles" in str(err.value) and "\n" not in str(err.value)


def _suites_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped puzzles data under a ``$LALO_EVAL_SUITES`` of its own, free to be damaged."""
    root = tmp_path / "eval_suites"
    shutil.copytree(datafiles.eval_suites() / "puzzles", root / "puzzles")
    monkeypatch.setenv(datafiles.ENV_EVAL_SUITES, str(root))
    return root / "puzzles"


def test_arc_ships_with_its_licence_and_a_manifest() -> None:
    folder = arc.dataset_dir()
    assert folder == DATA_DIR.parent / "arc-agi-1"
    verify(folder)
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_bytes())
    tasks = [name for name in manifest.files if name.startswith("evaluation/")]
    assert len(tasks) == manifest.count == 400 == len(list((folder / "evaluation").glob("*.json")))
    assert {"LICENSE", "NOTICE"} <= set(manifest.files)
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert "github.com/fchollet/ARC-AGI" in (folder / "NOTICE").read_text(encoding="utf-8")
    assert all((folder / "evaluation" / f"{pin.id}.json").is_file() for pin in arc.read_pins(DATA_DIR).tasks)


def test_changed_arc_task_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pins = arc.read_pins(DATA_DIR)
    copy = _suites_copy(tmp_path, monkeypatch)
    assert arc.task_path(pins.tasks[3].id).is_relative_to(copy)
    assert len(PuzzleSuite(kinds="arc").items()) > len(pins.tasks) - 1
    victim = arc.task_path(pins.tasks[3].id)
    task = json.loads(victim.read_text())
    task["test"][0]["output"][0][0] = (task["test"][0]["output"][0][0] + 1) % 10
    victim.write_text(json.dumps(task))
    with pytest.raises(LaloError, match=r"sha256 mismatch with arc_tasks\.json") as err:
        PuzzleSuite(kinds="arc")
    assert pins.tasks[3].id in str(err.value) and "restore them from git" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(LaloError, match=r"sha256 mismatch with manifest.*restore them from git"):
        write_dataset(tmp_path / "regenerated", seed=1234)  # the sample is drawn from every task: all are checked


def test_missing_arc_folder_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.rmtree(_suites_copy(tmp_path, monkeypatch) / "arc-agi-1")
    with pytest.raises(LaloError, match="ARC-AGI-1 folder not found; it ships in eval_suites/puzzles/arc-agi-1") as err:
        PuzzleSuite()
    assert "kinds=sudoku,maze" in str(err.value) and "\n" not in str(err.value)
    assert {i.category for i in PuzzleSuite(kinds="sudoku,maze").items()} == CATEGORIES - {"arc"}
