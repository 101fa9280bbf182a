"""Tool calling: the Berkeley Function Calling Leaderboard (BFCL v4), its single-turn AST categories.

Items are BFCL's own, ids included (``simple_python_0``, ``live_multiple_12-4-1``),
vendored unmodified from the PyPI package bfcl-eval 2026.3.23 into
``eval_suites/tool_calls/bfcl_v4`` and pinned by sha256 (:func:`write_dataset`
re-creates the folder from the wheel byte for byte).

Two ways to offer the functions (suite option ``mode``):

- ``native``: as ``GenerationRequest.tools`` (OpenAI format, Gorilla types mapped
  to JSON Schema as BFCL does for function-calling models), rendered by the
  model's own chat template;
- ``prompt``: the function docs as JSON in the system prompt, asking for a JSON
  list of ``{"name", "arguments"}`` or ``[]``.

Replies are read by :mod:`.tool_parsing` (JSON, fenced, ``<tool_call>`` tags,
Python call syntax) and judged by :mod:`.bfcl_checker`, BFCL's AST checker
semantics. :meth:`ToolCallSuite.summarize` reproduces BFCL's aggregates.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lalo_bench import datafiles
from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.suites.base import ItemScore, SuiteItem, TaskType
from lalo_bench.suites.bfcl_checker import ExpectedCall, FunctionDoc, check
from lalo_bench.suites.manifest import load_manifest, verify, write_manifest
from lalo_bench.suites.tool_parsing import FunctionCall, ToolParseError, parse_calls

SUITE_ID = "tool_calls"
SUITE_VERSION = "1"
DATA_DIR_NAME = "bfcl_v4"
GENERATOR = "lalo_bench.suites.tool_calls"
BFCL_PACKAGE = "bfcl-eval"
BFCL_VERSION = "2026.3.23"
BFCL_WHEEL = f"bfcl_eval-{BFCL_VERSION}-py3-none-any.whl"
ORDER_SEED = 1234
ENV_ROOT = datafiles.ENV_EVAL_SUITES
NOTICE_FILE = "NOTICE"
ANSWER_DIR = "possible_answer"

CATEGORIES: dict[str, int] = {
    "simple_python": 1,
    "multiple": 2,
    "parallel": 3,
    "parallel_multiple": 4,
    "irrelevance": 1,
    "live_simple": 1,
    "live_multiple": 2,
    "live_parallel": 3,
    "live_parallel_multiple": 4,
    "live_relevance": 2,
    "live_irrelevance": 1,
}
"""BFCL category → difficulty: one call, choose among functions, several calls, several calls among functions."""

NO_ANSWER = ("irrelevance", "live_relevance", "live_irrelevance")
NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANCE = ("irrelevance", "live_irrelevance")
SECTION_WEIGHTS = {"non_live": 10, "live": 10, "irrelevance": 10}
"""BFCL v4 overall weights of the sections this suite covers (multi-turn 30 and agentic 40 are not run here)."""

Mode = Literal["native", "prompt"]
LANGUAGE_HINT = " Note that the provided function is in Python 3 syntax."


class ToolCallItem(SuiteItem):
    """A BFCL entry: the conversation, the functions offered, and the possible answers per expected call."""

    task_type: Literal["tool_call"] = "tool_call"
    messages: list[ChatMessage]
    functions: list[FunctionDoc]
    ground_truth: list[ExpectedCall] = Field(default_factory=list, description="empty for (ir)relevance items")


# ---------------------------------------------------------------- data


def question_file(category: str) -> str:
    return f"BFCL_v4_{category}.json"


def answer_file(category: str) -> str:
    return f"{ANSWER_DIR}/BFCL_v4_{category}.json"


def data_files() -> list[str]:
    """Every vendored data file, relative to the data folder."""
    answers = [answer_file(c) for c in CATEGORIES if c not in NO_ANSWER]
    return [*(question_file(c) for c in CATEGORIES), *answers]


NOTICE = f"""\
Berkeley Function Calling Leaderboard (BFCL) v4 data

The BFCL_v4_*.json files in this folder and in {ANSWER_DIR}/ are copied unmodified
from the PyPI package {BFCL_PACKAGE} {BFCL_VERSION} ({BFCL_WHEEL}),
paths bfcl_eval/data/BFCL_v4_<category>.json and
bfcl_eval/data/{ANSWER_DIR}/BFCL_v4_<category>.json, for the categories
{", ".join(CATEGORIES)}.

Authors: Huanzhi Mao, Shishir Patil, Sky Computing Lab, UC Berkeley.
Source: https://github.com/ShishirPatil/gorilla/tree/main/berkeley-function-call-leaderboard
License: Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0),
as declared by the package (License: Apache 2.0) and the dataset card (license: apache-2.0).
"""


def write_dataset(out_dir: Path, wheel: Path) -> Path:
    """Copy the categories' files out of the bfcl-eval wheel, write NOTICE and the manifest; returns its path."""
    if not wheel.is_file():
        raise LaloError(f"{wheel}: no such file; fetch it with `pip download --no-deps {BFCL_PACKAGE}=={BFCL_VERSION}`")
    with zipfile.ZipFile(wheel) as archive:
        if f"bfcl_eval-{BFCL_VERSION}.dist-info/METADATA" not in archive.namelist():
            raise LaloError(f"{wheel}: not the {BFCL_PACKAGE} {BFCL_VERSION} wheel")
        for name in data_files():
            target = out_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(f"bfcl_eval/data/{name}"))
    (out_dir / NOTICE_FILE).write_text(NOTICE, encoding="utf-8")
    count = sum(len(_read_jsonl(out_dir / question_file(c))) for c in CATEGORIES)
    return write_manifest(
        out_dir,
        suite=SUITE_ID,
        version=SUITE_VERSION,
        generator=GENERATOR,
        generator_version=f"{BFCL_PACKAGE}=={BFCL_VERSION}",
        seed=ORDER_SEED,
        count=count,
        files=[*data_files(), NOTICE_FILE],
    )


def default_data_dir() -> Path:
    """``$LALO_EVAL_SUITES/tool_calls/bfcl_v4`` when set, else the folder shipped with lalo-bench."""
    return datafiles.eval_suites() / SUITE_ID / DATA_DIR_NAME


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_items(data_dir: Path, categories: Sequence[str] = tuple(CATEGORIES)) -> list[ToolCallItem]:
    """Items of ``categories`` from a verified folder, in file order (raises LaloError if files differ)."""
    verify(data_dir)
    items: list[ToolCallItem] = []
    for category in categories:
        questions = _read_jsonl(data_dir / question_file(category))
        answers = [None] * len(questions) if category in NO_ANSWER else _read_jsonl(data_dir / answer_file(category))
        if len(answers) != len(questions):
            raise LaloError(f"{data_dir}: {category} has {len(questions)} questions but {len(answers)} answers")
        items.extend(make_item(category, q, a) for q, a in zip(questions, answers, strict=True))
    return items


def make_item(category: str, question: dict[str, Any], answer: dict[str, Any] | None) -> ToolCallItem:
    """One BFCL entry (single turn) and its possible answers, aligned by position as BFCL aligns them."""
    if len(question["question"]) != 1:
        raise LaloError(f"{question['id']}: {len(question['question'])} turns; only single-turn categories run here")
    if answer is not None and answer["id"] != question["id"]:
        raise LaloError(f"{question['id']}: possible answer is for '{answer['id']}'")
    return ToolCallItem(
        id=question["id"],
        category=category,
        difficulty=CATEGORIES[category],
        messages=[ChatMessage.model_validate(m) for m in question["question"][0]],
        functions=[FunctionDoc.model_validate(f) for f in question["function"]],
        ground_truth=[ExpectedCall.from_bfcl(g) for g in answer["ground_truth"]] if answer else [],
    )


def interleave(items: list[ToolCallItem], seed: int) -> list[ToolCallItem]:
    """Seeded shuffle within each category, then round-robin over categories: every prefix mixes all of them."""
    groups: dict[str, list[ToolCallItem]] = {c: [] for c in CATEGORIES}
    for item in items:
        groups[item.category].append(item)
    for category, group in groups.items():
        random.Random(f"{seed}:{category}").shuffle(group)
    longest = max((len(g) for g in groups.values()), default=0)
    return [g[j] for j in range(longest) for g in groups.values() if j < len(g)]


def parse_categories(categories: str | None) -> list[str]:
    """A comma-separated subset of :data:`CATEGORIES` (all when None or empty), in canonical order."""
    if not categories:
        return list(CATEGORIES)
    wanted = {c.strip() for c in str(categories).split(",") if c.strip()}
    unknown = sorted(wanted - set(CATEGORIES))
    if unknown:
        raise LaloError(f"tool_calls: unknown categories {', '.join(unknown)} (known: {', '.join(CATEGORIES)})")
    return [c for c in CATEGORIES if c in wanted]


# ---------------------------------------------------------------- requests

PROMPT_INSTRUCTION = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. "
    "If none of the functions can be used, or the question lacks the parameters a function requires, "
    "make no call.\n\n"
    'Reply with only a JSON list of calls, each {"name": <function name>, "arguments": {<parameter>: <value>}}, '
    'for example [{"name": "func1", "arguments": {"a": 1}}, {"name": "func2", "arguments": {"b": "x"}}]. '
    "Reply with [] when no function applies. Do not write any other text.\n\n"
    "Here is a list of functions in JSON format that you can invoke.\n"
)
OPENAPI_TYPES = {
    "integer": "integer",
    "float": "number",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "array": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
    "any": "string",
}


def documented(doc: FunctionDoc) -> dict[str, Any]:
    """The doc as BFCL shows it at generation time: with its language hint appended to the description."""
    raw = doc.model_dump()
    raw["description"] = doc.description + LANGUAGE_HINT
    return raw


def json_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A Gorilla-typed property as JSON Schema (``float`` → ``number`` with ``format: float``, as BFCL maps it)."""
    out = dict(prop)
    kind = prop.get("type")
    out["type"] = OPENAPI_TYPES.get(str(kind), "string")
    if kind == "float":
        out["format"] = "float"
        out["description"] = prop.get("description", "") + " This is a float type value."
    if isinstance(prop.get("properties"), dict):
        out["properties"] = {k: json_schema(v) for k, v in prop["properties"].items()}
    if isinstance(prop.get("items"), dict):
        out["items"] = json_schema(prop["items"])
    return out


def openai_tool(doc: FunctionDoc) -> dict[str, Any]:
    """``{"type": "function", "function": {…}}``; dotted names are kept, as BFCL's local chat-template handlers do."""
    raw = documented(doc)
    parameters = json_schema(raw["parameters"])
    parameters["type"] = "object"
    function = {"name": doc.name, "description": raw["description"], "parameters": parameters}
    return {"type": "function", "function": function}


def prompt_messages(item: ToolCallItem) -> list[ChatMessage]:
    """BFCL's prompting layout: the instruction and docs lead the system message, the item's own system text after."""
    docs = json.dumps([documented(f) for f in item.functions], ensure_ascii=False)
    system = PROMPT_INSTRUCTION + docs
    messages = list(item.messages)
    if messages and messages[0].role == "system":
        return [ChatMessage(role="system", content=f"{system}\n\n{messages[0].content}"), *messages[1:]]
    return [ChatMessage(role="system", content=system), *messages]


def build_request(item: ToolCallItem, mode: Mode, max_tokens: int) -> GenerationRequest:
    if mode == "prompt":
        return GenerationRequest(messages=prompt_messages(item), max_tokens=max_tokens)
    tools = [openai_tool(f) for f in item.functions] or None
    return GenerationRequest(messages=list(item.messages), max_tokens=max_tokens, tools=tools)


# ---------------------------------------------------------------- scoring


def score_output(item: ToolCallItem, output: str) -> ItemScore:
    """1 when BFCL's checker accepts the reply; ``error`` when it tried to call and could not be read.

    An unreadable reply is "no call" to BFCL, so it passes irrelevance items and ``error`` stays unset there.
    """
    calls: list[FunctionCall] | None
    try:
        calls, error = parse_calls(output), None
    except ToolParseError as exc:
        calls, error = None, f"unreadable tool call: {exc}"
    result = check(item.category, item.functions, calls, item.ground_truth)
    return ItemScore(
        score=float(result.valid),
        correct=result.valid,
        error=None if item.category in IRRELEVANCE else error,
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def summarize_records(records: Sequence[ItemRecord]) -> dict[str, float]:
    """Accuracy per category (``acc.<category>``) and BFCL v4's aggregates over the categories present.

    As ``bfcl_eval/eval_checker/eval_runner_helper.py`` computes them:

    - ``bfcl.non_live`` = unweighted mean of simple, multiple, parallel, parallel_multiple accuracies
      (BFCL's "simple" also averages Java and JavaScript, which are not run here: simple = simple_python);
    - ``bfcl.live`` = mean weighted by item count over live_simple, live_multiple, live_parallel,
      live_parallel_multiple (i.e. accuracy over all their items);
    - ``bfcl.irrelevance`` = unweighted mean of irrelevance and live_irrelevance; ``bfcl.relevance`` = live_relevance;
    - ``bfcl.overall`` = Σ wᵢ·sectionᵢ / Σ wᵢ over the sections present among non_live, live, irrelevance with
      BFCL's weights 10, 10, 10 (its multi-turn 30 and agentic 40 are not run, so they drop out of the denominator).

    BFCL counts a category that was not run as 0; here a missing category is left out instead, so a
    ``categories`` subset or a ``limit`` gives the aggregate of what was run.
    """
    by_category: dict[str, list[float]] = {}
    for record in records:
        by_category.setdefault(record.category, []).append(float(record.correct))
    acc = {c: _mean(v) for c, v in by_category.items()}
    out = {f"acc.{c}": acc[c] for c in CATEGORIES if c in acc}
    sections: dict[str, float] = {}
    if non_live := [acc[c] for c in NON_LIVE_AST if c in acc]:
        sections["non_live"] = _mean(non_live)
    if live := [v for c in LIVE_AST for v in by_category.get(c, [])]:
        sections["live"] = _mean(live)
    if irrelevance := [acc[c] for c in IRRELEVANCE if c in acc]:
        sections["irrelevance"] = _mean(irrelevance)
    out.update({f"bfcl.{k}": v for k, v in sections.items()})
    if "live_relevance" in acc:
        out["bfcl.relevance"] = acc["live_relevance"]
    if sections:
        weight = sum(SECTION_WEIGHTS[k] for k in sections)
        out["bfcl.overall"] = sum(SECTION_WEIGHTS[k] * v for k, v in sections.items()) / weight
    return out


# ---------------------------------------------------------------- suite


def _narrow(item: SuiteItem) -> ToolCallItem:
    if not isinstance(item, ToolCallItem):
        raise TypeError(f"tool_calls suite got a {type(item).__name__}, not a ToolCallItem")
    return item


class ToolCallSuite:
    """BFCL v4 single-turn categories over the pinned data folder (verified against its manifest on load)."""

    id: str = SUITE_ID
    version: str = SUITE_VERSION
    task_type: TaskType = "tool_call"

    def __init__(self, mode: str = "native", categories: str | None = None, data_dir: Path | None = None) -> None:
        if mode not in ("native", "prompt"):
            raise LaloError(f"tool_calls: mode must be 'native' or 'prompt', got '{mode}'")
        self.mode: Mode = "prompt" if mode == "prompt" else "native"
        self.categories = parse_categories(categories)
        self.data_dir = data_dir or default_data_dir()
        if not self.data_dir.is_dir():
            raise LaloError(f"{self.data_dir}: tool_calls data folder not found; set {ENV_ROOT} or restore it from git")
        seed = load_manifest(self.data_dir).seed
        self._items = interleave(load_items(self.data_dir, self.categories), seed)

    def items(self, limit: int | None = None) -> list[SuiteItem]:
        chosen = self._items if limit is None else self._items[:limit]
        return list(chosen)

    def request(self, item: SuiteItem, max_tokens: int) -> GenerationRequest:
        return build_request(_narrow(item), self.mode, max_tokens)

    def score(self, item: SuiteItem, output: str) -> ItemScore:
        return score_output(_narrow(item), output)

    def summarize(self, records: Sequence[ItemRecord]) -> dict[str, float]:
        return summarize_records(records)


if __name__ == "__main__":
    import sys

    print(write_dataset(default_data_dir(), Path(sys.argv[1] if len(sys.argv) > 1 else BFCL_WHEEL)))
