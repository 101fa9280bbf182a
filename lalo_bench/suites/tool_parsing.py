"""Read the function calls out of a model's reply, whatever shape the model chose.

Small models rarely answer in exactly the format they were asked for: a chat
template may emit Hermes/Qwen ``<tool_call>{…}</tool_call>`` tags, Llama 3.1 a
bare ``{"name", "parameters"}`` object, a prompted model a fenced JSON list or
BFCL's own Python syntax ``[f(a=1), g(b="x")]``. Scoring the call, not the
wrapper, is what makes models comparable, so :func:`parse_calls` accepts all of
them and returns plain :class:`FunctionCall` values for the checker.

Contract: a list of calls, ``[]`` for "no call" (an empty list, or prose with
nothing that looks like a call, e.g. a refusal), or :class:`ToolParseError`
when the reply attempts a call that cannot be read (truncated JSON, a
non-literal argument).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from pydantic import BaseModel, Field


class FunctionCall(BaseModel):
    """One call as the model made it; ``positional`` keeps arguments given without a name (BFCL ignores them)."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    positional: list[Any] = Field(default_factory=list)


class ToolParseError(ValueError):
    """The reply tries to call a function but the call cannot be read."""


THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|(?=<tool_call>)|$)", re.DOTALL)
FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.DOTALL)
PREFIXES = ("[TOOL_CALLS]", "<|python_tag|>", "<functioncall>", "functools")
LINE_CALL = re.compile(r"^[ \t]*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\()", re.MULTILINE)
OPENERS = re.compile(r"[\[{]")
MAX_CANDIDATES = 64
ARG_KEYS = ("arguments", "parameters", "args")
CLOSERS = {"[": "]", "{": "}", "(": ")"}


def parse_calls(text: str) -> list[FunctionCall]:
    """Calls in ``text`` (see the module docstring for the accepted shapes and the no-call rule)."""
    body = _drop_reasoning(text).strip()
    tagged = TOOL_TAG.findall(body)
    if tagged:
        return [call for block in tagged for call in parse_block(block)]
    for fenced in FENCE.findall(body):
        try:
            return parse_block(fenced)
        except ToolParseError:
            continue
    try:
        return parse_block(body)
    except ToolParseError as exc:
        whole_error = exc
    found = _scan(body)
    if found is not None:
        return found
    if _attempts_call(body):
        raise ToolParseError(f"{whole_error} in reply {_clip(body)!r}")
    return []


def _drop_reasoning(text: str) -> str:
    """Reasoning models think before they answer; only what follows the thinking is the answer."""
    if "<think>" not in text and "</think>" in text:  # the chat template opened the block inside the prompt
        return text.rpartition("</think>")[2]
    return THINK.sub("", text)


def parse_block(text: str) -> list[FunctionCall]:
    """Calls in a block that is nothing but calls: JSON (list or object, or one object per line) or Python syntax."""
    block = _strip_prefixes(text.strip())
    if not block:
        raise ToolParseError("empty block")
    try:
        return from_json(_json(block))
    except json.JSONDecodeError:
        pass
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    if len(lines) > 1 and all(line.startswith("{") for line in lines):
        return [call for line in lines for call in _json_line(line)]
    return from_python_source(block)


def _json_line(line: str) -> list[FunctionCall]:
    try:
        return from_json(_json(line))
    except json.JSONDecodeError as exc:
        raise ToolParseError(f"invalid JSON line: {exc.msg}") from None


def _json(text: str) -> Any:
    """``json.loads``; nesting too deep for the decoder (a looping model can emit thousands of ``[``) is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _strip_prefixes(text: str) -> str:
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


# ---------------------------------------------------------------- JSON shapes


def from_json(value: object) -> list[FunctionCall]:
    """A JSON list of call objects, one call object, or an OpenAI message with ``tool_calls``."""
    if isinstance(value, list):
        return [json_call(v) for v in value]
    if isinstance(value, dict):
        if isinstance(value.get("tool_calls"), list):
            return [json_call(v) for v in value["tool_calls"]]
        return [json_call(value)]
    raise ToolParseError(f"expected a call object or a list of them, got {type(value).__name__}")


def json_call(value: object) -> FunctionCall:
    """``{"name", "arguments"|"parameters"}``, OpenAI's ``{"function": {…}}`` or BFCL's ``{"function": name}``."""
    if not isinstance(value, dict):
        raise ToolParseError(f"expected a call object, got {type(value).__name__}")
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name", value.get("function"))
    if not isinstance(name, str) or not name:
        raise ToolParseError(f"call object without a function name: {_clip(json.dumps(value))}")
    return FunctionCall(name=name, arguments=_json_arguments(value))


def _json_arguments(value: dict[str, Any]) -> dict[str, Any]:
    raw = next((value[k] for k in ARG_KEYS if k in value), {})
    if isinstance(raw, str):
        try:
            raw = _json(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolParseError(f"arguments string is not JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ToolParseError(f"arguments must be an object, got {type(raw).__name__}")
    return raw


# ---------------------------------------------------------------- Python syntax


def from_python_source(source: str) -> list[FunctionCall]:
    """``f(a=1)``, ``[f(a=1), g(b=2)]`` or ``f(a=1), g(b=2)``; argument values must be Python literals."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ToolParseError(f"neither JSON nor Python call syntax: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ToolParseError(f"neither JSON nor Python call syntax: {type(exc).__name__}") from None
    node = tree.body
    if isinstance(node, ast.List | ast.Tuple):
        return [_python_element(elt) for elt in node.elts]
    if isinstance(node, ast.Call | ast.Dict):
        return [_python_element(node)]
    raise ToolParseError(f"expected a call or a list of calls, got a Python {type(node).__name__}")


def _python_element(node: ast.expr) -> FunctionCall:
    """A call ``f(a=1)``, or a call object written as a Python dict (single quotes, ``True``)."""
    if isinstance(node, ast.Call):
        return python_call(node)
    return json_call(_literal(node))


def python_call(node: ast.Call) -> FunctionCall:
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ToolParseError("**kwargs are not a readable argument")
        arguments[keyword.arg] = _literal(keyword.value)
    return FunctionCall(name=dotted_name(node.func), arguments=arguments, positional=[_literal(a) for a in node.args])


def dotted_name(node: ast.expr) -> str:
    """``a.b.c`` from nested attribute access: BFCL function names often contain dots."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ToolParseError(f"callee is a {type(node).__name__}, not a (dotted) name")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ToolParseError(f"argument is not a literal value: {_clip(ast.unparse(node))}") from None


# ---------------------------------------------------------------- calls inside prose


def _scan(text: str) -> list[FunctionCall] | None:
    """Every JSON call structure, bracketed call list, or call alone on its line found in prose; None if none.

    At most :data:`MAX_CANDIDATES` starts are tried: each costs a pass over the text, and a model stuck in a
    loop can emit thousands of brackets.
    """
    calls: list[FunctionCall] = []
    found = False
    done = tries = 0
    for start in _candidates(text):
        if start < done:
            continue
        if tries == MAX_CANDIDATES:
            break
        tries += 1
        end = _balanced_end(text, start if text[start] in "[{" else text.index("(", start))
        if end is None:
            continue
        try:
            calls.extend(parse_block(text[start:end]))
        except ToolParseError:
            continue
        found, done = True, end
    return calls if found else None


def _candidates(text: str) -> list[int]:
    """Where a call structure may start: any ``[`` or ``{``, and a dotted name followed by ``(`` that opens a line."""
    brackets = [m.start() for m in OPENERS.finditer(text)]
    line_calls = [m.start(1) for m in LINE_CALL.finditer(text)]
    return sorted({*brackets, *line_calls})


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes ``text[start]``, skipping quoted strings; None if unclosed."""
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in CLOSERS:
            stack.append(CLOSERS[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return j + 1
    return None


def _attempts_call(text: str) -> bool:
    """Whether the reply looks like it tried to call something (structured output, or a line opening with a call)."""
    return any(marker in text for marker in ("{", "[", "<tool_call", "```")) or bool(LINE_CALL.search(text))


def _clip(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
