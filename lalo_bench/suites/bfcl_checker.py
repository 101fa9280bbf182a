"""BFCL's AST checker, re-implemented so a score here means what it means on the leaderboard.

Follows ``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` of bfcl-eval 2026.3.23
(Python categories only), quirks included, because the point is agreement with
published numbers (``tests/test_bfcl_agreement.py`` checks it against the real
checker):

- one call must name the function (``simple``: the first doc; ``multiple``: the
  ground truth's); with ``underscore_to_dot`` a dotted name is expected with
  ``_`` instead, as BFCL does for models whose API forbids dots;
- every required parameter present, none outside the doc *and* the answer key;
- exact Python types (``bool`` is not ``int``), an ``int`` accepted for a
  ``float``, a tuple for a ``tuple``; list elements are checked one level deep
  against the element type (no int-for-float there); a value whose type is
  that of the allowed answers rather than the doc's passes the type check
  (BFCL's "variable" rule);
- strings, list elements and dict values compared after BFCL's
  standardization (lowercase, drop spaces and ``,./-_*^``, ``'`` → ``"``);
- a parameter may be omitted only where ``""`` is among its allowed answers;
- parallel calls are matched order-free, greedily in ground-truth order, each
  model call used once; the call count must match exactly;
- irrelevance passes when no call was produced (nothing decodable, or an empty
  list), relevance when at least one was.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lalo_bench.suites.tool_parsing import FunctionCall

PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
NESTED_TYPES = ("array", "tuple")
STANDARDIZE = re.compile(r"[ ,./\-_*^]")


class FunctionParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "dict"
    properties: dict[str, dict[str, Any]] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)


class FunctionDoc(BaseModel):
    """A function as BFCL documents it (Gorilla types: ``dict``, ``float``, ``tuple``, ``any``…)."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: str = ""
    parameters: FunctionParameters = Field(default_factory=FunctionParameters)


class ExpectedCall(BaseModel):
    """One ground-truth call: the allowed values of each parameter (``""`` among them: may be omitted)."""

    name: str
    answers: dict[str, list[Any]]

    @classmethod
    def from_bfcl(cls, entry: dict[str, dict[str, list[Any]]]) -> ExpectedCall:
        """From BFCL's ``{function_name: {param: [allowed, …]}}``."""
        ((name, answers),) = entry.items()
        return cls(name=name, answers=answers)


class CheckResult(BaseModel):
    valid: bool
    error: str = ""
    error_type: str = ""


OK = CheckResult(valid=True)


def _fail(error_type: str, error: str) -> CheckResult:
    return CheckResult(valid=False, error=error, error_type=error_type)


def standardize(text: str) -> str:
    """BFCL's string normalization, so "April 1, 2024" and "april 1,2024" compare equal."""
    return STANDARDIZE.sub("", text).lower().replace("'", '"')


def _std(value: object) -> object:
    return standardize(value) if type(value) is str else value


def expected_name(name: str, underscore_to_dot: bool) -> str:
    return name.replace(".", "_") if underscore_to_dot else name


# ---------------------------------------------------------------- entry point


def check(
    category: str,
    functions: list[FunctionDoc],
    calls: list[FunctionCall] | None,
    expected: list[ExpectedCall],
    *,
    underscore_to_dot: bool = False,
) -> CheckResult:
    """BFCL's verdict for one item; ``calls`` is None when the reply held no decodable call."""
    if "relevance" in category:
        return check_relevance(category, calls)
    if calls is None:
        return _fail("ast_decoder:decoder_failed", "no decodable function call")
    if "parallel" in category:
        return check_parallel(functions, calls, expected, underscore_to_dot)
    if "multiple" in category:
        return check_multiple(functions, calls, expected, underscore_to_dot)
    if len(calls) != 1 or not functions or not expected:
        return _fail("simple_function_checker:wrong_count", f"expected 1 call, got {len(calls)}")
    return check_call(functions[0], calls[0], expected[0], underscore_to_dot)


def check_relevance(category: str, calls: list[FunctionCall] | None) -> CheckResult:
    """Irrelevance: no call (undecodable or empty) passes; relevance: any call passes."""
    made_call = bool(calls)
    if "irrelevance" in category:
        return _fail("irrelevance_error:decoder_success", "made a call where none applies") if made_call else OK
    return OK if made_call else _fail("relevance_error:decoder_failed", "made no call where one applies")


def find_doc(functions: list[FunctionDoc], name: str) -> FunctionDoc | None:
    return next((f for f in functions if f.name == name), None)


def check_multiple(
    functions: list[FunctionDoc], calls: list[FunctionCall], expected: list[ExpectedCall], underscore_to_dot: bool
) -> CheckResult:
    """Several functions offered, one to choose: the single call must be the expected one."""
    if len(calls) != len(expected) or not expected:
        return _fail("multiple_function_checker:wrong_count", f"expected {len(expected)} call(s), got {len(calls)}")
    doc = find_doc(functions, expected[0].name)
    if doc is None:
        return _fail("multiple_function_checker:no_doc", f"no documentation for {expected[0].name!r}")
    return check_call(doc, calls[0], expected[0], underscore_to_dot)


def check_parallel(
    functions: list[FunctionDoc], calls: list[FunctionCall], expected: list[ExpectedCall], underscore_to_dot: bool
) -> CheckResult:
    """Order-free: each expected call takes the first unused model call that passes for it (BFCL's greedy match)."""
    if len(calls) != len(expected):
        return _fail(
            "parallel_function_checker_no_order:wrong_count", f"expected {len(expected)} calls, got {len(calls)}"
        )
    used: set[int] = set()
    for i, want in enumerate(expected):
        doc = find_doc(functions, want.name)
        if doc is None:
            return _fail("parallel_function_checker_no_order:no_doc", f"no documentation for {want.name!r}")
        free = (j for j in range(len(calls)) if j not in used)
        match = next((j for j in free if check_call(doc, calls[j], want, underscore_to_dot).valid), None)
        if match is None:
            return _fail(
                "parallel_function_checker_no_order:cannot_find_match",
                f"no model call matches expected call {i} ({want.name})",
            )
        used.add(match)
    return OK


# ---------------------------------------------------------------- one call


def check_call(doc: FunctionDoc, call: FunctionCall, want: ExpectedCall, underscore_to_dot: bool) -> CheckResult:
    """BFCL's ``simple_function_checker``: name, required, unexpected, type and value of each parameter, omissions."""
    name = expected_name(doc.name, underscore_to_dot)
    if call.name != name:
        return _fail("simple_function_checker:wrong_func_name", f"expected function {name!r}, got {call.name!r}")
    properties = doc.parameters.properties
    for param in doc.parameters.required:
        if param not in call.arguments:
            return _fail("simple_function_checker:missing_required", f"missing required parameter {param!r}")
    for param, value in call.arguments.items():
        if param not in properties or param not in want.answers:
            return _fail("simple_function_checker:unexpected_param", f"unexpected parameter {param!r}")
        result = check_param(param, value, properties[param], want.answers[param])
        if not result.valid:
            return result
    for param, allowed in want.answers.items():
        if param not in call.arguments and "" not in allowed:
            return _fail("simple_function_checker:missing_optional", f"parameter {param!r} omitted but not optional")
    return OK


def check_param(param: str, value: Any, schema: dict[str, Any], allowed: list[Any]) -> CheckResult:
    """Type first (with BFCL's conversions), then the value against the allowed answers."""
    type_name = schema.get("type", "")
    expected = PYTHON_TYPES.get(type_name)
    if expected is None:
        return _fail("type_error:unsupported", f"parameter {param!r} has unsupported type {type_name!r}")
    nested = PYTHON_TYPES.get(schema.get("items", {}).get("type", "")) if type_name in NESTED_TYPES else None
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)
    if type_name == "float" and type(value) is int:
        value = float(value)
    type_ok, is_variable = type_check(value, allowed, expected, nested)
    if not type_ok:
        return _fail("type_error:simple", f"parameter {param!r}: expected {type_name}, got {type(value).__name__}")
    if not is_variable:
        structured = _structured_check(value, allowed, expected, nested)
        if structured is not None:
            return OK if structured else _fail("value_error", f"invalid value for {param!r}: {value!r}")
    if value not in allowed:
        return _fail("value_error:others", f"invalid value for {param!r}: {value!r}")
    return OK


def _structured_check(value: Any, allowed: list[Any], expected: type, nested: type | None) -> bool | None:
    """Standardized comparison for dicts, lists of dicts, strings and lists; None for plain scalars."""
    if expected is dict:
        return dict_matches(value, allowed)
    if expected is list and nested is dict:
        return list_of_dicts_matches(value, allowed)
    if expected is str:
        return standardize(value) in [standardize(a) for a in allowed if type(a) is str]
    if expected is list:
        return list_matches(value, allowed)
    return None


def answer_type(allowed: list[Any]) -> type | None:
    """Type of the first non-optional answer: what BFCL falls back to when the doc's type does not fit."""
    return next((type(a) for a in allowed if a != ""), None)


def type_check(value: Any, allowed: list[Any], expected: type, nested: type | None) -> tuple[bool, bool]:
    """(valid, is_variable) as BFCL's ``type_checker`` decides them; nested lists are checked one level deep."""
    fallback = answer_type(allowed)
    is_variable = fallback is not None and fallback is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for answer in allowed:
            if type(answer) is list and not all(type_check(v, answer, nested, None)[0] for v in value):
                continue
            return True, is_variable
        return False, False
    if fallback is not None and type(value) is fallback:
        return True, True
    return False, False


def list_matches(value: list[Any], allowed: list[Any]) -> bool:
    """Element-wise after standardizing strings; order matters."""
    candidates = [[_std(x) for x in a] for a in allowed if isinstance(a, list | str)]
    return [_std(v) for v in value] in candidates


def dict_matches(value: dict[str, Any], allowed: list[Any]) -> bool:
    """Some allowed dict accepts every key and value given, and every key left out is optional there."""
    return any(_dict_matches_one(value, answer) for answer in allowed if isinstance(answer, dict))


def _dict_matches_one(value: dict[str, Any], answer: dict[str, Any]) -> bool:
    for key, item in value.items():
        if key not in answer or not isinstance(answer[key], list | str):
            return False
        if _std(item) not in [_std(a) for a in answer[key]]:
            return False
    return all(key in value or "" in options for key, options in answer.items())


def list_of_dicts_matches(value: list[Any], allowed: list[Any]) -> bool:
    """Same length as an allowed list and each dict matching its counterpart (order matters)."""
    for answer in allowed:
        if not isinstance(answer, list | str) or len(answer) != len(value):
            continue
        pairs = zip(value, answer, strict=True)
        if all(isinstance(v, dict) and isinstance(a, dict) and _dict_matches_one(v, a) for v, a in pairs):
            return True
    return False
