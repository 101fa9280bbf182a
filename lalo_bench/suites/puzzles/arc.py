"""ARC-AGI-1 tasks from the copy the repository ships (``eval_suites/puzzles/arc-agi-1``, Apache-2.0, with NOTICE).

That folder holds the 400 evaluation tasks unmodified, pinned file by file in its own ``manifest.json``. The
suite uses a fixed, seeded subset of the evaluation split (tasks whose prompt fits a small model's context), one
item per test input. Which tasks, and the sha256 of each task file, are recorded in ``arc_tasks.json`` beside the
suite's ``manifest.json`` (which pins that file in turn), so a changed task file is refused at load time rather
than silently scored.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lalo_bench import datafiles
from lalo_bench.errors import LaloError
from lalo_bench.suites.manifest import show, verify
from lalo_bench.suites.puzzles.items import ArcGrid, ArcItem, ArcPair

PINS_FILE = "arc_tasks.json"
DATASET = "arc-agi-1"
"""Also the name of the shipped folder, inside the suites' ``puzzles`` folder."""
RESTORE_HINT = "the files are ARC-AGI-1's, unmodified: restore them from git"
SPLIT = "evaluation"
TASKS = 40
MAX_PROMPT_CELLS = 2000
"""Train grids plus test input, in cells: keeps a prompt within a few thousand tokens."""


class ArcTask(BaseModel):
    train: list[ArcPair]
    test: list[ArcPair]


class TaskPin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ArcPins(BaseModel):
    """The ARC subset a suite version scores: dataset, split and each task file's fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    split: str
    max_prompt_cells: int
    tasks: list[TaskPin]


def dataset_dir() -> Path:
    """The shipped ARC-AGI-1 folder (under ``$LALO_EVAL_SUITES`` when that is set)."""
    return datafiles.eval_suites() / "puzzles" / DATASET


def split_dir(split: str = SPLIT) -> Path:
    return dataset_dir() / split


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _missing(folder: Path) -> LaloError:
    return LaloError(
        f"{show(folder)}: ARC-AGI-1 folder not found; it ships in eval_suites/puzzles/{DATASET} (restore it from git, "
        f"or copy it under ${datafiles.ENV_EVAL_SUITES}), or leave ARC out with the suite option kinds=sudoku,maze"
    )


def read_task(path: Path) -> ArcTask:
    try:
        return ArcTask.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise LaloError(f"{show(path)}: not a readable ARC task ({type(exc).__name__})") from None


def cells(grid: ArcGrid) -> int:
    return len(grid) * (len(grid[0]) if grid else 0)


def prompt_cells(task: ArcTask, test_index: int) -> int:
    return sum(cells(p.input) + cells(p.output) for p in task.train) + cells(task.test[test_index].input)


def difficulty(expected: ArcGrid) -> int:
    """By the size of the grid to produce: up to 7×7 → 1, up to 12×12 → 2, larger → 3."""
    n = cells(expected)
    return 1 if n <= 49 else 2 if n <= 144 else 3


def select(seed: int, count: int = TASKS, split: str = SPLIT, max_cells: int = MAX_PROMPT_CELLS) -> ArcPins:
    """A seeded sample of ``count`` tasks whose every test prompt is at most ``max_cells`` cells."""
    folder = split_dir(split)
    if not folder.is_dir():
        raise _missing(folder)
    verify(dataset_dir(), hint=RESTORE_HINT)  # the sample is drawn from every task: all must be the originals
    eligible = []
    for path in sorted(folder.glob("*.json")):
        task = read_task(path)
        if all(prompt_cells(task, k) <= max_cells for k in range(len(task.test))):
            eligible.append(path)
    if len(eligible) < count:
        raise LaloError(f"{folder}: only {len(eligible)} tasks fit {max_cells} prompt cells, {count} wanted")
    chosen = sorted(random.Random(seed).sample(eligible, count))
    pins = [TaskPin(id=p.stem, sha256=_sha256(p)) for p in chosen]
    return ArcPins(dataset=DATASET, split=split, max_prompt_cells=max_cells, tasks=pins)


def write_pins(pins: ArcPins, out_dir: Path) -> str:
    (out_dir / PINS_FILE).write_text(json.dumps(pins.model_dump(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return PINS_FILE


def read_pins(data_dir: Path) -> ArcPins:
    return ArcPins.model_validate_json((data_dir / PINS_FILE).read_bytes())


def task_path(task_id: str, split: str = SPLIT) -> Path:
    return split_dir(split) / f"{task_id}.json"


def load_pinned(pin: TaskPin, split: str) -> ArcTask:
    """The task file, refused with one line if it is missing or differs from its pin."""
    path = task_path(pin.id, split)
    if not path.is_file():
        raise _missing(path.parent) if not path.parent.is_dir() else LaloError(f"{show(path)}: pinned ARC task missing")
    got = _sha256(path)
    if got != pin.sha256:
        raise LaloError(
            f"{show(path)}: sha256 mismatch with {PINS_FILE} (expected {pin.sha256[:12]}…, got {got[:12]}…); "
            f"{RESTORE_HINT}"
        )
    return read_task(path)


def items_from_pins(pins: ArcPins) -> list[ArcItem]:
    """One item per test input of every pinned task, in pin order."""
    out: list[ArcItem] = []
    for pin in pins.tasks:
        task = load_pinned(pin, pins.split)
        for k, pair in enumerate(task.test):
            out.append(
                ArcItem(
                    id=f"puzzles-arc-{pin.id}-{k}",
                    category="arc",
                    difficulty=difficulty(pair.output),
                    task_id=pin.id,
                    split=pins.split,
                    test_index=k,
                    train=task.train,
                    test_input=pair.input,
                    expected=pair.output,
                )
            )
    return out


def lookup_output(task_id: str, test_input: ArcGrid, split: str = SPLIT) -> ArcGrid:
    """The expected output of the test pair whose input is ``test_input`` (the ground-truth echo oracle)."""
    path = task_path(task_id, split)
    if not path.is_file():
        raise LaloError(f"{show(path)}: no such ARC task")
    for pair in read_task(path).test:
        if pair.input == test_input:
            return pair.output
    raise LaloError(f"{show(path)}: no test input matches the prompt's grid")
