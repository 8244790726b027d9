"""The canvas panel's generation job: nvp_core's sampling on a worker thread, with Qt signals.

A 10× canvas is hundreds of times the work of one sample, so it runs on its own
cancellable thread rather than the shared latest-wins renderer. The work itself
is ``nc.sample_seeded``; this object only turns its ``progress(fraction)`` into
a signal and its cancel flag into the ``cancel()`` nvp_core asks between scales.
"""
from __future__ import annotations

import threading

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal, Slot

import nvp_core as nc


def describe_failure(exc: BaseException, width: int, height: int) -> str:
    """A message a user can act on, for anything a generation job can raise."""
    text = str(exc)
    oom = isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and any(k in text.lower() for k in ("out of memory", "can't allocate", "cannot allocate", "not enough memory"))
    )
    if oom:
        return (f"Out of memory generating a {width}×{height} canvas. "
                "Try a smaller size, fewer images, or the CPU if the GPU is small.")
    if isinstance(exc, nc.NVPError):
        return text
    return f"Generation failed: {type(exc).__name__}: {text}"


class CanvasJob(QObject):
    """Samples ``count`` images of ``width``×``height`` on a worker thread.

    Image ``i`` uses seed ``seed + i``, so the first image of a batch equals the
    single image for that seed, and any image can be regenerated alone. Progress
    is counted in decoded scales (L per image, roughly equal work each: area
    shrinks 4× per level while width doubles); a cancel takes effect at the next one.
    """

    progress = Signal(int, int)          # units done, units total
    finished = Signal(object)            # list of uint8 (H, W, 3) arrays
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, flow: nc.RealNVP, width: int, height: int, temperature: float, seed: int,
                 count: int) -> None:
        super().__init__()
        self.flow = flow
        self.width, self.height = int(width), int(height)
        self.temperature = float(temperature)
        self.seed, self.count = int(seed), int(count)
        self._cancel = threading.Event()
        self.total = self.count * flow.config.scales

    def cancel(self) -> None:
        """Thread-safe: ask the job to stop at its next scale."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def _report(self, fraction: float) -> None:
        self.progress.emit(round(fraction * self.total), self.total)

    @Slot()
    def run(self) -> None:
        try:
            images = nc.sample_seeded(self.flow, range(self.seed, self.seed + self.count), self.height, self.width,
                                      self.temperature, batch_size=1, progress=self._report,
                                      cancel=self._cancel.is_set)
        except nc.Cancelled:
            self.cancelled.emit()
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message; the panel survives
            if self.flow.device.type == "cuda":
                torch.cuda.empty_cache()
            self.failed.emit(describe_failure(exc, self.width, self.height))
            return
        self.finished.emit(list(np.asarray(images)))
