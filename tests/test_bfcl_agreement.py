"""Agreement with the real BFCL checker: the same (item, reply) pairs scored by bfcl-eval's code and by ours.

The reference is ``bfcl_eval.eval_checker.ast_eval.ast_checker`` and ``bfcl_eval.utils`` from the bfcl-eval
2026.3.23 wheel (install: ``.venv/bin/pip install --no-deps bfcl-eval==2026.3.23``; it is a test-only
dependency). Its ``constants.model_config`` builds the model registry by importing every provider SDK
(anthropic, openai, cohere, mistralai, google-genai, boto3, qwen-agent, writer, …); the checker reads one
flag from it (``underscore_to_dot``). Where those SDKs are absent the registry is replaced by a module holding
just that flag, read from BFCL's own ``model_config.py`` source for the two models used here, so the checker
code that runs is BFCL's, unmodified.

Replies are rendered as text (JSON, Hermes ``<tool_call>`` tags, BFCL's Python syntax) for our parser; BFCL
gets what its decoder would make of that text (``json.loads`` for JSON, Python literals for Python syntax,
nothing for unreadable text), as in ``eval_runner._evaluate_single_ast_entry`` / ``_relevance_entry``.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.metadata
import importlib.util
import json
import random
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lalo_bench.suites.bfcl_checker import check
from lalo_bench.suites.tool_calls import BFCL_VERSION, ToolCallItem, ToolCallSuite, answer_file, question_file
from lalo_bench.suites.tool_parsing import FunctionCall
from tests.test_tool_calls import DATA_DIR, as_json, as_python, as_tool_tags, correct_calls

PROMPT_MODEL = "gpt-4o-2024-11-20"  # BFCL's prompting entry: names compared as documented
FC_MODEL = "gpt-4o-2024-11-20-FC"  # BFCL's function-calling entry: dots expected as underscores
REGISTRY = "bfcl_eval.constants.model_config"
MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Reference:
    """The pieces of bfcl-eval that decide a verdict."""

    ast_checker: Callable[..., dict[str, Any]]
    python: Any
    is_empty_output: Callable[[Any], bool]
    is_function_calling_format_output: Callable[[Any], bool]
    registry: str


def underscore_flags_from_source() -> dict[str, bool]:
    """``underscore_to_dot`` of our two models as written in BFCL's ``model_config.py``."""
    spec = importlib.util.find_spec(REGISTRY)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    flags: dict[str, bool] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in (PROMPT_MODEL, FC_MODEL) and isinstance(value, ast.Call):
                flag = next(kw.value for kw in value.keywords if kw.arg == "underscore_to_dot")
                flags[key.value] = ast.literal_eval(flag)
    assert flags == {PROMPT_MODEL: False, FC_MODEL: True}
    return flags


def registry_stand_in(flags: dict[str, bool]) -> types.ModuleType:
    module = types.ModuleType(REGISTRY)
    module.MODEL_CONFIG_MAPPING = {name: types.SimpleNamespace(underscore_to_dot=flag) for name, flag in flags.items()}  # type: ignore[attr-defined]
    return module


@pytest.fixture(scope="module")
def bfcl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    try:
        version = importlib.metadata.version("bfcl-eval")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"bfcl-eval not installed: `.venv/bin/pip install --no-deps bfcl-eval=={BFCL_VERSION}`")
    assert version == BFCL_VERSION, f"agreement is pinned to bfcl-eval {BFCL_VERSION}, found {version}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BFCL_PROJECT_ROOT", str(tmp_path_factory.mktemp("bfcl-root")))  # bfcl_eval.utils mkdirs there
        flags = underscore_flags_from_source()
        try:
            importlib.import_module(REGISTRY)
            registry = "real"
        except ImportError:
            mp.setitem(sys.modules, REGISTRY, registry_stand_in(flags))
            registry = "stand-in"
        checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
        enums = importlib.import_module("bfcl_eval.constants.enums")
        utils = importlib.import_module("bfcl_eval.utils")
        yield Reference(
            ast_checker=checker.ast_checker,
            python=enums.Language.PYTHON,
            is_empty_output=utils.is_empty_output,
            is_function_calling_format_output=utils.is_function_calling_format_output,
            registry=registry,
        )
        sys.modules.pop("bfcl_eval.eval_checker.ast_eval.ast_checker", None)


@pytest.fixture(scope="module")
def suite() -> ToolCallSuite:
    return ToolCallSuite()


@pytest.fixture(scope="module")
def raw_entries() -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """BFCL's entries read straight from the vendored files (not through our models): id → (question, answer)."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for category in ToolCallSuite().categories:
        questions = _jsonl(DATA_DIR / question_file(category))
        answer_path = DATA_DIR / answer_file(category)
        answers = _jsonl(answer_path) if answer_path.is_file() else [None] * len(questions)
        out.update({q["id"]: (q, a) for q, a in zip(questions, answers, strict=True)})
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Pair:
    item: ToolCallItem
    label: str
    text: str
    decoded: list[dict[str, dict[str, Any]]] | None  # what BFCL's decoder makes of ``text``; None: undecodable


Variant = Callable[[ToolCallItem, list[FunctionCall], random.Random], list[FunctionCall] | None]
JSON_RENDERERS = (as_json, as_tool_tags)


def _decoded(calls: list[FunctionCall], via_json: bool) -> list[dict[str, dict[str, Any]]]:
    structure = [{c.name: dict(c.arguments)} for c in calls]
    return json.loads(json.dumps(structure)) if via_json else copy.deepcopy(structure)


def _edit(calls: list[FunctionCall], index: int, arguments: dict[str, Any]) -> list[FunctionCall]:
    edited = list(calls)
    edited[index] = FunctionCall(name=calls[index].name, arguments=arguments)
    return edited


def _first_param(calls: list[FunctionCall], kinds: tuple[type, ...]) -> tuple[int, str] | None:
    for i, call in enumerate(calls):
        for name, value in call.arguments.items():
            if type(value) in kinds:
                return i, name
    return None


def _change_param(calls: list[FunctionCall], kinds: tuple[type, ...], change: Callable[[Any], Any]) -> Any:
    found = _first_param(calls, kinds)
    if found is None:
        return None
    i, name = found
    return _edit(calls, i, {**calls[i].arguments, name: change(calls[i].arguments[name])})


def wrong_value(value: Any) -> Any:
    if type(value) is bool:
        return not value
    if type(value) in (int, float):
        return value + 7
    if type(value) is str:
        return value + " zzz"
    if type(value) is list:
        return [*value, "zzz"]
    return {**value, "zzz": 1}


def wrong_type(value: Any) -> Any:
    if type(value) in (int, float, bool):
        return str(value).lower()
    if type(value) is str:
        return 12345
    return "zzz"


def _required_present(item: ToolCallItem, calls: list[FunctionCall]) -> list[FunctionCall] | None:
    for i, call in enumerate(calls):
        doc = next((f for f in item.functions if f.name == call.name), None)
        required = doc.parameters.required if doc else []
        name = next((p for p in call.arguments if p in required), None)
        if name is not None:
            return _edit(calls, i, {k: v for k, v in call.arguments.items() if k != name})
    return None


def _omit_optional(item: ToolCallItem, calls: list[FunctionCall]) -> list[FunctionCall] | None:
    for i, (call, want) in enumerate(zip(calls, item.ground_truth, strict=False)):
        name = next((p for p in call.arguments if "" in want.answers.get(p, [])), None)
        if name is not None:
            return _edit(calls, i, {k: v for k, v in call.arguments.items() if k != name})
    return None


def _wrong_function(item: ToolCallItem, calls: list[FunctionCall]) -> list[FunctionCall] | None:
    if not calls:
        return None
    others = [f.name for f in item.functions if f.name != calls[0].name]
    name = others[0] if others else calls[0].name + "_v2"
    return [FunctionCall(name=name, arguments=calls[0].arguments), *calls[1:]]


def _extra_param(calls: list[FunctionCall], index: int) -> list[FunctionCall]:
    return _edit(calls, index, {**calls[index].arguments, "zzz": 1})


def _string_variant(value: str) -> str:
    """Same string after BFCL's standardization: case, spaces and ``,./-_*^`` differ."""
    return value.upper().replace(" ", " - ") + "."


VARIANTS: dict[str, Variant] = {
    "correct": lambda item, calls, rng: calls,
    "reordered": lambda item, calls, rng: calls[::-1] if len(calls) > 1 else None,
    "string_variant": lambda item, calls, rng: _change_param(calls, (str,), _string_variant),
    "int_for_float": lambda item, calls, rng: _change_param(
        calls, (float,), lambda v: int(v) if float(v).is_integer() else v
    ),
    "omit_optional": lambda item, calls, rng: _omit_optional(item, calls),
    "wrong_value": lambda item, calls, rng: _change_param(calls, (str, int, float, bool, list, dict), wrong_value),
    "missing_required": lambda item, calls, rng: _required_present(item, calls),
    "extra_param": lambda item, calls, rng: _extra_param(calls, rng.randrange(len(calls))),
    "wrong_type": lambda item, calls, rng: _change_param(calls, (str, int, float, bool, list, dict), wrong_type),
    "float_for_int": lambda item, calls, rng: _change_param(calls, (int,), float),
    "none_value": lambda item, calls, rng: _change_param(calls, (str, int, float, list), lambda v: None),
    "wrong_function": lambda item, calls, rng: _wrong_function(item, calls),
    "missing_call": lambda item, calls, rng: calls[:-1] if len(calls) > 1 else None,
    "extra_call": lambda item, calls, rng: [*calls, calls[rng.randrange(len(calls))]],
    "no_call": lambda item, calls, rng: [],
}
PYTHON_ONLY = {"tuple_value": lambda item, calls, rng: _change_param(calls, (list,), tuple)}
UNREADABLE = ('[{"name": "', "I'm sorry, I can't help with that request.")


def ast_pairs(item: ToolCallItem, serial: Iterator[int]) -> list[Pair]:
    rng = random.Random(item.id)
    calls = correct_calls(item)
    pairs: list[Pair] = []
    for label, variant in VARIANTS.items():
        changed = variant(item, calls, rng)
        if changed is None:
            continue
        render = (as_json, as_tool_tags, as_python)[next(serial) % 3]
        pairs.append(Pair(item, label, render(changed), _decoded(changed, render in JSON_RENDERERS)))
    for label, variant in PYTHON_ONLY.items():
        changed = variant(item, calls, rng)
        if changed is not None:
            pairs.append(Pair(item, label, as_python(changed), _decoded(changed, via_json=False)))
    pairs.extend(Pair(item, "unreadable", text, None) for text in UNREADABLE)
    return pairs


def relevance_pairs(item: ToolCallItem, serial: Iterator[int]) -> list[Pair]:
    """No call ([], a refusal, broken JSON) and a call (with and without arguments) to an offered function."""
    doc = item.functions[0] if item.functions else None
    name = doc.name if doc else "lookup"
    required = doc.parameters.required if doc else []
    filled = [FunctionCall(name=name, arguments={p: "x" for p in required})]
    bare = [FunctionCall(name=name, arguments={})]
    pairs = [
        Pair(item, "empty_list", "[]", []),
        Pair(item, "refusal", "None of the functions can answer that; I need more information.", None),
        Pair(item, "broken", '[{"name": "' + name, None),
    ]
    for label, calls in (("call", filled), ("bare_call", bare)):
        render = (as_json, as_tool_tags, as_python)[next(serial) % 3]
        pairs.append(Pair(item, label, render(calls), _decoded(calls, render in JSON_RENDERERS)))
    return pairs


def all_pairs(suite: ToolCallSuite) -> list[Pair]:
    serial = iter(range(10**9))
    pairs: list[Pair] = []
    for item in suite.items():
        make = relevance_pairs if "relevance" in item.category else ast_pairs
        pairs.extend(make(item, serial))
    return pairs


def bfcl_verdict(
    ref: Reference, entry: tuple[dict[str, Any], dict[str, Any] | None], category: str, decoded: Any, model: str
) -> bool:
    """BFCL's own decision path for one decoded reply (``eval_runner._evaluate_single_*_entry``)."""
    question, answer = entry
    if "relevance" in category:
        made_call = decoded is not None and not ref.is_empty_output(decoded)
        return not made_call if "irrelevance" in category else made_call
    if decoded is None or not ref.is_function_calling_format_output(decoded) or answer is None:
        return False
    functions, truth = copy.deepcopy(question["function"]), copy.deepcopy(answer["ground_truth"])
    return bool(ref.ast_checker(functions, copy.deepcopy(decoded), truth, ref.python, category, model)["valid"])


# ---------------------------------------------------------------- tests


def test_vendored_files_are_the_packages_own(bfcl: Reference) -> None:
    import bfcl_eval

    package_data = Path(bfcl_eval.__file__).parent / "data"
    for category in ToolCallSuite().categories:
        names = [question_file(category), answer_file(category)]
        for name in names:
            if (DATA_DIR / name).is_file() or (package_data / name).is_file():
                assert (DATA_DIR / name).read_bytes() == (package_data / name).read_bytes(), name


def test_agreement_with_bfcl_checker(
    bfcl: Reference, suite: ToolCallSuite, raw_entries: dict[str, tuple[dict[str, Any], dict[str, Any] | None]]
) -> None:
    pairs = all_pairs(suite)
    verdicts: Counter[tuple[str, bool]] = Counter()
    missed: Counter[str] = Counter()
    disagreements = []
    for pair in pairs:
        ours = suite.score(pair.item, pair.text).correct
        theirs = bfcl_verdict(bfcl, raw_entries[pair.item.id], pair.item.category, pair.decoded, PROMPT_MODEL)
        verdicts[(pair.item.category, theirs)] += 1
        if ours != theirs:
            missed[pair.label] += 1
            disagreements.append(f"{pair.item.id} [{pair.label}] ours={ours} bfcl={theirs}: {pair.text[:160]!r}")
    agreement = 1 - len(disagreements) / len(pairs)
    print(
        f"\nBFCL agreement ({bfcl.registry} model registry): {len(pairs) - len(disagreements)}/{len(pairs)} pairs "
        f"= {agreement:.4%}; {len(disagreements)} disagreements"
    )
    print("\n".join(disagreements))
    print("pairs per label:", dict(Counter(p.label for p in pairs)))
    assert len(pairs) >= 500
    categories = {p.item.category for p in pairs}
    assert categories == set(suite.categories)
    assert all(verdicts[(c, True)] > 0 and verdicts[(c, False)] > 0 for c in categories), verdicts
    assert agreement >= MIN_AGREEMENT, disagreements[:50]
    per_label = Counter(p.label for p in pairs)
    # A rule that is wrong shows up concentrated in one kind of pair, so the floor holds for each kind too.
    assert all(missed[label] <= (1 - MIN_AGREEMENT) * n for label, n in per_label.items()), missed


def test_agreement_on_dotted_names_for_function_calling_models(
    bfcl: Reference, suite: ToolCallSuite, raw_entries: dict[str, tuple[dict[str, Any], dict[str, Any] | None]]
) -> None:
    """With ``underscore_to_dot`` (BFCL's FC models) ``math_factorial`` is right and ``math.factorial`` wrong."""
    items = [i for i in suite.items() if i.ground_truth and any("." in f.name for f in i.functions)]
    checked = disagreements = 0
    for item in items[:400]:
        dotted = correct_calls(item)
        underscored = [FunctionCall(name=c.name.replace(".", "_"), arguments=c.arguments) for c in dotted]
        for calls in (dotted, underscored):
            ours = check(item.category, item.functions, calls, item.ground_truth, underscore_to_dot=True).valid
            decoded = _decoded(calls, via_json=True)
            theirs = bfcl_verdict(bfcl, raw_entries[item.id], item.category, decoded, FC_MODEL)
            checked += 1
            disagreements += ours != theirs
    assert checked >= 400 and disagreements == 0


def test_python_replies_decode_as_bfcl_decodes_them(bfcl: Reference, suite: ToolCallSuite) -> None:
    """BFCL's own prompting decoder gives the structure the agreement test hands its checker, and fails where we say
    a reply is unreadable. Its module imports tree-sitter and tenacity, which the project venv does not carry."""
    try:
        decoder = importlib.import_module("bfcl_eval.model_handler.utils").default_decode_ast_prompting
    except ImportError as exc:
        pytest.skip(f"BFCL's prompting decoder needs {exc.name}, not installed in this venv (only bfcl-eval is)")
    pairs = all_pairs(suite)
    python = [p for p in pairs if p.decoded is not None and p.text.startswith("[") and not p.text.startswith("[{")]
    assert len(python) > 1000
    assert [p for p in python if decoder(p.text) != p.decoded] == []
    for pair in (p for p in pairs if p.decoded is None):
        with pytest.raises((SyntaxError, AssertionError, ValueError, AttributeError)):
            decoder(pair.text)
