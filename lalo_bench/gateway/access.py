"""The request log: one line per request (endpoint, model, status, time), never its text, written in batches.

A logging call per request cost about a tenth of the gateway's CPU under load; lines are kept in memory and
written every quarter second (and at shutdown) in one write instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lines: list[tuple[float, str, str, int, float]] = []
        self._second = -1
        self._stamp = ""

    def add(self, endpoint: str, served: str, status: int, elapsed_ms: float) -> None:
        self.lines.append((time.time(), endpoint, served, status, elapsed_ms))

    def flush(self) -> None:
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        out = []
        for when, endpoint, served, status, ms in lines:
            second = int(when)
            if second != self._second:
                self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            out.append(f"{self._stamp},{int(when % 1 * 1000):03d} INFO {endpoint} {served} {status} {ms:.1f} ms\n")
        self.stream.write("".join(out))
        self.stream.flush()
