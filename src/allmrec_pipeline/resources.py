"""What a step costs: the peak memory while it runs, for the cost figures of the trained models."""

from __future__ import annotations

import threading

import psutil
import torch


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.gb``: on CUDA the most memory torch allocated on the
    device inside the block (its peak counter reset at entry); on the CPU the process's largest resident set
    size seen inside the block, sampled every ``interval`` seconds (all of the process: the LLM and the data
    it holds too)."""

    def __init__(self, device: str | torch.device, interval: float = 0.05) -> None:
        self.device, self.interval, self.gb = torch.device(device), interval, float("nan")
        self._peak, self._stop = 0, threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self._peak = max(self._peak, process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-memory")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.gb = torch.cuda.max_memory_allocated(self.device) / 2**30
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, psutil.Process().memory_info().rss)
        self.gb = self._peak / 2**30
