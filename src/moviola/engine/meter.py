"""Honest stage boundaries: the device's queued work waited for, and each stage's peak memory.

A GPU runs what Python queued asynchronously, so a clock read at a stage boundary without a
synchronisation charges one stage with the tail of the one before (about a denoising step).
Each lap waits for the device, then reads and resets its peak memory: the most allocated on the
GPU during the stage, or on a CPU this process's resident high-water mark.
"""

from __future__ import annotations

import re
from pathlib import Path

_HWM = re.compile(r"^VmHWM:\s+(\d+) kB", re.M)


class DeviceMeter:
    """Laps of one device's work; `lap()` returns the peak bytes since the last one."""

    def __init__(self, device: str):
        self.device = device
        self._cuda = device.startswith("cuda")
        self.lap()  # the first stage's peak starts now, not at the process's start

    def lap(self) -> int | None:
        if self._cuda:
            import torch

            device = torch.device(self.device)
            torch.cuda.synchronize(device)
            peak = int(torch.cuda.max_memory_allocated(device))
            torch.cuda.reset_peak_memory_stats(device)
            return peak
        return _cpu_peak()


def _cpu_peak() -> int | None:
    """This process's resident high-water mark, reset for the next lap (Linux)."""
    try:
        found = _HWM.search(Path("/proc/self/status").read_text())
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the high-water mark
    except OSError:
        return None
    return int(found[1]) * 1024 if found else None
