"""Peak memory of a process while a cell runs: RSS from the OS, VRAM through NVML when a GPU exists.

A background thread samples every ``interval_s``; the OS high-water mark
(``VmHWM``) is read as well, so a spike shorter than the interval still counts.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from types import TracebackType

import psutil
from pydantic import BaseModel


class MemoryPeak(BaseModel):
    peak_rss_mb: float
    baseline_rss_mb: float
    peak_vram_mb: float | None = None


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_hwm(pid: int) -> None:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class _Nvml:
    """Used VRAM on all visible GPUs, or nothing when there is no NVML/GPU."""

    def __init__(self) -> None:
        self.handles: list[object] = []
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self.handles = []

    def used_mb(self) -> float | None:
        if not self.handles:
            return None
        return sum(self._nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles) / 2**20


class MemorySampler:
    """Context manager: ``with MemorySampler() as m: ...; m.result``."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.05) -> None:
        self.pid = pid or os.getpid()
        self.interval_s = interval_s
        self._proc = psutil.Process(self.pid)
        self._stop = threading.Event()
        self._peak_rss = 0.0
        self._peak_vram: float | None = None
        self._nvml = _Nvml()
        self.result: MemoryPeak | None = None

    def _sample(self) -> None:
        rss = self._proc.memory_info().rss / 2**20
        self._peak_rss = max(self._peak_rss, rss)
        vram = self._nvml.used_mb()
        if vram is not None:
            self._peak_vram = max(self._peak_vram or 0.0, vram)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> MemorySampler:
        _reset_hwm(self.pid)
        self._baseline = self._proc.memory_info().rss / 2**20
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lalo-memory-sampler")
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        hwm = _vm_hwm_mb(self.pid)
        peak = max(self._peak_rss, hwm or 0.0)
        self.result = MemoryPeak(peak_rss_mb=peak, baseline_rss_mb=self._baseline, peak_vram_mb=self._peak_vram)
