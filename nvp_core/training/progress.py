"""Running averages of the training loss and the smoothed speed, for progress events
and metrics rows. Losses stay on the device until an event needs a number, so a
GPU is never made to wait once per step."""
from __future__ import annotations

import time

import torch


class ProgressMeter:
    def __init__(self, device: torch.device, interval_s: float) -> None:
        self.interval_s = interval_s
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self._window = torch.zeros((), device=device)  # losses since the last progress event
        self._window_n = 0
        self._rows = torch.zeros((), device=device)    # losses since the last metrics row
        self._rows_n = 0
        self._last_emit = 0.0
        self.rate: float | None = None  # smoothed steps/s
        self.restart_clock()

    def add(self, loss: torch.Tensor) -> None:
        self.nonfinite |= ~torch.isfinite(loss)
        self._window += loss
        self._window_n += 1
        self._rows += loss
        self._rows_n += 1
        self._timed_steps += 1

    def restart_clock(self) -> None:
        """Time speed from now on (after a pause, an evaluation or a checkpoint)."""
        self._t0 = time.perf_counter()
        self._timed_steps = 0

    def due(self, step: int, final: bool) -> bool:
        """An event is due (there are steps to report, and it is the first, the last, or time)."""
        if not self._window_n:
            return False
        return final or step == 1 or time.perf_counter() - self._last_emit >= self.interval_s

    @property
    def rows_pending(self) -> bool:
        return self._rows_n > 0

    def take(self) -> float:
        """Mean loss since the last call; updates :attr:`rate` (one host sync)."""
        now = time.perf_counter()
        mean = float(self._window) / max(1, self._window_n)
        dt = now - self._t0
        if dt > 0 and self._timed_steps:
            inst = self._timed_steps / dt
            self.rate = inst if self.rate is None else 0.7 * self.rate + 0.3 * inst
        self._window.zero_()
        self._window_n = 0
        self._last_emit = now
        self.restart_clock()
        return mean

    def take_row(self) -> float:
        """Mean loss since the last metrics row."""
        mean = float(self._rows) / max(1, self._rows_n)
        self._rows.zero_()
        self._rows_n = 0
        return mean

    @property
    def finite(self) -> bool:
        return not bool(self.nonfinite)
