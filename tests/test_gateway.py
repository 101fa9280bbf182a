"""``lalo-bench serve`` against mock upstreams: security, limits, routing, streaming, fallback, reload, metrics, logs.

Every gateway here is the real CLI in a subprocess (:func:`running_gateway`) in front of the OpenAI mock
(:func:`running_mock`, with injected faults where a test needs one) and routed by the keyword router, so the model
each prompt goes to is known in advance: "hello" scores 0.5, "how to" 0.6, "prove" 0.9. Gateways are module-scoped
and shared by the tests that only read from them; a test that changes a gateway's state has its own.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lalo_bench.serving.process import free_port
from lalo_bench.testing.gateway import TEST_KEY, running_gateway, write_keyword_policy
from lalo_bench.testing.mock_openai import running_mock
from tests.conftest import wait_for

SMALL, MID, BIG = "small:q4_k_m@llamacpp", "mid:q5_k_m@llamacpp", "big:q8_0@llamacpp"
NAMES = [SMALL, BIG]
THREE_THRESHOLDS = [0.55, 0.8]  # "hello" (0.5) → SMALL, "how to" (0.6) → MID, "prove" (0.9) → BIG
THREE_FALLBACKS = {SMALL: [BIG], MID: [BIG], BIG: [MID, SMALL]}
DOWN = "http://127.0.0.1:9/v1"  # privileged ports nothing listens on: connection refused
DOWN_TOO = "http://127.0.0.1:7/v1"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
TIMEOUT = 15.0


@dataclass(frozen=True)
class Gateway:
    url: str  # ends in /v1
    log: Path
    policy: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")


@contextmanager
def gateway(
    tmp: Path,
    upstreams: dict[str, str],
    *flags: str,
    env: dict[str, str] | None = None,
    **policy: Any,
) -> Iterator[Gateway]:
    """A keyword policy over the upstreams' names (in ladder order) and the gateway in front of it."""
    path = write_keyword_policy(tmp / "routing_policy.json", list(upstreams), **policy)
    log = tmp / "gateway.log"
    with running_gateway(path, upstreams, *flags, env=env, log=log) as url:
        yield Gateway(url, log, path)


def chat(text: str, model: str = "auto", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


def post(gw: Gateway, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gw.url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=TIMEOUT)


def client(gw: Gateway, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=key, timeout=TIMEOUT, max_retries=0)


def data_events(raw: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]


def assert_error(r: httpx.Response, status: int, type_: str | None = None, code: str | None = None) -> dict:
    """An OpenAI-style error: the status, a JSON body ``{"error": {"message", "type", "param", "code"}}``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert {"param", "code"} <= set(error)
    if type_ is not None:
        assert error["type"] == type_, error
    if code is not None:
        assert error["code"] == code, error
    return error


def scrape(gw: Gateway) -> dict[tuple[str, frozenset], float]:
    r = httpx.get(f"{gw.root}/metrics", headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def metric(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# ---------------------------------------------------------------- mocks and gateways


@pytest.fixture(scope="module")
def fast() -> Iterator[str]:
    """Zero-delay; its whole replies echo the request it got (``echo: {"headers", "body"}``)."""
    with running_mock(echo=True) as url:
        yield url


@pytest.fixture(scope="module")
def dropping() -> Iterator[str]:
    """Whole replies as usual; streams break off after 3 chunks (no [DONE], no end of the chunked body)."""
    with running_mock(drop_after=3) as url:
        yield url


@pytest.fixture(scope="module")
def slow() -> Iterator[str]:
    """300 ms to the first token, then one every 100 ms; sleeping, not spinning a core."""
    with running_mock(ttft_ms=300, itl_ms=100, busy_poll=False) as url:
        yield url


@pytest.fixture(scope="module")
def main_gw(fast: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Both models healthy, default logging, an 8 KiB body cap and max_tokens capped at 100."""
    tmp = tmp_path_factory.mktemp("main")
    with gateway(tmp, {SMALL: fast, BIG: fast}, "--max-body-kb", "8", "--max-tokens", "100") as gw:
        yield gw


@pytest.fixture(scope="module")
def fallback_gw(fast: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """SMALL refuses connections, MID answers HTTP 500, both fall back to BIG; prompts are logged (--log-content)."""
    tmp = tmp_path_factory.mktemp("fallback")
    with (
        running_mock(fail_every=1) as broken,
        gateway(tmp, {SMALL: DOWN, MID: broken, BIG: fast}, "--log-content", thresholds=THREE_THRESHOLDS,
                fallbacks=THREE_FALLBACKS) as gw,
    ):  # fmt: skip
        yield gw


@pytest.fixture(scope="module")
def faults_gw(fast: str, dropping: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """SMALL drops its streams after 3 chunks, MID never answers, BIG is fine; first token within 1 s, requests 6 s."""
    tmp = tmp_path_factory.mktemp("faults")
    with (
        running_mock(hang=True) as hanging,
        gateway(tmp, {SMALL: dropping, MID: hanging, BIG: fast}, "--first-token-timeout", "1", "--request-timeout",
                "6", thresholds=THREE_THRESHOLDS, fallbacks=THREE_FALLBACKS) as gw,
    ):  # fmt: skip
        yield gw


# ---------------------------------------------------------------- 1. security


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/metrics"),
     ("GET", "/v1/nowhere")],
)  # fmt: skip
def test_no_key_is_401_with_openai_error_and_bearer_challenge(main_gw: Gateway, method: str, path: str) -> None:
    r = httpx.request(method, f"{main_gw.root}{path}", json=chat("hello"), timeout=TIMEOUT)
    error = assert_error(r, 401, "invalid_request_error", "invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    assert "missing" in error["message"]


@pytest.mark.parametrize(
    "authorization", [f"Bearer {TEST_KEY}x", "Bearer", f"Basic {TEST_KEY}", TEST_KEY, f"Bearer {TEST_KEY[:-1]}"]
)
def test_wrong_key_is_401(main_gw: Gateway, authorization: str) -> None:
    r = post(main_gw, "/chat/completions", chat("hello"), headers={"Authorization": authorization})
    assert_error(r, 401, code="invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"


def test_key_is_checked_before_the_body(main_gw: Gateway) -> None:
    """No key and a body over the cap: 401 (the body is never read), not 413; malformed JSON likewise."""
    big = b"x" * (64 * 1024)
    r = httpx.post(f"{main_gw.url}/chat/completions", content=big, timeout=TIMEOUT)
    assert_error(r, 401, code="invalid_api_key")
    r = httpx.post(f"{main_gw.url}/chat/completions", content=b"{bad", headers={"Authorization": "Bearer nope"})
    assert_error(r, 401, code="invalid_api_key")


def test_health_is_open_and_openai_client_sees_auth_error(main_gw: Gateway) -> None:
    r = httpx.get(f"{main_gw.root}/health", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "upstreams_up": 2, "upstreams": 2}
    with pytest.raises(openai.AuthenticationError) as exc:
        client(main_gw, key="not-the-key-0123456789").models.list()
    assert exc.value.status_code == 401


def test_key_file_is_made_0600_on_first_run_and_reused(fast: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    policy = write_keyword_policy(tmp_path / "policy.json", NAMES)
    key_file = home / "gateway" / "api_key"
    keys = []
    for run in range(2):
        log = tmp_path / f"run{run}.log"
        with running_gateway(policy, {SMALL: fast, BIG: fast}, key=None, env={"LALO_HOME": str(home)}, log=log) as url:
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            key = key_file.read_text().strip()
            assert len(key) >= 32
            ok = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT)
            assert ok.status_code == 200
            assert httpx.get(f"{url}/models", headers=AUTH, timeout=TIMEOUT).status_code == 401
            keys.append(key)
        text = " ".join(log.read_text().split())  # rich may wrap a long line
        assert key not in text, "the key must never be logged"
        assert (f"{key_file} (new)" in text) == (run == 0), text
    assert keys[0] == keys[1]


def run_serve(policy: Path, url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``lalo-bench serve`` expected to refuse to start (a started gateway would run into the timeout)."""
    environ = {k: v for k, v in os.environ.items() if k != "LALO_API_KEY"} | env
    cmd = [sys.executable, "-m", "lalo_bench.cli", "serve", "--policy", str(policy), "--port", str(free_port()),
           "--no-launch", f"--upstream={SMALL}={url}", f"--upstream={BIG}={url}"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=60)


def assert_one_line_refusal(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key_file = home / "gateway" / "api_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("lalo-" + "k" * 40 + "\n")
    key_file.chmod(0o644)
    policy = write_keyword_policy(tmp_path / "policy.json", NAMES)
    proc = run_serve(policy, DOWN, {"LALO_HOME": str(home)})
    assert_one_line_refusal(proc, "chmod 600", str(key_file))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o644  # left as it was, not silently fixed or rewritten


def test_short_env_key_is_refused(tmp_path: Path) -> None:
    policy = write_keyword_policy(tmp_path / "policy.json", NAMES)
    proc = run_serve(policy, DOWN, {"LALO_API_KEY": "short-key-15chr", "LALO_HOME": str(tmp_path / "home")})
    assert_one_line_refusal(proc, "LALO_API_KEY", "16")
    assert not (tmp_path / "home" / "gateway" / "api_key").exists()  # no key file made behind the refused env key


# ---------------------------------------------------------------- 2. limits


def test_body_over_the_cap_is_413(main_gw: Gateway) -> None:
    body = chat("hello " * 2000)  # ~12 KiB against an 8 KiB cap
    error = assert_error(post(main_gw, "/chat/completions", body), 413, code="request_too_large")
    assert str(8 * 1024) in error["message"]
    assert_error(post(main_gw, "/completions", {"prompt": "x" * 9000}), 413, code="request_too_large")


def test_chunked_body_over_the_cap_is_413(main_gw: Gateway) -> None:
    """No Content-Length (chunked upload): the body is cut off as it streams in, still a 413."""

    def body() -> Iterator[bytes]:
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(16):
            yield b"x" * 1024
        yield b'"}]}'

    headers = {**AUTH, "Content-Type": "application/json"}
    r = httpx.post(f"{main_gw.url}/chat/completions", content=body(), headers=headers, timeout=TIMEOUT)
    assert "content-length" not in r.request.headers
    assert_error(r, 413, code="request_too_large")


def raw_post(gw: Gateway, path: str, content: bytes) -> httpx.Response:
    headers = {**AUTH, "Content-Type": "application/json"}
    return httpx.post(f"{gw.url}{path}", content=content, headers=headers, timeout=TIMEOUT)


@pytest.mark.parametrize("content", [b"{bad", b'{"model": "auto", "messages": [', b"\xff\xfe", b""])
def test_malformed_json_is_400(main_gw: Gateway, content: bytes) -> None:
    error = assert_error(raw_post(main_gw, "/chat/completions", content), 400, "invalid_request_error")
    assert "JSON" in error["message"]
    assert error["param"] in (None, "body"), error  # not a byte offset posing as a parameter name


@pytest.mark.parametrize("content", [b"[1, 2]", b'"hello"', b"null", b"42"])
def test_json_that_is_not_an_object_is_400(main_gw: Gateway, content: bytes) -> None:
    for path in ("/chat/completions", "/completions"):
        error = assert_error(raw_post(main_gw, path, content), 400, "invalid_request_error")
        assert "JSON object" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": "hello"}, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({**chat("hello"), "max_tokens": 0}, "max_tokens"),
        ({**chat("hello"), "model": 5}, "model"),
    ],
)
def test_invalid_chat_request_is_400_with_param(main_gw: Gateway, body: dict, param: str) -> None:
    error = assert_error(post(main_gw, "/chat/completions", body), 400, "invalid_request_error")
    assert error["param"] == param


def test_message_count_cap(main_gw: Gateway) -> None:
    """256 messages (Limits.max_messages) pass, 257 are a 400 naming ``messages``."""
    at_cap = {"model": "auto", "messages": [{"role": "user"}] * 256, "max_tokens": 1}
    assert post(main_gw, "/chat/completions", at_cap).status_code == 200
    over = {**at_cap, "messages": [{"role": "user"}] * 257}
    error = assert_error(post(main_gw, "/chat/completions", over), 400, "invalid_request_error")
    assert error["param"] == "messages"
    assert "256" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", chat("hello", max_tokens=101), "max_tokens"),
        ("/chat/completions", chat("hello", max_completion_tokens=101), "max_completion_tokens"),
        ("/chat/completions", chat("hello", n_predict=101), "n_predict"),  # llama.cpp's own name for the cap
        ("/completions", {"model": "auto", "prompt": "hello", "max_tokens": 101}, "max_tokens"),
    ],
)
def test_max_tokens_over_the_cap_is_400(main_gw: Gateway, path: str, body: dict, param: str) -> None:
    error = assert_error(post(main_gw, path, body), 400, "invalid_request_error")
    assert error["param"] == param
    assert "100" in error["message"]
    at_cap = {**body, param: 100}
    assert post(main_gw, path, at_cap).status_code == 200


def test_unknown_model_is_404_model_not_found(main_gw: Gateway) -> None:
    for path, body in (("/chat/completions", chat("hello", model="gpt-4")),
                       ("/completions", {"model": "gpt-4", "prompt": "hello"})):  # fmt: skip
        error = assert_error(post(main_gw, path, body), 404, "invalid_request_error", "model_not_found")
        assert error["param"] == "model"
        assert "gpt-4" in error["message"]
    with pytest.raises(openai.NotFoundError):
        client(main_gw).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hello"}])


def test_openai_client_sees_bad_request(main_gw: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client(main_gw).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hello"}], max_tokens=5000
        )
    assert exc.value.status_code == 400
    assert exc.value.param == "max_tokens"


def test_unknown_route_and_method_are_openai_errors(main_gw: Gateway) -> None:
    assert_error(httpx.get(f"{main_gw.url}/nowhere", headers=AUTH, timeout=TIMEOUT), 404)
    assert_error(httpx.get(f"{main_gw.url}/chat/completions", headers=AUTH, timeout=TIMEOUT), 405)


# ---------------------------------------------------------------- 3. routing, 4. streaming


@pytest.mark.parametrize(("text", "model", "score"), [("hello there", SMALL, 0.5), ("prove that 2+2=4", BIG, 0.9)])
def test_auto_routes_by_the_policy(main_gw: Gateway, text: str, model: str, score: float) -> None:
    r = post(main_gw, "/chat/completions", chat(text, max_tokens=2))
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == model
    assert float(r.headers["x-lalo-route-score"]) == pytest.approx(score)
    assert "x-lalo-fallback-from" not in r.headers
    body = r.json()
    assert body["lalo"] == {"model": model, "score": score, "routed": True, "fallback_from": []}
    assert body["choices"][0]["message"]["content"] == "tok tok "


def test_model_defaults_to_auto(main_gw: Gateway) -> None:
    r = post(main_gw, "/chat/completions", {"messages": [{"role": "user", "content": "prove it"}], "max_tokens": 1})
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == BIG


def test_routing_reads_the_user_turns_and_content_parts(main_gw: Gateway) -> None:
    """A system prompt saying "prove" does not route; a user turn's text part does."""
    system = {"role": "system", "content": "prove everything"}
    r = post(main_gw, "/chat/completions", {"messages": [system, {"role": "user", "content": "hello"}]})
    assert r.headers["x-lalo-model"] == SMALL
    parts = {"role": "user", "content": [{"type": "text", "text": "please prove this"}]}
    r = post(main_gw, "/chat/completions", {"messages": [parts], "max_tokens": 1})
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == BIG


@pytest.mark.parametrize("model", [SMALL, "small:q4_k_m"])  # the policy's name, or the id its server knows it by
def test_explicit_model_goes_to_that_model_unscored(main_gw: Gateway, model: str) -> None:
    r = post(main_gw, "/chat/completions", chat("prove it", model=model, max_tokens=1))
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == SMALL
    assert "x-lalo-route-score" not in r.headers
    assert r.json()["lalo"] == {"model": SMALL, "score": None, "routed": False, "fallback_from": []}


def test_request_passes_through_with_the_served_model_id_and_no_gateway_key(main_gw: Gateway) -> None:
    """Every field reaches the model's server as sent, but ``model`` (its own id) and no Authorization header."""
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    body = {
        "model": "auto",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello", "name": "ann"}],
        "max_tokens": 2,
        "temperature": 0.25,
        "seed": 7,
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "user": "u-1",
        "logit_bias": {"50256": -100},
    }
    r = post(main_gw, "/chat/completions", body)
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == SMALL
    echo = r.json()["echo"]
    assert echo["body"] == {**body, "model": "small:q4_k_m"}
    assert "authorization" not in echo["headers"]
    assert TEST_KEY not in orjson.dumps(echo).decode()
    completion = {"model": BIG, "prompt": ["a", "b"], "max_tokens": 1, "echo": True, "suffix": "z", "best_of": 1}
    echo = post(main_gw, "/completions", completion).json()["echo"]
    assert echo["body"] == {**completion, "model": "big:q8_0"}


def test_models_lists_auto_and_the_policy(main_gw: Gateway) -> None:
    r = httpx.get(f"{main_gw.url}/models", headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["object"] == "list"
    assert [m["id"] for m in r.json()["data"]] == ["auto", *NAMES]
    assert [m.id for m in client(main_gw).models.list()] == ["auto", *NAMES]


def test_stream_relays_to_done_with_lalo_in_first_event(main_gw: Gateway) -> None:
    body = chat("prove it", stream=True, max_tokens=5, stream_options={"include_usage": True})
    r = post(main_gw, "/chat/completions", body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-lalo-model"] == BIG
    assert r.headers["x-lalo-route-score"] == "0.9000"
    events = data_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert chunks[0]["lalo"] == {"model": BIG, "score": 0.9, "routed": True, "fallback_from": []}
    assert all("lalo" not in c for c in chunks[1:])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "tok " * 5
    assert chunks[-1]["usage"]["completion_tokens"] == 5  # stream_options passed through to the model's server


def test_openai_client_chat_plain_and_streamed(main_gw: Gateway) -> None:
    oai = client(main_gw)
    messages = [{"role": "user", "content": "hello"}]
    done = oai.chat.completions.create(model="auto", messages=messages, max_tokens=3)  # type: ignore[arg-type]
    assert done.choices[0].message.content == "tok tok tok "
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=messages, max_tokens=1)  # type: ignore[arg-type]
    assert raw.headers["x-lalo-model"] == SMALL
    stream = oai.chat.completions.create(model="auto", messages=messages, max_tokens=4, stream=True)  # type: ignore[arg-type]
    assert "".join(ev.choices[0].delta.content or "" for ev in stream if ev.choices) == "tok " * 4


def test_completions_plain_and_streamed(main_gw: Gateway) -> None:
    r = post(main_gw, "/completions", {"model": "auto", "prompt": "prove it", "max_tokens": 2})
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == BIG
    assert r.json()["choices"][0]["text"] == "tok tok "
    assert r.json()["lalo"]["score"] == 0.9
    r = post(main_gw, "/completions", {"model": "auto", "prompt": ["hello", "there"], "max_tokens": 3, "stream": True})
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == SMALL
    events = data_events(r.text)
    assert events[-1] == "[DONE]"
    assert orjson.loads(events[0])["lalo"]["model"] == SMALL
    assert "".join(orjson.loads(e)["choices"][0]["text"] for e in events[:-1]) == "tok " * 3
    oai = client(main_gw)
    assert oai.completions.create(model=BIG, prompt="hello", max_tokens=2).choices[0].text == "tok tok "
    streamed = oai.completions.create(model="auto", prompt="hello", max_tokens=2, stream=True)
    assert "".join(ev.choices[0].text for ev in streamed) == "tok tok "


# ---------------------------------------------------------------- 8. metrics, 9. logs (default settings)


def test_metrics_count_requests_routes_latency(main_gw: Gateway) -> None:
    before = scrape(main_gw)
    assert post(main_gw, "/chat/completions", chat("hello", max_tokens=1)).status_code == 200
    assert post(main_gw, "/chat/completions", chat("prove it", max_tokens=1, stream=True)).status_code == 200
    assert post(main_gw, "/completions", {"prompt": "hello", "model": BIG, "max_tokens": 1}).status_code == 200
    assert post(main_gw, "/chat/completions", chat("hello", model="nope")).status_code == 404
    after = scrape(main_gw)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    chat_small = {"endpoint": "chat/completions", "model": SMALL, "status": "200"}
    assert grew("lalo_gateway_requests_total", **chat_small) == 1
    assert grew("lalo_gateway_requests_total", **{**chat_small, "model": BIG}) == 1
    assert grew("lalo_gateway_requests_total", endpoint="completions", model=BIG, status="200") == 1
    assert grew("lalo_gateway_requests_total", endpoint="chat/completions", model="none", status="404") == 1
    assert grew("lalo_gateway_routes_total", model=SMALL) == 1
    assert grew("lalo_gateway_routes_total", model=BIG) == 1  # the explicit BIG request is not a route
    assert grew("lalo_gateway_request_seconds_count", model=BIG) == 2
    assert grew("lalo_gateway_request_seconds_bucket", model=SMALL, le="+Inf") == 1
    assert grew("lalo_gateway_request_seconds_bucket", model=SMALL, le="1.0") == 1  # a zero-delay mock: well under 1 s
    assert grew("lalo_gateway_first_event_seconds_count", model=BIG) == 1
    assert grew("lalo_gateway_tokens_total", model=SMALL, direction="output") == 1
    assert metric(after, "lalo_gateway_in_flight") == 0
    assert metric(after, "lalo_gateway_upstream_up", model=SMALL) == 1


def test_default_logs_hold_no_prompt_text(main_gw: Gateway) -> None:
    secret = "zebra-7f3a-secret"

    def lines() -> int:
        return main_gw.log.read_text().count("completions ")

    before = lines()
    assert post(main_gw, "/chat/completions", chat(f"hello {secret}", max_tokens=1)).status_code == 200
    assert post(main_gw, "/chat/completions", chat(f"prove {secret}", max_tokens=2, stream=True)).status_code == 200
    assert post(main_gw, "/completions", {"prompt": secret, "max_tokens": 1}).status_code == 200
    assert post(main_gw, "/chat/completions", chat(secret, max_tokens=10_000)).status_code == 400
    assert post(main_gw, "/chat/completions", chat(secret, model=secret)).status_code == 404
    wait_for(lambda: lines() >= before + 4, 5, "the requests' log lines")
    text = main_gw.log.read_text()
    assert "chat/completions" in text  # it logs requests, just not what they say
    assert secret not in text


# ---------------------------------------------------------------- 5. fallback


def test_down_model_falls_back_with_header(fallback_gw: Gateway) -> None:
    """SMALL's server refuses connections: "hello" (routed to SMALL) is served by BIG and says so."""
    for _ in range(2):  # also once SMALL is known to be down (a failed request or health check)
        r = post(fallback_gw, "/chat/completions", chat("hello", max_tokens=1))
        assert r.status_code == 200
        assert r.headers["x-lalo-model"] == BIG
        assert r.headers["x-lalo-route-score"] == "0.5000"
        assert r.headers.get("x-lalo-fallback-from") == SMALL
        assert r.json()["lalo"]["fallback_from"] == [SMALL]


def test_http_500_falls_back(fallback_gw: Gateway) -> None:
    r = post(fallback_gw, "/chat/completions", chat("how to bake", max_tokens=2, stream=True))
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == BIG
    assert r.headers.get("x-lalo-fallback-from") == MID
    assert data_events(r.text)[-1] == "[DONE]"
    assert orjson.loads(data_events(r.text)[0])["lalo"]["fallback_from"] == [MID]


@pytest.mark.parametrize("model", [SMALL, MID])
def test_explicit_model_that_is_down_is_503_without_fallback(fallback_gw: Gateway, model: str) -> None:
    for stream in (False, True):
        r = post(fallback_gw, "/chat/completions", chat("hello", model=model, stream=stream))
        error = assert_error(r, 503, "service_unavailable", "upstreams_down")
        assert model in error["message"]
        assert "x-lalo-model" not in r.headers
    with pytest.raises(openai.InternalServerError) as exc:
        client(fallback_gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    assert exc.value.status_code == 503


def test_fallback_metrics_and_health(fallback_gw: Gateway) -> None:
    assert post(fallback_gw, "/chat/completions", chat("how to swim", max_tokens=1)).status_code == 200
    samples = scrape(fallback_gw)
    assert metric(samples, "lalo_gateway_errors_total", kind="upstream_down") >= 1
    assert metric(samples, "lalo_gateway_upstream_up", model=SMALL) == 0
    assert metric(samples, "lalo_gateway_upstream_up", model=BIG) == 1
    r = httpx.get(f"{fallback_gw.root}/health", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert r.json()["upstreams"] == 3


def test_fallback_metrics_count_the_move(fallback_gw: Gateway) -> None:
    before = scrape(fallback_gw)
    assert post(fallback_gw, "/chat/completions", chat("hello", max_tokens=1)).headers["x-lalo-model"] == BIG
    after = scrape(fallback_gw)
    labels = {"from_model": SMALL, "to_model": BIG}
    moved = metric(after, "lalo_gateway_fallbacks_total", **labels) - metric(
        before, "lalo_gateway_fallbacks_total", **labels
    )
    assert moved == 1


def test_log_content_logs_the_prompt(fallback_gw: Gateway) -> None:
    secret = "okapi-91c2-marker"
    assert post(fallback_gw, "/chat/completions", chat(f"hello {secret}", max_tokens=1)).status_code == 200
    wait_for(lambda: secret in fallback_gw.log.read_text(), 5, "the prompt in the --log-content log")


def test_all_local_down_without_cloud_is_503(fast: str, tmp_path: Path) -> None:
    """The policy forbids the cloud: --cloud-url is there but unused, and every local model down is a 503."""
    with gateway(tmp_path, {SMALL: DOWN, BIG: DOWN_TOO}, "--cloud-url", fast, cloud_fallback=False) as gw:
        for stream in (False, True):
            error = assert_error(post(gw, "/chat/completions", chat("hello", stream=stream)), 503,
                                 "service_unavailable", "upstreams_down")  # fmt: skip
            assert SMALL in error["message"] and BIG in error["message"]
            assert "cloud" not in error["message"]
        with pytest.raises(openai.InternalServerError):
            client(gw).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}])
        health = httpx.get(f"{gw.root}/health", timeout=TIMEOUT)
        assert health.status_code == 503
        assert health.json()["status"] == "down"
        assert "--cloud-url is unused" in " ".join(gw.log.read_text().split())


def test_cloud_serves_when_every_local_model_is_down(fast: str, tmp_path: Path) -> None:
    flags = ("--cloud-url", fast, "--cloud-model", "cloud-mini")
    env = {"LALO_CLOUD_API_KEY": "cloud-secret-0123456789"}
    with gateway(tmp_path, {SMALL: DOWN, BIG: DOWN_TOO}, *flags, env=env, cloud_fallback=True) as gw:
        r = post(gw, "/chat/completions", chat("hello", max_tokens=2))
        assert r.status_code == 200
        assert r.headers["x-lalo-model"] == "cloud:cloud-mini"
        assert r.headers["x-lalo-fallback-from"] == f"{SMALL},{BIG}"
        assert r.json()["choices"][0]["message"]["content"] == "tok tok "
        echo = r.json()["echo"]  # the cloud gets its own key and model id, never the gateway's key
        assert echo["headers"]["authorization"] == "Bearer cloud-secret-0123456789"
        assert echo["body"]["model"] == "cloud-mini"
        assert TEST_KEY not in orjson.dumps(echo).decode()
        r = post(gw, "/chat/completions", chat("prove it", max_tokens=2, stream=True))
        assert r.headers["x-lalo-model"] == "cloud:cloud-mini"
        assert r.headers["x-lalo-fallback-from"] == f"{BIG},{SMALL}"
        assert data_events(r.text)[-1] == "[DONE]"
        # a model asked for by name is that model only: no cloud behind it
        assert_error(post(gw, "/chat/completions", chat("hello", model=SMALL)), 503, code="upstreams_down")
        assert "--cloud-url is unused" not in gw.log.read_text()


def test_cloud_is_not_tried_before_a_local_model_that_answers(fast: str, dropping: str, tmp_path: Path) -> None:
    """A local model flagged down by an earlier failure is still tried before the cloud: the policy allows the cloud
    only when every local model failed this request (privacy), not when one merely failed the last time."""
    flags = ("--cloud-url", fast, "--cloud-model", "cloud-mini")
    with gateway(tmp_path, {SMALL: dropping, BIG: DOWN}, *flags, cloud_fallback=True) as gw:
        assert post(gw, "/chat/completions", chat("hello", max_tokens=1)).headers["x-lalo-model"] == SMALL
        broken = post(gw, "/chat/completions", chat("hello", model=SMALL, max_tokens=8, stream=True))
        assert "error" in data_events(broken.text)[-1]  # SMALL failed mid-stream: flagged down until a check
        r = post(gw, "/chat/completions", chat("hello", max_tokens=1))
        assert r.status_code == 200
        assert r.headers["x-lalo-model"] == SMALL, "sent to the cloud while a local model could answer"
        assert "echo" not in r.json()  # the cloud mock echoes, the local one does not


# ---------------------------------------------------------------- 5. faults after and before the first token


def test_mid_stream_drop_ends_with_error_event(faults_gw: Gateway) -> None:
    started = time.monotonic()
    r = post(faults_gw, "/chat/completions", chat("hello", model=SMALL, max_tokens=8, stream=True))
    assert time.monotonic() - started < 5
    assert r.status_code == 200  # committed: the first event was already relayed
    events = data_events(r.text)
    assert "[DONE]" not in events
    assert [orjson.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]] == ["tok "] * 3
    error = orjson.loads(events[-1])["error"]
    assert SMALL in error["message"] and error["type"]


def test_mid_stream_drop_raises_in_openai_client_and_gateway_keeps_serving(faults_gw: Gateway) -> None:
    before = scrape(faults_gw)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as exc:
        stream = client(faults_gw).chat.completions.create(
            model=SMALL, messages=[{"role": "user", "content": "hello"}], max_tokens=8, stream=True
        )
        for ev in stream:
            received.append(ev.choices[0].delta.content or "")
    assert time.monotonic() - started < 5
    assert not isinstance(exc.value, openai.APIConnectionError), "a timeout or a dropped connection, not the event"
    assert "mid-stream" in exc.value.message or "closed the stream" in exc.value.message
    assert received == ["tok "] * 3
    after = scrape(faults_gw)
    assert metric(after, "lalo_gateway_errors_total", kind="mid_stream") > metric(
        before, "lalo_gateway_errors_total", kind="mid_stream"
    )
    assert metric(after, "lalo_gateway_requests_total", endpoint="chat/completions", model=SMALL, status="502") >= 1
    assert metric(after, "lalo_gateway_in_flight") == 0
    # the gateway, and the model that failed, keep serving
    r = post(faults_gw, "/chat/completions", chat("hello", max_tokens=2))
    assert r.status_code == 200
    assert post(faults_gw, "/chat/completions", chat("hello", model=SMALL, max_tokens=2)).status_code == 200
    r = post(faults_gw, "/chat/completions", chat("prove it", max_tokens=2, stream=True))
    assert r.headers["x-lalo-model"] == BIG
    assert data_events(r.text)[-1] == "[DONE]"


def test_no_first_token_in_time_falls_back(faults_gw: Gateway) -> None:
    """MID accepts and never answers: after --first-token-timeout (1 s), not --request-timeout (6 s), BIG serves."""
    started = time.monotonic()
    r = post(faults_gw, "/chat/completions", chat("how to knit", max_tokens=2, stream=True))
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert r.headers["x-lalo-model"] == BIG
    assert r.headers.get("x-lalo-fallback-from") == MID
    assert data_events(r.text)[-1] == "[DONE]"
    assert elapsed < 4, f"fell back after {elapsed:.1f} s"


# ---------------------------------------------------------------- 2. concurrency


@pytest.fixture(scope="module")
def narrow_gw(slow: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Two requests in flight at most, in front of the slow mock (a 10-token stream takes ~1.2 s)."""
    tmp = tmp_path_factory.mktemp("narrow")
    with gateway(tmp, {SMALL: slow, BIG: slow}, "--max-concurrency", "2") as gw:
        yield gw


def test_over_max_concurrency_is_429_with_retry_after(narrow_gw: Gateway) -> None:
    n = 4
    barrier = threading.Barrier(n)

    def one(_i: int) -> tuple[int, str | None, bytes]:
        barrier.wait()
        body = chat("hello", max_tokens=10, stream=True)
        with httpx.stream("POST", f"{narrow_gw.url}/chat/completions", json=body, headers=AUTH, timeout=TIMEOUT) as r:
            return r.status_code, r.headers.get("retry-after"), r.read()

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    ok = [content for status, _, content in results if status == 200]
    refused = [(retry, content) for status, retry, content in results if status == 429]
    assert len(ok) + len(refused) == n, [r[0] for r in results]
    assert len(ok) >= 2 and len(refused) >= 1, [r[0] for r in results]
    for content in ok:
        assert data_events(content.decode())[-1] == "[DONE]"
    for retry, content in refused:
        assert retry is not None and int(retry) >= 1
        error = orjson.loads(content)["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "concurrency_limit"
    # the slots are free again
    assert post(narrow_gw, "/chat/completions", chat("hello", max_tokens=1)).status_code == 200
    assert metric(scrape(narrow_gw), "lalo_gateway_in_flight") == 0


def test_openai_client_sees_rate_limit(narrow_gw: Gateway) -> None:
    holding = [threading.Event(), threading.Event()]

    def hold(i: int) -> None:
        body = chat("hello", max_tokens=15, stream=True)
        with httpx.stream("POST", f"{narrow_gw.url}/chat/completions", json=body, headers=AUTH, timeout=TIMEOUT) as r:
            assert r.status_code == 200
            holding[i].set()
            r.read()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(hold, i) for i in range(2)]
        assert all(event.wait(TIMEOUT) for event in holding)  # both slots taken
        with pytest.raises(openai.RateLimitError) as exc:
            client(narrow_gw).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert exc.value.response.headers["retry-after"] == "1"
        for f in futures:
            f.result()


def test_clients_that_hang_up_free_their_slot(narrow_gw: Gateway) -> None:
    """Streams abandoned mid-way or before their first event do not hold a concurrency slot for good."""
    for _ in range(3):
        body = chat("hello", max_tokens=20, stream=True)
        with httpx.stream("POST", f"{narrow_gw.url}/chat/completions", json=body, headers=AUTH, timeout=TIMEOUT) as r:
            next(r.iter_raw())  # one chunk, then hang up
    hung_up = 0
    for _ in range(3):  # gone before the upstream's first token (300 ms); a 429 (both slots busy) is fine too
        try:
            r = httpx.post(f"{narrow_gw.url}/chat/completions", json=chat("hello", stream=True), headers=AUTH,
                           timeout=0.1)  # fmt: skip
            assert r.status_code == 429
        except httpx.TimeoutException:
            hung_up += 1
    assert hung_up >= 1
    wait_for(lambda: metric(scrape(narrow_gw), "lalo_gateway_in_flight") == 0, 5, "in-flight back to 0")
    r = post(narrow_gw, "/chat/completions", chat("hello", max_tokens=1))
    assert r.status_code == 200


# ---------------------------------------------------------------- 7. hot reload


@pytest.fixture(scope="module")
def reload_gw(slow: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("reload")
    with gateway(tmp, {SMALL: slow, BIG: slow}) as gw:
        yield gw


def served_by(gw: Gateway, text: str) -> str:
    r = post(gw, "/chat/completions", chat(text, max_tokens=1))
    assert r.status_code == 200, r.text
    return r.headers["x-lalo-model"]


def test_reload_applies_to_new_requests_and_in_flight_stream_finishes(reload_gw: Gateway) -> None:
    write_keyword_policy(reload_gw.policy, NAMES)  # the policy the gateway started with
    wait_for(lambda: served_by(reload_gw, "prove it") == BIG, 5, "the starting policy")
    loaded_before = metric(scrape(reload_gw), "lalo_gateway_policy_reloads_total", outcome="loaded")
    first_event = threading.Event()

    def long_stream() -> tuple[dict[str, str], list[str], float]:
        body = chat("prove it", max_tokens=40, stream=True)  # ~4.2 s on the slow mock
        with httpx.stream("POST", f"{reload_gw.url}/chat/completions", json=body, headers=AUTH, timeout=30) as r:
            lines = []
            for line in r.iter_lines():
                first_event.set()
                lines.append(line)
            return dict(r.headers), lines, time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(long_stream)
        assert first_event.wait(TIMEOUT)
        write_keyword_policy(reload_gw.policy, NAMES, thresholds=[0.95])  # now "prove" (0.9) stays on SMALL
        wait_for(lambda: served_by(reload_gw, "prove it") == SMALL, 4, "the new policy")
        switched_at = time.monotonic()
        headers, lines, ended_at = future.result(timeout=30)
    assert ended_at > switched_at, "the stream should still have been running when the new policy took over"
    assert headers["x-lalo-model"] == BIG
    events = data_events("\n".join(lines))
    assert events[-1] == "[DONE]"
    assert len(events) == 41 and not any("error" in e for e in events)
    assert served_by(reload_gw, "hello") == SMALL
    assert metric(scrape(reload_gw), "lalo_gateway_policy_reloads_total", outcome="loaded") == loaded_before + 1


def test_broken_policy_is_refused_and_the_old_one_keeps_serving(reload_gw: Gateway) -> None:
    current = served_by(reload_gw, "prove it")
    saved = reload_gw.policy.read_bytes()

    def refused() -> float:
        return metric(scrape(reload_gw), "lalo_gateway_policy_reloads_total", outcome="refused")

    start = refused()
    reload_gw.policy.write_text('{"kind": "lalo-bench/routing-policy", "version": 1, "models": [')  # cut short
    wait_for(lambda: refused() > start, 5, "the truncated policy refused")
    assert served_by(reload_gw, "prove it") == current
    # valid JSON, but naming a model no upstream serves
    once = refused()
    write_keyword_policy(reload_gw.policy, [SMALL, "other:q4_k_m@llamacpp"])
    wait_for(lambda: refused() > once, 5, "the policy without an upstream refused")
    assert served_by(reload_gw, "prove it") == current
    r = httpx.get(f"{reload_gw.url}/models", headers=AUTH, timeout=TIMEOUT)
    assert [m["id"] for m in r.json()["data"]] == ["auto", *NAMES]
    twice = refused()
    time.sleep(1.5)  # a refused file is not retried (and not counted again) while its bytes stay the same
    assert refused() == twice
    assert "refused" in reload_gw.log.read_text()
    # a good file after the broken ones loads
    write_keyword_policy(reload_gw.policy, NAMES, thresholds=[0.95] if current == BIG else [0.7])
    flipped = SMALL if current == BIG else BIG
    wait_for(lambda: served_by(reload_gw, "prove it") == flipped, 5, "the good policy after the broken ones")
    reload_gw.policy.write_bytes(saved)
