"""The tool_calls suite: reply parsing, BFCL's AST rules on hand-made cases, the pinned BFCL data, prompts, summary."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lalo_bench.errors import LaloError
from lalo_bench.results import ItemRecord
from lalo_bench.scoring import Prediction, score_predictions
from lalo_bench.suites import get_suite
from lalo_bench.suites.bfcl_checker import (
    CheckResult,
    ExpectedCall,
    FunctionDoc,
    check,
    find_doc,
    standardize,
)
from lalo_bench.suites.manifest import Manifest, verify
from lalo_bench.suites.tool_calls import (
    BFCL_VERSION,
    CATEGORIES,
    ToolCallItem,
    ToolCallSuite,
    default_data_dir,
    write_dataset,
)
from lalo_bench.suites.tool_parsing import FunctionCall, ToolParseError, parse_calls

DATA_DIR = Path(__file__).resolve().parents[1] / "eval_suites" / "tool_calls" / "bfcl_v4"
SIZES = {
    "simple_python": 400,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "irrelevance": 240,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_parallel": 16,
    "live_parallel_multiple": 24,
    "live_relevance": 16,
    "live_irrelevance": 884,
}


@pytest.fixture(scope="module")
def suite() -> ToolCallSuite:
    return ToolCallSuite()


# ---------------------------------------------------------------- correct replies built from BFCL's possible answers

_OMIT = object()


def _pick(allowed: list[Any]) -> Any:
    """The first allowed value that is not "omit me"; dict answers hold option lists one level down."""
    for answer in allowed:
        if answer != "":
            return _resolve(answer)
    return _OMIT


def _resolve(value: Any) -> Any:
    if isinstance(value, dict):
        picked = {k: _pick(v) if isinstance(v, list) else v for k, v in value.items()}
        return {k: v for k, v in picked.items() if v is not _OMIT}
    if isinstance(value, list):
        return [_resolve(v) if isinstance(v, dict) else v for v in value]
    return value


def correct_calls(item: ToolCallItem) -> list[FunctionCall]:
    """A right answer per BFCL's key: each documented parameter's first allowed value, optional-only ones left out."""
    calls = []
    for want in item.ground_truth:
        doc = find_doc(item.functions, want.name)
        properties = doc.parameters.properties if doc else {}
        required = doc.parameters.required if doc else []
        arguments = {p: _pick(a) for p, a in want.answers.items() if p in properties}
        for p, v in arguments.items():
            if v is _OMIT and p in required and properties[p]["type"] in ("string", "any"):
                arguments[p] = ""  # required, yet only "" allowed: an empty string is the one right value
        calls.append(FunctionCall(name=want.name, arguments={k: v for k, v in arguments.items() if v is not _OMIT}))
    return calls


def satisfiable(item: ToolCallItem) -> bool:
    """Whether any reply can pass: a few BFCL entries require a parameter their answer key lacks, or the reverse."""
    for want in item.ground_truth:
        doc = find_doc(item.functions, want.name)
        if doc is None:
            return False
        props, required = doc.parameters.properties, doc.parameters.required
        if any(r not in want.answers or not want.answers[r] for r in required):
            return False
        if any(p not in props and "" not in allowed for p, allowed in want.answers.items()):
            return False
    return True


def as_json(calls: list[FunctionCall]) -> str:
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


def as_python(calls: list[FunctionCall]) -> str:
    """BFCL's prompting format: ``[f(a=1), g(b='x')]``."""
    return "[" + ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.arguments.items())})" for c in calls) + "]"


def as_tool_tags(calls: list[FunctionCall]) -> str:
    """Hermes/Qwen chat-template format: one ``<tool_call>`` block per call."""
    blocks = [json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) for c in calls]
    return "\n".join(f"<tool_call>\n{b}\n</tool_call>" for b in blocks)


RENDERERS = (as_json, as_python, as_tool_tags)


# ---------------------------------------------------------------- parser

CALL_F = [FunctionCall(name="f", arguments={"a": 1})]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('[{"name": "f", "arguments": {"a": 1}}]', CALL_F),
        ('{"name": "f", "arguments": {"a": 1}}', CALL_F),
        ('{"name": "f", "parameters": {"a": 1}}', CALL_F),
        ('[{"name": "f", "arguments": "{\\"a\\": 1}"}]', CALL_F),
        ('Here you go:\n```json\n[{"name": "f", "arguments": {"a": 1}}]\n```', CALL_F),
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', CALL_F),
        ('[TOOL_CALLS] [{"name": "f", "arguments": {"a": 1}}]', CALL_F),
        ('{"type": "function", "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}', CALL_F),
        ("f(a=1)", CALL_F),
        ("[f(a=1)]", CALL_F),
        ("Sure, calling it now:\n[f(a=1)]\nDone.", CALL_F),
        ('I will call it.\n{"name": "f", "arguments": {"a": 1}}', CALL_F),
        ("<think>maybe g(b=2)?</think>\n[f(a=1)]", CALL_F),
        ("[{'name': 'f', 'arguments': {'a': 1}}]", CALL_F),
    ],
)
def test_parser_reads_one_call_in_every_shape(reply: str, expected: list[FunctionCall]) -> None:
    assert parse_calls(reply) == expected


def test_parser_reads_several_tool_call_tags_in_order() -> None:
    reply = (
        '<tool_call>\n{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}\n</tool_call>\n'
        '<tool_call>\n{"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}\n</tool_call>'
    )
    calls = parse_calls(reply)
    assert [(c.name, c.arguments["artist"], c.arguments["duration"]) for c in calls] == [
        ("spotify.play", "Taylor Swift", 20),
        ("spotify.play", "Maroon 5", 15),
    ]


def test_parser_python_syntax_keeps_literal_types_and_dotted_names() -> None:
    calls = parse_calls("[math.hypot(x=4, y=-5.5, z=None), geo.area.find(p=(1, 2), q=[1, 'a'], r={'k': True})]")
    assert [c.name for c in calls] == ["math.hypot", "geo.area.find"]
    assert calls[0].arguments == {"x": 4, "y": -5.5, "z": None}
    assert type(calls[0].arguments["x"]) is int
    assert calls[1].arguments == {"p": (1, 2), "q": [1, "a"], "r": {"k": True}}
    assert type(calls[1].arguments["p"]) is tuple
    assert parse_calls("f(a=1), g(b=2)") == [
        FunctionCall(name="f", arguments={"a": 1}),
        FunctionCall(name="g", arguments={"b": 2}),
    ]


def test_parser_json_lines_and_positional_arguments() -> None:
    lines = '{"name": "a", "arguments": {"x": 1}}\n{"name": "b", "arguments": {"y": 2}}'
    assert [c.name for c in parse_calls(lines)] == ["a", "b"]
    (call,) = parse_calls("math.factorial(5)")
    assert (call.name, call.arguments, call.positional) == ("math.factorial", {}, [5])


@pytest.mark.parametrize(
    "reply",
    [
        "[]",
        "```json\n[]\n```",
        "I'm sorry, none of the available functions can answer that.",
        "I cannot call get_weather() here because no city was given.",
        "",
    ],
)
def test_parser_no_call(reply: str) -> None:
    assert parse_calls(reply) == []


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "f", "arguments": {"a": ',
        "[f(a=1",
        "[f(a=some_variable)]",
        "[f(**kwargs)]",
        '[{"arguments": {"a": 1}}]',
        '[{"name": "f", "arguments": [1, 2]}]',
        '{"name": "f", "arguments": "not json"}',
        "[1, 2, 3]",
        "<tool_call>\nnot a call\n</tool_call>",
        "get_weather(city=",
    ],
)
def test_parser_unreadable_call_is_an_error(reply: str) -> None:
    with pytest.raises(ToolParseError):
        parse_calls(reply)


def test_parser_survives_degenerate_output() -> None:
    """A small model stuck in a loop: deep nesting and thousands of brackets are an unreadable call, not a crash."""
    for reply in ("[" * 5000, '{"x": [' * 2000, "ok [" * 8000, "f(" * 3000):
        with pytest.raises(ToolParseError):
            parse_calls(reply)
    assert parse_calls("ok (" * 8000 + "\nf(a=1)") == CALL_F
    assert parse_calls("no call here " * 3000) == []


# ---------------------------------------------------------------- BFCL's AST rules, hand-made

DOC = FunctionDoc.model_validate(
    {
        "name": "weather.forecast",
        "description": "Forecast.",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "temp": {"type": "float"},
                "coords": {"type": "tuple", "items": {"type": "float"}},
                "tags": {"type": "array", "items": {"type": "string"}},
                "unit": {"type": "string"},
                "alerts": {"type": "boolean"},
                "extra": {"type": "any"},
                "opts": {"type": "dict", "properties": {"lang": {"type": "string"}, "n": {"type": "integer"}}},
            },
            "required": ["city", "days"],
        },
    }
)
WANT = ExpectedCall(
    name="weather.forecast",
    answers={
        "city": ["New York, NY", "NYC"],
        "days": [3],
        "temp": [20.0, ""],
        "coords": [[40.5, -74.0], ""],
        "tags": [["Rain", "wind"], ""],
        "unit": ["celsius", ""],
        "alerts": [True, ""],
        "extra": ["x", ""],
        "opts": [{"lang": ["en", "EN-US"], "n": ["", 2]}, ""],
    },
)
OTHER = FunctionDoc.model_validate(
    {
        "name": "weather.history",
        "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
)
RIGHT = {"city": "New York, NY", "days": 3}


def _simple(arguments: dict[str, Any], name: str = "weather.forecast", want: ExpectedCall = WANT) -> CheckResult:
    return check("simple_python", [DOC], [FunctionCall(name=name, arguments=arguments)], [want])


def test_right_call_passes() -> None:
    assert _simple(RIGHT).valid
    full = {**RIGHT, "temp": 20.0, "coords": [40.5, -74.0], "tags": ["Rain", "wind"], "unit": "celsius"}
    assert _simple({**full, "alerts": True, "extra": "x", "opts": {"lang": "en"}}).valid


def test_wrong_function_name_fails() -> None:
    result = _simple(RIGHT, name="weather.forecasts")
    assert not result.valid and result.error_type == "simple_function_checker:wrong_func_name"
    assert not _simple(RIGHT, name="weather_forecast").valid


def test_underscore_to_dot_expects_underscored_names() -> None:
    underscored = [FunctionCall(name="weather_forecast", arguments=RIGHT)]
    assert check("simple_python", [DOC], underscored, [WANT], underscore_to_dot=True).valid
    dotted = [FunctionCall(name="weather.forecast", arguments=RIGHT)]
    assert not check("simple_python", [DOC], dotted, [WANT], underscore_to_dot=True).valid


def test_missing_required_parameter_fails() -> None:
    result = _simple({"city": "NYC"})
    assert not result.valid and result.error_type == "simple_function_checker:missing_required"


def test_unexpected_parameter_fails() -> None:
    result = _simple({**RIGHT, "hours": 4})
    assert not result.valid and result.error_type == "simple_function_checker:unexpected_param"


def test_documented_parameter_outside_the_answer_key_is_unexpected() -> None:
    narrow = ExpectedCall(name="weather.forecast", answers={"city": ["NYC"], "days": [3]})
    assert not _simple({**RIGHT, "unit": "celsius"}, want=narrow).valid


def test_int_is_accepted_for_float() -> None:
    assert _simple({**RIGHT, "temp": 20}).valid
    assert not _simple({**RIGHT, "temp": 21}).valid


def test_float_or_bool_for_int_fails_the_type_check() -> None:
    for value in (3.0, True, "3"):
        result = _simple({**RIGHT, "days": value})
        assert not result.valid and result.error_type.startswith("type_error"), value


def test_tuple_is_read_as_list_only_for_tuple_parameters() -> None:
    assert _simple({**RIGHT, "coords": (40.5, -74.0)}).valid
    assert _simple({**RIGHT, "coords": [40.5, -74.0]}).valid
    assert not _simple({**RIGHT, "tags": ("Rain", "wind")}).valid


def test_list_elements_are_type_checked_one_level_without_int_to_float() -> None:
    strict = ExpectedCall(name="weather.forecast", answers={**WANT.answers, "coords": [[40.5, -74.0]]})
    assert _simple({**RIGHT, "coords": [40.5, -74.0]}, want=strict).valid
    result = _simple({**RIGHT, "coords": [40.5, -74]}, want=strict)
    assert not result.valid and result.error_type.startswith("type_error")
    # BFCL's quirk, kept: an optional "" answer skips the element check, and -74 == -74.0 then matches.
    assert _simple({**RIGHT, "coords": [40.5, -74]}).valid
    assert not _simple({**RIGHT, "tags": ["Rain", 3]}).valid
    assert not _simple({**RIGHT, "tags": ["wind", "Rain"]}).valid


def test_string_standardization() -> None:
    for city in ("new york ny", "NEW-YORK,NY", "New_York. NY", "nyc"):
        assert _simple({**RIGHT, "city": city}).valid, city
    assert not _simple({**RIGHT, "city": "New York City"}).valid
    assert _simple({**RIGHT, "tags": ["rain", "WIND"]}).valid
    assert standardize("It's 5/3 - a_b*c^d") == 'it"s53abcd'


def test_dict_parameter_keys_and_values() -> None:
    assert _simple({**RIGHT, "opts": {"lang": "en-us", "n": 2}}).valid
    assert _simple({**RIGHT, "opts": {"lang": "EN"}}).valid
    assert not _simple({**RIGHT, "opts": {"n": 2}}).valid
    assert not _simple({**RIGHT, "opts": {"lang": "en", "n": 3}}).valid
    assert not _simple({**RIGHT, "opts": {"lang": "en", "other": 1}}).valid


def test_optional_parameter_may_be_omitted_only_where_empty_string_is_allowed() -> None:
    assert _simple(RIGHT).valid
    strict = ExpectedCall(name="weather.forecast", answers={**WANT.answers, "unit": ["celsius"]})
    result = _simple(RIGHT, want=strict)
    assert not result.valid and result.error_type == "simple_function_checker:missing_optional"
    assert _simple({**RIGHT, "unit": "Celsius"}, want=strict).valid


def test_variable_rule_value_of_the_answers_type_passes_the_type_check() -> None:
    """BFCL accepts a value whose type is the answer key's rather than the doc's (e.g. None for an optional string)."""
    nullable = ExpectedCall(name="weather.forecast", answers={**WANT.answers, "unit": [None, ""]})
    assert _simple({**RIGHT, "unit": None}, want=nullable).valid
    assert not _simple({**RIGHT, "unit": None}).valid


def test_simple_needs_exactly_one_call() -> None:
    two = [FunctionCall(name="weather.forecast", arguments=RIGHT)] * 2
    assert not check("simple_python", [DOC], two, [WANT]).valid
    assert not check("live_simple", [DOC], [], [WANT]).valid


def test_multiple_chooses_the_one_function() -> None:
    want = ExpectedCall(name="weather.history", answers={"city": ["Paris"]})
    docs = [DOC, OTHER]
    assert check("multiple", docs, [FunctionCall(name="weather.history", arguments={"city": "paris"})], [want]).valid
    assert not check("multiple", docs, [FunctionCall(name="weather.forecast", arguments=RIGHT)], [want]).valid
    assert not check("live_multiple", docs, [], [want]).valid


def _parallel(calls: list[FunctionCall]) -> bool:
    wants = [
        ExpectedCall(name="weather.forecast", answers={"city": ["NYC"], "days": [3]}),
        ExpectedCall(name="weather.forecast", answers={"city": ["Paris"], "days": [5]}),
        ExpectedCall(name="weather.history", answers={"city": ["Rome"]}),
    ]
    return check("parallel_multiple", [DOC, OTHER], calls, wants).valid


def test_parallel_calls_match_in_any_order_once_each() -> None:
    nyc = FunctionCall(name="weather.forecast", arguments={"city": "NYC", "days": 3})
    paris = FunctionCall(name="weather.forecast", arguments={"city": "Paris", "days": 5})
    rome = FunctionCall(name="weather.history", arguments={"city": "Rome"})
    assert _parallel([nyc, paris, rome])
    assert _parallel([rome, paris, nyc])
    assert not _parallel([nyc, paris])
    assert not _parallel([nyc, paris, rome, rome])
    assert not _parallel([nyc, nyc, rome])


def test_irrelevance_passes_only_without_a_call() -> None:
    call = [FunctionCall(name="weather.forecast", arguments=RIGHT)]
    for category in ("irrelevance", "live_irrelevance"):
        assert check(category, [DOC], [], []).valid
        assert check(category, [DOC], None, []).valid
        assert not check(category, [DOC], call, []).valid


def test_relevance_passes_with_any_call() -> None:
    assert check("live_relevance", [DOC], [FunctionCall(name="anything", arguments={})], []).valid
    assert not check("live_relevance", [DOC], [], []).valid
    assert not check("live_relevance", [DOC], None, []).valid


# ---------------------------------------------------------------- pinned data


def test_shipped_data_is_bfcl_v4_with_its_own_ids(suite: ToolCallSuite) -> None:
    verify(DATA_DIR)
    manifest = Manifest.model_validate_json((DATA_DIR / "manifest.json").read_bytes())
    assert (manifest.suite, manifest.generator_version, manifest.count) == (
        "tool_calls",
        f"bfcl-eval=={BFCL_VERSION}",
        3491,
    )
    assert "NOTICE" in manifest.files and "Apache License" in (DATA_DIR / "NOTICE").read_text()
    items = suite.items()
    assert Counter(i.category for i in items) == SIZES
    assert len({i.id for i in items}) == len(items) == sum(SIZES.values())
    assert all(i.id.startswith(i.category + "_") and i.task_type == "tool_call" for i in items)
    assert {i.id for i in items} >= {"simple_python_0", "live_multiple_0-0-0", "irrelevance_0"}
    by_id = {i.id: i for i in items}
    first = by_id["simple_python_1"]
    assert first.functions[0].name == "math.factorial" and first.ground_truth[0].answers == {"number": [5]}
    assert by_id["live_irrelevance_0-0-0"].ground_truth == []


def test_verify_refuses_a_tampered_copy(tmp_path: Path) -> None:
    copy = tmp_path / "tool_calls" / "bfcl_v4"
    shutil.copytree(DATA_DIR, copy)
    ToolCallSuite(data_dir=copy, categories="live_parallel")
    target = copy / "possible_answer" / "BFCL_v4_live_parallel.json"
    data = bytearray(target.read_bytes())
    data[40] = ord("7") if data[40] != ord("7") else ord("8")
    target.write_bytes(bytes(data))
    with pytest.raises(LaloError, match=r"possible_answer/BFCL_v4_live_parallel\.json: sha256 mismatch"):
        ToolCallSuite(data_dir=copy)
    target.unlink()
    with pytest.raises(LaloError, match="missing"):
        verify(copy)


def test_write_dataset_rebuilds_the_folder_byte_for_byte(tmp_path: Path) -> None:
    """From a wheel-shaped zip of the shipped files: the vendoring step itself is reproducible."""
    manifest = Manifest.model_validate_json((DATA_DIR / "manifest.json").read_bytes())
    wheel = tmp_path / f"bfcl_eval-{BFCL_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"bfcl_eval-{BFCL_VERSION}.dist-info/METADATA", "Name: bfcl_eval\n")
        for name in manifest.files:
            if name != "NOTICE":
                archive.write(DATA_DIR / name, f"bfcl_eval/data/{name}")
    out = tmp_path / "out"
    write_dataset(out, wheel)
    assert (out / "manifest.json").read_bytes() == (DATA_DIR / "manifest.json").read_bytes()
    assert (out / "NOTICE").read_bytes() == (DATA_DIR / "NOTICE").read_bytes()
    with pytest.raises(LaloError, match="not the bfcl-eval"):
        write_dataset(tmp_path / "x", _zip_with(tmp_path / "other.whl", "bfcl_eval-1.0.dist-info/METADATA"))


def _zip_with(path: Path, member: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "")
    return path


def test_default_data_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_data_dir() == DATA_DIR
    monkeypatch.setenv("LALO_EVAL_SUITES", str(tmp_path))
    assert default_data_dir() == tmp_path / "tool_calls" / "bfcl_v4"


# ---------------------------------------------------------------- suite


def test_every_prefix_mixes_categories(suite: ToolCallSuite) -> None:
    items = suite.items()
    assert [i.category for i in items[:11]] == list(CATEGORIES)
    assert {i.difficulty for i in items[:11]} == {1, 2, 3, 4}
    assert len({i.category for i in suite.items(limit=30)}) == 11
    assert [i.id for i in suite.items(limit=25)] == [i.id for i in items[:25]]
    assert [i.id for i in ToolCallSuite().items(limit=50)] == [i.id for i in items[:50]]
    difficulty = {i.category: i.difficulty for i in items}
    assert difficulty["simple_python"] == difficulty["irrelevance"] == 1
    assert difficulty["live_multiple"] == difficulty["live_relevance"] == 2
    assert difficulty["parallel"] == 3 and difficulty["live_parallel_multiple"] == 4


def test_options_select_categories_and_mode() -> None:
    subset = get_suite("tool_calls", {"mode": "prompt", "categories": "live_parallel, parallel"})
    assert Counter(i.category for i in subset.items()) == {"parallel": 200, "live_parallel": 16}
    with pytest.raises(LaloError, match="unknown categories simple_java"):
        ToolCallSuite(categories="simple_python,simple_java")
    with pytest.raises(LaloError, match="mode must be"):
        ToolCallSuite(mode="xml")


def test_native_request_passes_openai_tools(suite: ToolCallSuite) -> None:
    item = next(i for i in suite.items() if i.id == "simple_python_1")
    request = suite.request(item, max_tokens=64)
    assert request.max_tokens == 64 and request.messages[-1].role == "user"
    assert "factorial of 5" in request.messages[-1].content
    (tool,) = request.tools or []
    assert tool["type"] == "function" and tool["function"]["name"] == "math.factorial"
    assert tool["function"]["parameters"]["type"] == "object"
    assert tool["function"]["parameters"]["properties"]["number"]["type"] == "integer"
    assert tool["function"]["parameters"]["required"] == ["number"]
    assert all(m.role != "system" for m in request.messages)


def test_native_tools_map_gorilla_types_to_json_schema(suite: ToolCallSuite) -> None:
    kinds: Counter[str] = Counter()
    for item in suite.items(limit=400):
        for tool in suite.request(item, 16).tools or []:
            for prop in tool["function"]["parameters"]["properties"].values():
                kinds[prop["type"]] += 1
                if prop["type"] == "array":
                    assert prop["items"]["type"] in {"string", "integer", "number", "boolean", "object", "array"}
    assert set(kinds) <= {"string", "integer", "number", "boolean", "array", "object"}
    assert kinds["number"] and kinds["object"]


def test_prompt_request_writes_docs_into_the_system_prompt() -> None:
    prompt = ToolCallSuite(mode="prompt")
    item = next(i for i in prompt.items() if i.id == "simple_python_1")
    request = prompt.request(item, max_tokens=32)
    assert request.tools is None
    system, user = request.messages
    assert system.role == "system" and user.role == "user"
    assert '"name": "math.factorial"' in system.content and "JSON list" in system.content and "[]" in system.content
    docs = json.loads(system.content.split("that you can invoke.\n", 1)[1])
    assert docs[0]["parameters"]["properties"]["number"]["type"] == "integer"
    own = next(i for i in prompt.items() if i.messages[0].role == "system")
    merged = prompt.request(own, 32).messages
    assert merged[0].role == "system" and merged[0].content.endswith(own.messages[0].content)
    assert len(merged) == len(own.messages)


def test_correct_replies_built_from_possible_answers_score_one(suite: ToolCallSuite) -> None:
    """Every BFCL item that admits a right answer scores 1 with it, in each reply format, through `lalo-bench score`."""
    items = [i for i in suite.items() if i.ground_truth]
    good = [i for i in items if satisfiable(i)]
    assert len(items) - len(good) <= 10
    predictions = [
        Prediction(id=item.id, output=RENDERERS[n % len(RENDERERS)](correct_calls(item))) for n, item in enumerate(good)
    ]
    records = score_predictions(suite, predictions)
    failed = [(r.item_id, r.output[:120]) for r in records if not r.correct]
    assert failed == []
    assert all(r.score == 1.0 and r.error is None for r in records)


def test_parallel_replies_may_come_in_any_order(suite: ToolCallSuite) -> None:
    for item in [i for i in suite.items() if "parallel" in i.category and satisfiable(i)][:60]:
        assert suite.score(item, as_json(list(reversed(correct_calls(item))))).correct, item.id
        assert not suite.score(item, as_json(correct_calls(item)[:-1])).correct, item.id


def test_irrelevance_and_relevance_items(suite: ToolCallSuite) -> None:
    irrelevant = next(i for i in suite.items() if i.category == "irrelevance")
    relevant = next(i for i in suite.items() if i.category == "live_relevance")
    call = f'[{{"name": "{irrelevant.functions[0].name}", "arguments": {{}}}}]'
    for reply, expected in [
        ("[]", 1.0),
        ("Sorry, I can't help with that.", 1.0),
        ('[{"name": "f", "argu', 1.0),
        (call, 0.0),
    ]:
        scored = suite.score(irrelevant, reply)
        assert (scored.score, scored.error) == (expected, None), reply
    assert suite.score(relevant, f'[{{"name": "{relevant.functions[0].name}", "arguments": {{}}}}]').correct
    assert not suite.score(relevant, "[]").correct
    assert suite.score(relevant, '[{"name": "f", "argu').error is not None


def test_unreadable_reply_scores_zero_with_error(suite: ToolCallSuite) -> None:
    item = next(i for i in suite.items() if i.category == "simple_python")
    scored = suite.score(item, '[{"name": "f", "arguments": {"a": ')
    assert (scored.score, scored.correct) == (0.0, False)
    assert scored.error and scored.error.startswith("unreadable tool call")
    refusal = suite.score(item, "I cannot answer that.")
    assert (refusal.score, refusal.error) == (0.0, None)


def _records(accuracy: dict[str, tuple[int, int]]) -> list[ItemRecord]:
    out = []
    for category, (right, total) in accuracy.items():
        for k in range(total):
            ok = k < right
            out.append(
                ItemRecord(
                    item_id=f"{category}_{k}",
                    category=category,
                    difficulty=CATEGORIES[category],
                    output="",
                    score=float(ok),
                    correct=ok,
                )
            )
    return out


def test_summary_reproduces_bfcl_aggregates(suite: ToolCallSuite) -> None:
    records = _records(
        {
            "simple_python": (3, 4),  # 0.75
            "multiple": (1, 2),  # 0.5
            "parallel": (2, 2),  # 1.0
            "parallel_multiple": (0, 2),  # 0.0
            "live_simple": (1, 2),  # 0.5
            "live_multiple": (6, 8),  # 0.75
            "irrelevance": (1, 1),  # 1.0
            "live_irrelevance": (1, 2),  # 0.5
            "live_relevance": (1, 4),  # 0.25
        }
    )
    summary = suite.summarize(records)
    assert summary["acc.simple_python"] == 0.75 and summary["acc.live_relevance"] == 0.25
    assert summary["bfcl.non_live"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0) / 4)
    assert summary["bfcl.live"] == pytest.approx((1 + 6) / (2 + 8))
    assert summary["bfcl.irrelevance"] == pytest.approx(0.75)
    assert summary["bfcl.relevance"] == 0.25
    assert summary["bfcl.overall"] == pytest.approx((0.5625 + 0.7 + 0.75) / 3)
    assert "acc.live_parallel" not in summary


def test_summary_of_a_subset_uses_what_ran(suite: ToolCallSuite) -> None:
    summary = suite.summarize(_records({"live_parallel": (1, 2), "live_parallel_multiple": (2, 2)}))
    assert summary == {
        "acc.live_parallel": 0.5,
        "acc.live_parallel_multiple": 1.0,
        "bfcl.live": 0.75,
        "bfcl.overall": 0.75,
    }
    assert suite.summarize([]) == {}
