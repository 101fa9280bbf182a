"""A server subprocess lalo-bench owns: started on a free port, health-checked, and stopped with all its children.

Why a process group: vLLM forks an engine process (and more) beside its API
server; signalling only the parent leaves orphans that hold memory and the
port. The server runs in its own session, so ``stop`` can signal the whole
group and then verify that nothing of it is left.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import psutil
import requests

from lalo_bench.errors import BackendError

HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXCEPTION_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Interrupt)\b:?")
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_holder(port: int) -> str | None:
    """Who listens on ``port``, as ``pid N, `cmd` `` when psutil can tell."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:100]
            except psutil.Error:
                cmd = ""
            return f"pid {conn.pid}, `{cmd}`" if cmd else f"pid {conn.pid}"
    return None


def ensure_port_free(port: int, host: str = HOST) -> None:
    """Raise a one-line BackendError if ``host:port`` cannot be bound (another server has it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers (uvicorn) set: a port in TIME_WAIT from a stopped server counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise BackendError(f"cannot bind {host}:{port}: {exc.strerror}; pass another --port") from None
            holder = port_holder(port)
            by = f" (by {holder})" if holder else ""
            raise BackendError(
                f"port {port} on {host} is already in use{by}; stop that server or pass another --port"
            ) from None


def last_meaningful_line(log: Path, max_chars: int = 240) -> str:
    """The line of a server log that best says why it stopped: the last exception line, else the last line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "no log output"
    lines = []
    for raw in text.splitlines():
        line = _ANSI.sub("", raw.split("\r")[-1]).strip()
        if line:
            lines.append(line)
    if not lines:
        return "no log output"
    for line in reversed(lines):
        # a logging prefix ("ERROR 05-01 10:00:00 [x.py:1] ValueError: ...") is kept: it names the component
        bare = line.split("] ", 1)[-1]
        if _EXCEPTION_LINE.match(bare):
            return line[:max_chars]
    return lines[-1][:max_chars]


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


class ServerProcess:
    """One OpenAI-compatible server subprocess (``GET /v1/models`` answers 200 once it is ready).

    Use as a context manager: entering starts it and waits until ready; leaving
    — normally, on an error, or on Ctrl-C while it starts — stops it and its
    children. An ``atexit`` hook stops any server still running at interpreter exit.
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        host: str = HOST,
        ready_timeout_s: float = 120.0,
        stop_grace_s: float = 15.0,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.host = host
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._log: IO[bytes] | None = None
        self._started_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def start(self) -> None:
        """Check the port, then launch the server in its own session with output to the log file."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        ensure_port_free(self.port, self.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._started_at = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._log.close()
            raise BackendError(f"cannot start {self.name} ({self.cmd[0]}): {exc.strerror}") from None
        _LIVE.add(self)

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Poll ``/v1/models`` until it answers 200; return the seconds since start. Raises if the server dies."""
        if self.proc is None:
            raise RuntimeError("server not started")
        timeout_s = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = self._started_at + timeout_s
        session = requests.Session()
        session.trust_env = False  # a proxy from the environment must not sit between us and 127.0.0.1
        url = f"{self.base_url}/models"
        with session:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise BackendError(
                        f"{self.name} exited with code {code} while starting: "
                        f"{last_meaningful_line(self.log_path)} (log: {self.log_path})"
                    )
                with contextlib.suppress(requests.RequestException):
                    if session.get(url, timeout=2).status_code == 200:
                        self.startup_s = time.perf_counter() - self._started_at
                        return self.startup_s
                if time.perf_counter() > deadline:
                    raise BackendError(
                        f"{self.name} was not ready within {timeout_s:.0f} s "
                        f"(last log line: {last_meaningful_line(self.log_path)}); "
                        f"see {self.log_path} or allow a longer start-up timeout"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL what outlives the grace period, and check nothing is left."""
        proc = self.proc
        if proc is None:
            return
        _LIVE.discard(self)
        pgid = proc.pid  # session leader: its pid is the group id
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        _signal_group(pgid, signal.SIGTERM)
        for p in family:  # a child that left the group still gets the signal
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.stop_grace_s)
        _, alive = psutil.wait_procs(family, timeout=max(0.1, deadline - time.monotonic()))
        leftover = _wait_group_gone(pgid, timeout_s=max(0.1, deadline - time.monotonic()))
        if alive or leftover or proc.poll() is None:
            _signal_group(pgid, signal.SIGKILL)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            psutil.wait_procs(alive, timeout=10)
        if self._log is not None:
            self._log.close()
        remaining = _wait_group_gone(pgid, timeout_s=5.0)
        if remaining or proc.poll() is None:
            raise BackendError(
                f"{self.name} left processes running after stop (pids {remaining or [proc.pid]}); "
                f"kill them with `kill -9 -- -{pgid}`"
            )

    def __enter__(self) -> ServerProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if lalo-bench dies without running ``stop`` (SIGKILL, SIGTERM).

    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere the atexit hook is the only net.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _wait_group_gone(pgid: int, timeout_s: float) -> list[int]:
    """Poll until no live process is left in the group (a SIGKILL lands asynchronously); return what remains."""
    deadline = time.monotonic() + timeout_s
    while (left := group_pids(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _stop_all() -> None:
    """Safety net: no server outlives the lalo-bench process that started it."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()
