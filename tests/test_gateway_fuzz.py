"""Fuzzing the gateway over HTTP: never a 5xx, and every refusal an OpenAI error body (``error.message``).

The real ``lalo-bench serve`` runs in a subprocess in front of two zero-delay mock servers. Three sources of cases:

* schemathesis, from the gateway's own ``/openapi.json``: every operation with schema-shaped (positive) data, and
  the two POST operations with schema-violating (negative) data too;
* hypothesis, arbitrary request bodies for both POST operations: raw bytes, any JSON value (64-bit-overflowing
  integers, NaN, lone surrogates included), and near-valid objects whose known fields take any JSON value;
* hypothesis, unknown paths, wrong methods and wrong keys.

Every case sent is counted; run with ``-s`` to see the counts per operation. Generation is derandomized, so CI
sends the same cases on every run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from lalo_bench.testing.gateway import TEST_KEY, running_gateway, write_keyword_policy
from lalo_bench.testing.mock_openai import running_mock

NAMES = ["qwen2.5-0.5b:q4_k_m@llamacpp", "qwen2.5-1.5b:q8_0@llamacpp"]
SERVED = [n.split("@")[0] for n in NAMES]  # the model ids the gateway sends upstream, also accepted from clients
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
]
POSTS = [(m, p) for m, p in OPERATIONS if m == "POST"]
TIMEOUT_S = 30.0

# Examples per test; each case is one HTTP request of a few milliseconds (about 30 s for the file on 2 cores).
SCHEMA_EXAMPLES = {GenerationMode.POSITIVE: 300, GenerationMode.NEGATIVE: 200}
RAW_EXAMPLES = 500
ROUTE_EXAMPLES = 150
MIN_TOTAL = 2000

SENT: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports the case as sent, in bounded time
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


@dataclass(frozen=True)
class Gateway:
    root: str  # http://127.0.0.1:PORT, without /v1
    log: Path

    def last_log_line(self) -> str:
        """The gateway's last log line: after a 500, the exception that caused it."""
        time.sleep(0.05)  # let the server flush the lines about the request that just failed
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(empty log)"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway-fuzz")
    policy = write_keyword_policy(tmp / "policy.yaml", NAMES)
    log = tmp / "gateway.log"
    with (
        running_mock() as first,
        running_mock() as second,
        running_gateway(policy, dict(zip(NAMES, [first, second], strict=True)), log=log) as base,
    ):
        yield Gateway(base.removesuffix("/v1"), log)
    total = sum(SENT.values())
    print(f"\ngateway fuzz: {total} cases sent")
    for label, n in sorted(SENT.items()):
        statuses = ", ".join(f"{code}: {k}" for code, k in sorted(STATUSES.get(label, Counter()).items()))
        print(f"  {n:6d}  {label}  ({statuses})")


@pytest.fixture(scope="module")
def schema(gateway: Gateway) -> Any:
    return schemathesis.openapi.from_url(f"{gateway.root}/openapi.json", timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S) as c:
        yield c


def _problem(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with an answer: a 5xx, or a refusal an OpenAI client cannot parse (no JSON ``error.message``)."""
    if status >= 500:
        return f"HTTP {status}"
    if 200 <= status < 300:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not (isinstance(message, str) and message):
        return f"HTTP {status} without an OpenAI error body"
    if not content_type.startswith("application/json"):
        return f"HTTP {status} error body labelled {content_type!r}"
    return None


@dataclass
class Findings:
    """Every bad answer of one test, grouped by what was wrong and the gateway's last log line (its exception).

    Cases are recorded and the run goes on, so one failure does not hide another and the count of cases sent stays
    the same whether or not the gateway fails; the test fails at its end with one reproducible request per group.
    """

    gateway: Gateway
    label: str
    groups: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def sent(self) -> None:
        SENT[self.label] += 1

    def check(self, status: int, content_type: str, body: bytes, request: str) -> bool:
        """Record the answer; False (and the case kept) when it is bad."""
        STATUSES.setdefault(self.label, Counter())[status] += 1
        problem = _problem(status, content_type, body)
        if problem is None:
            return True
        self.add(
            problem, self.gateway.last_log_line(), f"{request}\n--- answer: {status} {content_type} {body[:200]!r}"
        )
        return False

    def add(self, problem: str, log_line: str, case: str) -> None:
        group = self.groups.setdefault((problem, log_line), [])
        group.append("" if group else case if len(case) <= 2000 else f"{case[:1000]} …(cut)… {case[-1000:]}")

    def assert_none(self) -> None:
        if not self.groups:
            return
        failed = sum(len(g) for g in self.groups.values())
        lines = [f"{self.label}: {failed} of {SENT[self.label]} cases failed, in {len(self.groups)} groups"]
        for (problem, log_line), group in self.groups.items():
            lines += [f"\n=== {problem}, {len(group)} cases; gateway log: {log_line}", f"--- first request: {group[0]}"]
        pytest.fail("\n".join(lines), pytrace=False)


def test_schema_holds_the_fuzzed_operations(schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert found == set(OPERATIONS), "a new operation: add it to OPERATIONS so it is fuzzed"


# Some schema-shaped cases keep the generated model (an unknown id: 404, or none: "auto"); the others ask for "auto",
# a policy name or a served id, so that most requests reach routing, the upstreams and the relay.
MODEL_CHOICES = st.sampled_from([None, None, None, "auto", *NAMES, *SERVED])

SCHEMA_CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for mode in GenerationMode
    for method, path in (OPERATIONS if mode is GenerationMode.POSITIVE else POSTS)  # GETs take no input to violate
]


@pytest.mark.parametrize(("method", "path", "mode"), SCHEMA_CASES)
def test_schema_fuzz(
    gateway: Gateway, schema: Any, session: requests.Session, method: str, path: str, mode: GenerationMode
) -> None:
    """schemathesis cases for one operation and mode: never a 5xx, never a refusal without an error body."""
    operation = schema[path][method]
    found = Findings(gateway, f"{method} {path} [schemathesis {mode.value}]")
    before = SENT[found.label]

    @_settings(SCHEMA_EXAMPLES[mode])
    @given(case=operation.as_strategy(generation_mode=mode), model=MODEL_CHOICES)
    def run(case: Any, model: str | None) -> None:
        if mode is GenerationMode.POSITIVE and model is not None and isinstance(case.body, dict):
            case.body["model"] = model
        found.sent()
        response = case.call(base_url=gateway.root, session=session, headers=AUTH, timeout=TIMEOUT_S)
        request = case.as_curl_command(headers=AUTH)
        content_type = next(iter(response.headers.get("content-type", [])), "")  # schemathesis: header -> list
        if not found.check(response.status_code, content_type, response.content, request):
            return
        try:  # schemathesis's own verdict too, where ours found nothing wrong
            case.validate_response(response, checks=[not_a_server_error], headers=AUTH)
        except schemathesis.errors.FailureGroup as exc:  # recorded, not raised: the run goes on (see Findings)
            found.add("schemathesis: " + "; ".join(f.title for f in exc.exceptions), "-", request)

    run()
    sent = SENT[found.label] - before
    found.assert_none()
    assert sent >= (1 if method == "GET" else SCHEMA_EXAMPLES[mode] // 2), f"only {sent} cases sent"


# --- arbitrary bodies ---------------------------------------------------------------------------------------------

# Keys the mock upstream reads without checking them (it is a timing fixture, not a hardened server): a random value
# there would crash the mock, not the gateway. Real servers answer such values with a 4xx, which the gateway relays.
MOCK_READS = {"stream_options", "max_completion_tokens", "max_tokens", "seed"}

# Values at the edges of what JSON, Python and orjson agree on, mixed in so that they are not left to chance:
# integers past 64 bits, lone surrogates (sent as \\udXXX escapes), NUL, NaN and ±Infinity (Python's JSON reads them).
EDGES = st.sampled_from(
    [2**63, -(2**63) - 1, 2**64, 10**30, "\ud800", "x\udfff", "\x00", "", float("nan"), float("inf"), -0.0, 1e308]
)
TEXT = st.text(st.characters(), max_size=20)  # any code point, surrogates included
SCALARS = EDGES | st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
EXTRA_FIELDS = st.dictionaries(TEXT.filter(lambda k: k not in MOCK_READS), JSON_VALUES, max_size=3)
MODELS = st.sampled_from(["auto", *NAMES, *SERVED])
MESSAGE = st.builds(
    lambda own, extra: {**extra, **own},
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
        optional={"content": TEXT | st.none() | st.lists(st.dictionaries(TEXT, JSON_VALUES, max_size=3), max_size=2)},
    ),
    EXTRA_FIELDS,  # unknown message fields pass through too
)
VALID = {
    "/v1/chat/completions": st.fixed_dictionaries(
        {"messages": st.lists(MESSAGE, min_size=1, max_size=3)},
        optional={
            "model": MODELS,
            "stream": st.booleans(),
            "max_tokens": st.integers(1, 64),
            "max_completion_tokens": st.integers(1, 64),
            "tools": st.lists(st.dictionaries(TEXT, JSON_VALUES, max_size=2), max_size=2),
        },
    ),
    "/v1/completions": st.fixed_dictionaries(
        {"prompt": TEXT | st.lists(TEXT, max_size=3)},
        optional={"model": MODELS, "stream": st.booleans(), "max_tokens": st.integers(1, 64)},
    ),
}
# The fields each operation reads; any of them may be given any JSON value (the gateway must refuse it with a 400).
KNOWN = {
    "/v1/chat/completions": ["messages", "model", "stream", "max_tokens", "max_completion_tokens", "tools"],
    "/v1/completions": ["prompt", "model", "stream", "max_tokens"],
}


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def _bodies(path: str) -> st.SearchStrategy[bytes]:
    """Raw bytes; any JSON value; a valid request with unknown fields (passed upstream as they are); a valid
    request with one of its own fields, or one message field, set to any JSON value."""
    valid = VALID[path]
    with_extra = st.builds(lambda own, extra: {**extra, **own}, valid, EXTRA_FIELDS)
    one_field = st.builds(
        lambda body, key, value: {**body, key: value}, valid, st.sampled_from(KNOWN[path]), JSON_VALUES
    )
    values = [JSON_VALUES, with_extra, one_field]
    if path == "/v1/chat/completions":
        values.append(
            st.builds(
                lambda body, key, value: {**body, "messages": [{**body["messages"][0], key: value}]},
                valid,
                st.sampled_from(["role", "content"]),
                JSON_VALUES,
            )
        )
    return st.one_of(st.binary(max_size=64), *(v.map(_encode) for v in values))


CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json", "application/json; charset=utf-8", "text/plain",
     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/vnd.api+json", None]
)  # fmt: skip

# Two bodies found by this fuzzing that the gateway answered with a bare 500 (orjson cannot encode an integer past
# 64 bits, nor a lone surrogate, when it forwards the request); each is valid for both operations.
HUGE_INT = (
    b'{"prompt": "hi", "messages": [{"role": "user", "content": "hi"}], '
    b'"logit_bias": {"1": 123456789012345678901234567890}}'
)
SURROGATE = b'{"prompt": "hi \\ud800", "messages": [{"role": "user", "content": "hi \\ud800"}]}'


@pytest.mark.parametrize("path", [p for _, p in POSTS])
def test_arbitrary_bodies(gateway: Gateway, client: httpx.Client, path: str) -> None:
    """Raw bytes, any JSON value, or a near-valid object, under several content types: no 5xx, JSON refusals."""
    found = Findings(gateway, f"POST {path} [hypothesis bodies]")

    @_settings(RAW_EXAMPLES)
    @given(body=_bodies(path), content_type=CONTENT_TYPES)
    @example(body=HUGE_INT, content_type="application/json")
    @example(body=SURROGATE, content_type="application/json")
    def run(body: bytes, content_type: str | None) -> None:
        headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
        found.sent()
        response = client.post(f"{gateway.root}{path}", content=body, headers=headers)
        request = f"POST {path}\nheaders: {headers}\nbody: {body!r}"
        found.check(response.status_code, response.headers.get("content-type", ""), response.content, request)

    run()
    found.assert_none()
    assert SENT[found.label] >= RAW_EXAMPLES // 2


# --- unknown routes, wrong methods, wrong keys -----------------------------------------------------------------

KEYS = st.sampled_from(
    [AUTH, AUTH, {}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}, {"Authorization": TEST_KEY},
     {"Authorization": f"bearer {TEST_KEY}"}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {TEST_KEY}"}]
)  # fmt: skip
PATHS = st.sampled_from([p for _, p in OPERATIONS] + ["/v1", "/v1/", "/v1/embeddings", "/openapi.json", "/"]) | (
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%"), max_size=12).map(
        lambda s: "/v1/" + s
    )
)


def test_routes_methods_and_keys(gateway: Gateway, client: httpx.Client) -> None:
    found = Findings(gateway, "any method, path and key [hypothesis routes]")

    @_settings(ROUTE_EXAMPLES)
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        path=PATHS,
        headers=KEYS,
        body=st.sampled_from([b"", b"{}", b'{"messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}']),
    )
    def run(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        found.sent()
        response = client.request(method, f"{gateway.root}{path}", content=body or None, headers=headers)
        request = f"{method} {path}\nheaders: {headers}\nbody: {body!r}"
        content = b'{"error": {"message": "(HEAD: no body)"}}' if method == "HEAD" else response.content
        found.check(response.status_code, response.headers.get("content-type", ""), content, request)

    run()
    found.assert_none()
    assert SENT[found.label] >= ROUTE_EXAMPLES // 2


def test_cases_sent() -> None:
    """The fuzz tests above (run first, in file order) sent enough cases; the per-operation counts print with -s."""
    if len(SENT) < len(SCHEMA_CASES) + len(POSTS) + 1:
        pytest.skip("counts only a run of every fuzz test above")
    total = sum(SENT.values())
    print(f"\ngateway fuzz so far: {total} cases; " + ", ".join(f"{k}: {v}" for k, v in sorted(SENT.items())))
    assert total >= MIN_TOTAL
