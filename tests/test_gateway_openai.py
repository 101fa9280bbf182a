"""The gateway through the official ``openai`` client, in front of real llama.cpp servers (SmolLM2-135M).

Two servers serve two different models: the Q4_1 GGUF and the Q8_0 one derived from it. The keyword policy
routes "hello" (score 0.5) to Q4_1 and "prove ..." (0.9) to Q8_0. Every answer must come from a real model,
with the gateway's headers and ``lalo`` field naming who served it. The kill test has a server of its own.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from lalo_bench.config import Catalog
from lalo_bench.models import quantize
from lalo_bench.serving.launch import RunningServer, launch_server
from lalo_bench.serving.process import free_port, group_pids
from lalo_bench.testing.gateway import TEST_KEY, running_gateway, write_keyword_policy
from tests.conftest import SMOL

pytestmark = pytest.mark.slow

Q4 = f"{SMOL}:q4_1@llamacpp-server"  # the cheap model: "hello" goes here
Q8 = f"{SMOL}:q8_0@llamacpp-server"  # the strong one: "prove ..." goes here
SIMPLE = "hello"
COMPLEX = "Prove that the square root of 2 is irrational."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


def _client(url: str, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _serve(stack: ExitStack, catalog: Catalog, quant: str, logs: Path) -> RunningServer:
    return stack.enter_context(
        launch_server(catalog, SMOL, quant, "llamacpp-server", n_threads=1, n_ctx=1024, log_dir=logs)
    )


@pytest.fixture(scope="module")
def servers(
    catalog: Catalog, smollm2: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    quantize.ensure(catalog, SMOL, "q8_0")  # derived from the Q4_1 file in seconds, once per machine
    logs = tmp_path_factory.mktemp("llama-logs")
    with ExitStack() as stack:
        yield {Q4: _serve(stack, catalog, "q4_1", logs), Q8: _serve(stack, catalog, "q8_0", logs)}


@pytest.fixture(scope="module")
def gateway(servers: dict[str, RunningServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("gateway")
    policy = write_keyword_policy(tmp / "policy.json", [Q4, Q8], thresholds=[0.7])
    with running_gateway(policy, {n: s.url for n, s in servers.items()}, log=tmp / "gateway.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with _client(gateway) as c:
        yield c


def _served_by(raw: openai.APIResponse, name: str, server: RunningServer) -> ChatCompletion:
    """The parsed answer, after checking that headers, the ``lalo`` field and the upstream's own model id agree."""
    assert raw.headers["x-lalo-model"] == name
    completion = raw.parse()
    assert isinstance(completion, ChatCompletion)
    assert completion.model_extra is not None and completion.model_extra["lalo"]["model"] == name
    assert completion.model == server.model  # the llama.cpp server's own answer, passed through
    return completion


# ---------------------------------------------------------------- 1. chat


def test_chat_completion_comes_back_naming_the_model(client: openai.OpenAI, servers: dict[str, RunningServer]) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=_user(SIMPLE), max_tokens=16, temperature=0
    )
    completion = _served_by(raw, Q4, servers[Q4])
    lalo = completion.model_extra["lalo"]  # type: ignore[index]
    assert lalo["routed"] is True and lalo["score"] == pytest.approx(0.5) and lalo["fallback_from"] == []
    assert raw.headers["x-lalo-route-score"] == "0.5000"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 16

    # a model asked for by name goes to that model only, unrouted
    named = client.chat.completions.with_raw_response.create(
        model=Q8, messages=_user(SIMPLE), max_tokens=8, temperature=0
    )
    completion = _served_by(named, Q8, servers[Q8])
    assert completion.model_extra["lalo"]["routed"] is False  # type: ignore[index]
    assert "x-lalo-route-score" not in named.headers
    assert completion.choices[0].message.content


# ---------------------------------------------------------------- 2. streaming


def test_streaming_chunks_join_into_the_answer(client: openai.OpenAI, servers: dict[str, RunningServer]) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=_user(SIMPLE), max_tokens=24, temperature=0, stream=True
    )
    assert stream.response.headers["x-lalo-model"] == Q4
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    chunks = list(stream)
    assert len(chunks) > 2
    assert chunks[0].model_extra is not None and chunks[0].model_extra["lalo"]["model"] == Q4  # first event only
    assert all("lalo" not in (c.model_extra or {}) for c in chunks[1:])
    assert {c.model for c in chunks} == {servers[Q4].model}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons in (["stop"], ["length"])
    assert chunks[-1].choices[0].finish_reason == reasons[0]


# ---------------------------------------------------------------- 3. tools


def _comparable(body: dict) -> dict:
    """A chat completion without what differs between two identical requests (ids, time) or what the gateway adds."""
    drop = {"id", "created", "lalo"}
    out = {k: v for k, v in body.items() if k not in drop}
    for choice in out["choices"]:
        for call in choice["message"].get("tool_calls") or []:
            call.pop("id", None)  # llama.cpp derives it from the completion id
    return out


def test_tools_reach_the_model_and_its_tool_call_comes_back(
    client: openai.OpenAI, servers: dict[str, RunningServer]
) -> None:
    # llama-cpp-python's default chat handler calls a tool only when tool_choice names it (a JSON-schema grammar
    # then forces the arguments); with tools alone or tool_choice "auto" SmolLM2's template answers in text.
    request = {"messages": _user("What is the weather in Paris?"), "max_tokens": 48, "temperature": 0,
               "tools": [WEATHER], "tool_choice": FORCE_WEATHER}  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(model="auto", **request)  # type: ignore[arg-type]
    name = raw.headers["x-lalo-model"]
    completion = _served_by(raw, name, servers[name])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function" and calls[0].function.name == "get_weather"
    args = json.loads(calls[0].function.arguments)
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")

    # the same request straight to that llama.cpp server: the gateway passed the answer through unchanged
    direct = httpx.post(
        f"{servers[name].url}/chat/completions", json={"model": servers[name].model, **request}, timeout=60
    )
    assert direct.status_code == 200
    assert _comparable(json.loads(raw.http_response.content)) == _comparable(direct.json())

    # tools without tool_choice: accepted and answered; a tool call, if any, parses
    plain = client.chat.completions.create(
        model="auto", messages=_user("What is the weather in Paris?"), max_tokens=16, temperature=0, tools=[WEATHER]
    )
    assert isinstance(plain, ChatCompletion)
    message = plain.choices[0].message
    if message.tool_calls:
        assert all(isinstance(json.loads(c.function.arguments), dict) for c in message.tool_calls)
    else:
        assert message.content


def test_streamed_tool_call_arrives_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto",
        messages=_user("What is the weather in Paris?"),
        max_tokens=48,
        temperature=0,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice=FORCE_WEATHER,  # type: ignore[arg-type]
        stream=True,
    )
    names, arguments, reasons = set(), "", []
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function and call.function.name:
                names.add(call.function.name)
            if call.function and call.function.arguments:
                arguments += call.function.arguments
        if chunk.choices[0].finish_reason:
            reasons.append(chunk.choices[0].finish_reason)
    assert names == {"get_weather"} and reasons == ["tool_calls"]
    args = json.loads(arguments)
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")


# ---------------------------------------------------------------- 4. auto routing to two models


def test_auto_routes_simple_and_complex_prompts_to_different_models(
    client: openai.OpenAI, servers: dict[str, RunningServer]
) -> None:
    answers = {}
    for prompt, name, score in ((SIMPLE, Q4, "0.5000"), (COMPLEX, Q8, "0.9000")):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=_user(prompt), max_tokens=16, temperature=0
        )
        assert raw.headers["x-lalo-route-score"] == score
        completion = _served_by(raw, name, servers[name])
        assert completion.choices[0].message.content and completion.choices[0].message.content.strip()
        answers[name] = completion.model
    assert answers == {Q4: f"{SMOL}:q4_1", Q8: f"{SMOL}:q8_0"}  # two servers, two different models


# ---------------------------------------------------------------- 5. wrong key


def test_wrong_key_is_an_authentication_error(gateway: str) -> None:
    with _client(gateway, key="not-the-key-0123456789") as wrong, pytest.raises(openai.AuthenticationError) as err:
        wrong.chat.completions.create(model="auto", messages=_user(SIMPLE), max_tokens=4)
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert "wrong API key" in err.value.message


# ---------------------------------------------------------------- 6. backend killed mid-stream


def test_backend_killed_mid_stream_is_an_error_and_the_gateway_keeps_serving(
    catalog: Catalog, servers: dict[str, RunningServer], tmp_path: Path
) -> None:
    policy = write_keyword_policy(tmp_path / "policy.json", [Q4, Q8], thresholds=[0.7])
    with ExitStack() as stack:
        victim = _serve(stack, catalog, "q4_1", tmp_path)  # its own server: the module's ones stay up
        url = stack.enter_context(
            running_gateway(policy, {Q4: victim.url, Q8: servers[Q8].url}, log=tmp_path / "gateway.log")
        )
        client = stack.enter_context(_client(url))
        stream = client.chat.completions.create(
            model="auto",
            messages=_user("Tell me a long story about a dragon who learns to bake bread, with many details."),
            max_tokens=400,
            temperature=0,
            stream=True,
        )
        assert stream.response.headers["x-lalo-model"] == Q4
        chunks = iter(stream)
        seen = []
        while len([c for c in seen if c.choices and c.choices[0].delta.content]) < 3:
            seen.append(next(chunks))
        os.killpg(victim.pid, signal.SIGKILL)  # the server is its own process group (see serving/process.py)
        deadline = time.monotonic() + 10
        while group_pids(victim.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_pids(victim.pid) == []
        killed_at = time.monotonic()
        with pytest.raises(openai.APIError) as err:
            for chunk in chunks:
                seen.append(chunk)
        waited = time.monotonic() - killed_at
        assert not isinstance(err.value, openai.APITimeoutError), "the stream hung instead of failing"
        assert waited < 15, f"the error came {waited:.1f} s after the kill"
        assert "failed mid-stream" in err.value.message or "closed the stream" in err.value.message
        assert not any(c.choices and c.choices[0].finish_reason for c in seen), "the reply finished before the kill"

        # the gateway is still up and answers from the model that is left
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=_user(SIMPLE), max_tokens=8, temperature=0
        )
        completion = _served_by(raw, Q8, servers[Q8])
        assert completion.choices[0].message.content
        health = httpx.get(url.removesuffix("/v1") + "/health", timeout=5).json()
        assert health == {"status": "degraded", "upstreams_up": 1, "upstreams": 2}


# ---------------------------------------------------------------- 7. fallback when a backend is down


def test_request_for_a_dead_backend_falls_back_to_the_live_one(
    servers: dict[str, RunningServer], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    policy = write_keyword_policy(tmp_path / "policy.json", [Q4, Q8], thresholds=[0.7])
    with (
        running_gateway(policy, {Q4: dead, Q8: servers[Q8].url}, log=tmp_path / "gateway.log") as url,
        _client(url) as client,
    ):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=_user(SIMPLE), max_tokens=8, temperature=0
        )
        completion = _served_by(raw, Q8, servers[Q8])  # routed to Q4 (score 0.5), answered by Q8
        assert completion.choices[0].message.content
        assert raw.headers["x-lalo-route-score"] == "0.5000"
        assert raw.headers.get("x-lalo-fallback-from") == Q4
        assert completion.model_extra["lalo"]["fallback_from"] == [Q4]  # type: ignore[index]
