"""Reasoning suite: generator, YAML-driven scorer, lm-eval adapter end to end, and one real-model run."""

from __future__ import annotations

import ast
import operator
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from lalo_bench.backends.base import GenerationRequest, StreamChunk
from lalo_bench.backends.lm_eval_adapter import OFFLINE_ENV, LaloLM, to_request  # before any lm_eval import: offline
from lalo_bench.config import GenerationSettings
from lalo_bench.errors import BackendError, LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites import get_suite
from lalo_bench.suites.reasoning import (
    PRIMARY_FILTER,
    ReasoningItem,
    ReasoningSuite,
    default_data_dir,
    load_task_spec,
)
from lalo_bench.suites.reasoning_data import DEFAULT_SEED, NAMES, TASKS, ReasoningRow, generate, write_dataset

REPO = Path(__file__).resolve().parents[1]
YAML_DIR = REPO / "eval_suites" / "lm_eval"


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, list[ReasoningRow]]]:
    return generate(DEFAULT_SEED)


@pytest.fixture(scope="module")
def suite() -> ReasoningSuite:
    return ReasoningSuite()


def all_rows(rows: dict[str, dict[str, list[ReasoningRow]]], task: str) -> list[ReasoningRow]:
    return rows[task]["test"] + rows[task]["train"]


# ---------------------------------------------------------------- generator


def test_generator_is_deterministic_and_matches_the_shipped_files(tmp_path: Path) -> None:
    assert generate(DEFAULT_SEED) == generate(DEFAULT_SEED)
    assert generate(DEFAULT_SEED + 1)["lalo_arith"]["test"] != generate(DEFAULT_SEED)["lalo_arith"]["test"]
    write_dataset(tmp_path, DEFAULT_SEED)
    shipped = default_data_dir()
    names = sorted(p.name for p in shipped.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name


def test_counts_difficulties_and_unique_questions(rows: dict[str, dict[str, list[ReasoningRow]]]) -> None:
    assert {t: len(rows[t]["test"]) for t in TASKS} == {"lalo_arith": 240, "lalo_units": 60, "lalo_logic": 60}
    arith = Counter(r.difficulty for r in rows["lalo_arith"]["test"])
    assert arith == dict.fromkeys(range(1, 7), 40)
    assert {r.category for r in rows["lalo_arith"]["test"]} == {
        "shopping",
        "travel",
        "work_rate",
        "sharing",
        "percent",
        "savings",
    }
    assert {r.difficulty for r in rows["lalo_units"]["test"]} == {1, 2, 3}
    assert {(r.category, r.difficulty) for r in rows["lalo_logic"]["test"]} >= {("ordering", 4), ("syllogism", 3)}
    everything = [r for t in TASKS for r in all_rows(rows, t)]
    assert len({r.id for r in everything}) == len(everything)
    assert len({r.question for r in everything}) == len(everything)  # train shots never repeat a test question


# Independent arithmetic: Python's own parser over exact fractions.
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def exact(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return exact(node.body)
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](exact(node.left), exact(node.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(str(node.value))
    raise ValueError(f"unexpected expression node {ast.dump(node)}")


STEP = re.compile(r"^[^:]+: (?P<expr>[0-9 ()+\-*/.]+) = (?P<value>\d+)\.$")


def test_arithmetic_answers_recompute_from_their_solution_steps(rows: dict[str, dict[str, list[ReasoningRow]]]) -> None:
    for row in all_rows(rows, "lalo_arith"):
        *steps, last = row.solution.splitlines()
        assert last == f"#### {row.answer}", row.id
        assert len(steps) == row.difficulty, row.id
        values = []
        for line in steps:
            m = STEP.match(line)
            assert m, (row.id, line)
            value = exact(ast.parse(m["expr"], mode="eval"))
            assert value == int(m["value"]), (row.id, line)
            values.append(value)
        assert values[-1] == int(row.answer), row.id
        assert int(row.answer) >= 0


# Unit sizes written out again here, so a wrong factor in the generator cannot check itself.
SIZES = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "millimeter": 1,
    "centimeter": 10,
    "meter": 1000,
    "kilometer": 1000 * 1000,
    "milligram": 1,
    "gram": 1000,
    "kilogram": 1000 * 1000,
    "milliliter": 1,
    "liter": 1000,
    "cubic meter": 1000 * 1000,
}


def size(unit: str) -> int:
    return SIZES[unit] if unit in SIZES else SIZES[unit.removesuffix("s")]


def test_unit_answers_are_exact(rows: dict[str, dict[str, list[ReasoningRow]]]) -> None:
    for row in all_rows(rows, "lalo_units"):
        m = re.fullmatch(r"How many (?P<target>[a-z ]+) are in (?P<amount>.+)\?", row.question)
        assert m, row.question
        total = Fraction(0)
        for part in m["amount"].split(" and "):
            qty, unit = part.split(" ", 1)
            total += Fraction(qty) * size(unit)
        assert total / size(m["target"]) == int(row.answer), row.question
        assert row.solution.endswith(f"#### {row.answer}")


FACT = re.compile(r"(\w+) is (\w+) than (\w+)\.")
MORE = {"taller": "shorter", "older": "younger", "faster": "slower", "heavier": "lighter"}
EXTREME = {"tallest", "oldest", "fastest", "heaviest"}


def ordering_answer(question: str) -> str:
    above: set[tuple[str, str]] = set()  # (a, b): a has more of the quality than b
    for a, word, b in FACT.findall(question):
        above.add((a, b) if word in MORE else (b, a))
    people = {p for pair in above for p in pair}
    asked = re.search(r"Who is the (\w+)\?", question)
    assert asked
    if asked[1] in EXTREME:
        return next(p for p in people if not any(b == p for _, b in above))
    return next(p for p in people if not any(a == p for a, _ in above))


def follows(question: str) -> str:
    edges = re.findall(r"All (\w+) are (\w+)\.", question)
    asked = re.search(r"Does it follow that all (\w+) are (\w+)\?", question)
    assert asked
    reach, frontier = {asked[1]}, [asked[1]]
    while frontier:
        here = frontier.pop()
        for a, b in edges:
            if a == here and b not in reach:
                reach.add(b)
                frontier.append(b)
    return "yes" if asked[2] in reach else "no"


def test_logic_answers_recompute(rows: dict[str, dict[str, list[ReasoningRow]]]) -> None:
    answers = Counter()
    for row in all_rows(rows, "lalo_logic"):
        expected = ordering_answer(row.question) if row.category == "ordering" else follows(row.question)
        assert row.answer == expected, row.question
        assert row.solution.endswith(f"#### {row.answer}")
        answers[row.answer if row.category == "syllogism" else "name"] += 1
    assert answers["yes"] > 5 and answers["no"] > 5


def test_a_tampered_copy_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(default_data_dir(), copy)
    assert ReasoningSuite(data_dir=copy).items(1)
    target = copy / "lalo_arith.test.jsonl"
    target.write_text(target.read_text().replace('"answer": "', '"answer": "1', 1))
    with pytest.raises(LaloError, match="sha256 mismatch"):
        ReasoningSuite(data_dir=copy)
    target.unlink()
    with pytest.raises(LaloError, match="missing"):
        ReasoningSuite(data_dir=copy)


# ---------------------------------------------------------------- suite, YAMLs, scorer


def test_items_interleave_tasks_and_the_tasks_option_selects(suite: ReasoningSuite) -> None:
    items = suite.items()
    assert len(items) == 360
    assert {i.task for i in items[:3]} == set(TASKS)  # type: ignore[attr-defined]
    first = items[:24]
    assert len({i.category for i in first}) >= 10 and len({i.difficulty for i in first}) >= 4
    logic = get_suite("reasoning", {"tasks": "lalo_logic"})
    assert {i.category for i in logic.items()} == {"ordering", "syllogism"} and len(logic.items()) == 60
    with pytest.raises(LaloError, match="unknown task"):
        ReasoningSuite(tasks="lalo_arith,gsm8k")


def test_yamls_parse_and_point_at_the_shipped_data() -> None:
    for task in TASKS:
        spec = load_task_spec(YAML_DIR / f"{task}.yaml")
        assert spec.num_fewshot == 3 and spec.until[0] == "Question:"
        assert {f.name for f in spec.filters} == {"strict-match", "flexible-extract"}
        for split, rel in spec.data_files.items():
            assert (REPO / rel).resolve() == (default_data_dir() / f"{task}.{split}.jsonl").resolve()
    flexible = next(f for f in load_task_spec(YAML_DIR / "lalo_logic.yaml").filters if f.name == PRIMARY_FILTER)
    alternatives = re.search(r"\((yes\|no\|[^)]*)\)", flexible.pattern)
    assert alternatives and set(alternatives[1].split("|")) == {"yes", "no", *NAMES}


def test_task_manager_finds_the_tasks_offline() -> None:
    from lm_eval.tasks import TaskManager

    assert all(os.environ[k] == v for k, v in OFFLINE_ENV.items())
    manager = TaskManager(include_path=str(YAML_DIR), include_defaults=False)
    assert {*TASKS, "lalo_reasoning"} <= set(manager.all_tasks)


def first_of(suite: ReasoningSuite, task: str, category: str | None = None) -> ReasoningItem:
    item = next(i for i in suite.items() if i.task == task and category in (None, i.category))  # type: ignore[attr-defined]
    assert isinstance(item, ReasoningItem)
    return item


def test_scorer_right_flexible_wrong_and_malformed(suite: ReasoningSuite) -> None:
    item = first_of(suite, "lalo_arith")
    answer = int(item.answer)
    right = suite.score(item, f"She has 110 - 18 = {answer} dollars left.\n#### {answer}")
    assert (right.score, right.correct, right.details) == (1.0, True, {"strict_match": 1.0, "flexible_extract": 1.0})
    flexible = suite.score(item, f"The answer is {answer}.")
    assert flexible.score == 1.0 and flexible.details["strict_match"] == 0.0 and flexible.error is None
    assert suite.score(item, f"The answer is ${answer}.00").score == 0.0  # exact match: "92.00" is not "92"
    wrong = suite.score(item, f"#### {answer + 1}")
    assert (wrong.score, wrong.correct, wrong.details["strict_match"]) == (0.0, False, 0.0)
    malformed = suite.score(item, "I cannot tell.")
    assert malformed.score == 0.0 and malformed.error and "no answer found" in malformed.error
    big = first_of(suite, "lalo_units", "volume")
    assert suite.score(big, f"That is {int(big.answer):,} in total.").score == 1.0  # thousands separators ignored

    syllogism = first_of(suite, "lalo_logic", "syllogism")
    other = "no" if syllogism.answer == "yes" else "yes"
    assert suite.score(syllogism, f"{syllogism.answer.capitalize()}.").details == {
        "strict_match": 0.0,
        "flexible_extract": 1.0,
    }
    assert suite.score(syllogism, f"#### {other}").score == 0.0
    ordering = first_of(suite, "lalo_logic", "ordering")
    wrong_name = next(n for n in NAMES if n != ordering.answer)
    assert suite.score(ordering, f"#### {ordering.answer}\nOr maybe {wrong_name}.").details == {
        "strict_match": 1.0,
        "flexible_extract": 0.0,  # flexible takes the last name
    }


def test_scorer_agrees_with_lm_evals_own_filter_and_metric(suite: ReasoningSuite) -> None:
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    outputs = [
        "#### 42",
        "The answer is 42.",
        "So 3 * 4 = 12 and then $1,250.\n#### 1,250",
        "no number here",
        "-7 degrees",
        "Yes. Leo is the tallest, not Kim.",
        "#### no\n\nQuestion",
        "",
    ]
    for task in TASKS:
        spec = suite.specs[task]
        for item in [i for i in suite.items() if i.task == task][:5]:  # type: ignore[attr-defined]
            assert isinstance(item, ReasoningItem)
            reference = item.solution
            candidates = [*outputs, f"#### {item.answer}", f"It is {item.answer}."]
            ours = [suite.score(item, out).details for out in candidates]
            for rule in spec.filters:
                filtered = RegexFilter(rule.pattern, rule.group_select).apply([[o] for o in candidates], [])
                for (prediction,), mine in zip(filtered, ours, strict=True):
                    theirs = exact_match_hf_evaluate(
                        predictions=[prediction], references=[reference], **spec.match.model_dump()
                    )["exact_match"]
                    assert mine[rule.name.replace("-", "_")] == theirs, (task, rule.name, prediction)


def test_summarize_reports_task_category_and_difficulty(suite: ReasoningSuite) -> None:
    items = suite.items(6)
    records = [
        ItemRecord(
            item_id=i.id,
            category=i.category,
            difficulty=i.difficulty,
            output="",
            score=float(i.task == "lalo_arith"),  # type: ignore[attr-defined]
            correct=i.task == "lalo_arith",  # type: ignore[attr-defined]
            details={"strict_match": 0.0, "flexible_extract": float(i.task == "lalo_arith")},  # type: ignore[attr-defined]
        )
        for i in items
    ]
    summary = suite.summarize(records)
    assert summary["flexible_extract"] == pytest.approx(1 / 3) and summary["strict_match"] == 0.0
    assert summary["score.task.lalo_arith"] == 1.0 and summary["score.task.lalo_units"] == 0.0
    assert summary[f"score.{items[0].category}"] == 1.0
    for d in {i.difficulty for i in items}:
        group = [r.score for r in records if r.difficulty == d]
        assert summary[f"score.difficulty.{d}"] == pytest.approx(sum(group) / len(group))
    assert not any(k.startswith("lm_eval.") for k in summary)


# ---------------------------------------------------------------- lm-eval end to end (scripted backend)


class ScriptedBackend:
    """Answers each question with a reply fixed in advance (the only way to know what lm-eval must score)."""

    def __init__(self, replies: dict[str, str | None]) -> None:
        self.replies = replies
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[StreamChunk]:
        self.requests.append(request)
        question = request.messages[-1].content.rsplit("Question: ", 1)[1]
        reply = self.replies[question]
        if reply is None:
            raise BackendError("scripted failure")
        for word in reply.split(" "):
            yield StreamChunk(text=word + " ", tokens=1, prompt_tokens=100)
        yield StreamChunk(text="", tokens=0, finish_reason="stop", prompt_tokens=100)

    def close(self) -> None:
        pass


def scripted_reply(item: ReasoningItem, style: str) -> str | None:
    wrong = {"yes": "no", "no": "yes"}.get(item.answer) or (
        next(n for n in NAMES if n != item.answer) if item.category == "ordering" else str(int(item.answer) + 3)
    )
    return {
        "strict": f"Working it out.\n#### {item.answer}",
        "flexible": f"The answer is {item.answer}.",
        "wrong": f"#### {wrong}",
        "malformed": "I am not sure.",
        "fails": None,
    }[style]


EXPECTED = {  # style → (strict-match, flexible-extract)
    "strict": (1.0, 1.0),
    "flexible": (0.0, 1.0),
    "wrong": (0.0, 0.0),
    "malformed": (0.0, 0.0),
    "fails": (0.0, 0.0),
}


def test_run_with_scores_through_lm_eval_and_joins_timings(suite: ReasoningSuite) -> None:
    items = [i for i in suite.items(15) if isinstance(i, ReasoningItem)]
    styles = {i.id: list(EXPECTED)[n % len(EXPECTED)] for n, i in enumerate(items)}
    prompts = {i.id: suite.prompt(i) for i in items}
    backend = ScriptedBackend(
        {prompts[i.id].rsplit("Question: ", 1)[1]: scripted_reply(i, styles[i.id]) for i in items}
    )
    seen: list[ItemRecord] = []

    results = suite.run_with(backend, GenerationSettings(max_tokens=32, seed=7), list(items), seen.append)

    assert [r.item_id for r, _ in results] == [i.id for i in items] == [r.item_id for r in seen]
    # lm-eval sent exactly the prompt and stops that the suite builds for the non-harness path
    sent = {r.messages[0].content for r in backend.requests}
    assert sent == set(prompts.values()) and len(backend.requests) == len(items)
    assert all(r.stop == suite.request(items[0], 32).stop and r.max_tokens == 32 for r in backend.requests)
    assert all(r.seed == 7 and len(r.messages) == 1 and r.messages[0].role == "user" for r in backend.requests)
    for item, (record, timing) in zip(items, results, strict=True):
        style = styles[item.id]
        strict, flexible = EXPECTED[style]
        assert (record.details["strict_match"], record.details["flexible_extract"]) == (strict, flexible), style
        assert record.score == flexible and record.correct == (flexible == 1.0)
        assert record.category == item.category and record.difficulty == item.difficulty
        if style == "fails":
            assert timing is None and record.error == "generation failed: scripted failure" and record.e2e_ms is None
            continue
        reply = scripted_reply(item, style)
        assert reply is not None and record.output == reply + " "
        assert timing is not None and timing.output_tokens == len(reply.split(" ")) == record.output_tokens
        assert record.prompt_tokens == 100 and record.e2e_ms is not None and record.ttft_ms is not None
        assert (record.error is not None) == (style == "malformed")
        assert suite.score(item, record.output).details == record.details  # the offline scorer agrees
    # lm-eval's own aggregates equal the records' means, and reach the suite metrics
    run = suite.last_run
    assert run is not None and run.n_shot == dict.fromkeys(TASKS, 3)
    records = [r for r, _ in results]
    summary = suite.summarize(records)
    for task in TASKS:
        mine = [r for r in records if r.item_id.startswith(task.removeprefix("lalo_"))]
        for name in ("strict-match", "flexible-extract"):
            mean = sum(r.details[name.replace("-", "_")] for r in mine) / len(mine)
            assert run.results[task][f"exact_match,{name}"] == pytest.approx(mean)
            assert summary[f"lm_eval.{task}.exact_match.{name}"] == pytest.approx(mean)


def test_the_adapter_is_registered_and_generation_only() -> None:
    from lm_eval.api.registry import get_model

    assert get_model("lalo") is LaloLM
    lm = LaloLM(backend=ScriptedBackend({}), settings=GenerationSettings(max_tokens=50, temperature=0.5))
    with pytest.raises(LaloError, match="only generates text"):
        lm.loglikelihood([])
    with pytest.raises(LaloError, match="only generates text"):
        lm.loglikelihood_rolling([])
    request = to_request("ctx", {"until": "\n\n", "max_gen_toks": 9, "temperature": 0.0}, lm.settings)
    assert (request.stop, request.max_tokens, request.temperature) == (["\n\n"], 9, 0.5)


# ---------------------------------------------------------------- a real model


@pytest.mark.slow
def test_run_with_on_smollm2(smollm2: Path, suite: ReasoningSuite) -> None:
    from lalo_bench.backends.llamacpp import LlamaCppBackend

    items = suite.items(3)
    backend = LlamaCppBackend(smollm2, n_ctx=2048)
    try:
        results = suite.run_with(backend, GenerationSettings(max_tokens=64), items, lambda r: None)
    finally:
        backend.close()
    assert [r.item_id for r, _ in results] == [i.id for i in items]
    for item, (record, timing) in zip(items, results, strict=True):
        assert timing is not None and timing.output_tokens > 0 and record.output.strip()
        assert record.ttft_ms and record.ttft_ms > 0 and record.prompt_tokens > 100  # the 3-shot prompt
        assert record.score in (0.0, 1.0) and set(record.details) == {"strict_match", "flexible_extract"}
        assert suite.score(item, record.output).details == record.details
    assert suite.last_run is not None and set(suite.last_run.results) == set(TASKS)
