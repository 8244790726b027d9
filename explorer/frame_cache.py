"""Decoded manifold frames, kept by angle so a drag can show one at once.

A frame is the decoded image of one point (φ, φ′, φ″) of the sphere. Frames
are keyed by their angles quantised to ``quantum`` degrees (0.25° by default),
so the cache can answer two questions cheaply:

* :meth:`FrameCache.exact` — a frame decoded for exactly these angles;
* :meth:`FrameCache.nearest` — the closest frame within a tolerance, which a
  drag shows at once while the exact one is still being decoded.

Every frame keeps its *true* angles (the ones it was decoded for), never the
rounded key: what the window says it shows is what it shows.

Two rules make speculation safe:

* a frame that was asked for (``speculative=False``: the exact frame of a
  position the user reached, a grid cell, a sweep frame) is never replaced
  by a speculative one with the same key;
* every frame carries the cache's *epoch*; :meth:`clear` (new anchors, new
  model) starts a new epoch, and a frame of an older one is dropped on
  arrival — a batch that was in flight when the anchors changed never shows.

Memory is bounded in bytes (least recently used frames go first). GUI thread
only: the render worker hands its frames back through signals.
"""
from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

Angles3 = tuple[float, float, float]
DEFAULT_QUANTUM = 0.25  # degrees
DEFAULT_MAX_BYTES = 64 * 2**20


def wrap(angle: float) -> float:
    """Degrees into [0, 360)."""
    a = math.fmod(float(angle), 360.0)
    return a + 360.0 if a < 0 else (0.0 if a >= 360.0 else a)


def angle_distance(a: Angles3, b: Angles3) -> float:
    """The largest per-angle difference, the short way round the circle (degrees)."""
    out = 0.0
    for x, y in zip(a, b):
        d = abs(wrap(x) - wrap(y))
        out = max(out, min(d, 360.0 - d))
    return out


@dataclass(frozen=True)
class Frame:
    """One decoded point: its true angles (degrees) and its uint8 (H, W, 3) pixels."""

    angles: Angles3
    rgb: np.ndarray
    speculative: bool = False

    @property
    def nbytes(self) -> int:
        return int(self.rgb.nbytes)


class FrameCache:
    """LRU frames by quantised angles, bounded in bytes; see the module docstring."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, quantum: float = DEFAULT_QUANTUM) -> None:
        if quantum <= 0 or max_bytes <= 0:
            raise ValueError("quantum and max_bytes must be positive")
        self.max_bytes = int(max_bytes)
        self.quantum = float(quantum)
        self._turn = round(360.0 / self.quantum)
        self._frames: OrderedDict[tuple[int, int, int], Frame] = OrderedDict()
        self._bytes = 0
        self.epoch = 0
        self.hits = 0
        self.misses = 0

    # ---- keys
    def key(self, angles: Angles3) -> tuple[int, int, int]:
        return tuple(round(wrap(a) / self.quantum) % self._turn for a in angles)  # type: ignore[return-value]

    # ---- state
    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> int:
        """Forget every frame and start a new epoch (returns it): older results will be dropped."""
        self._frames.clear()
        self._bytes = 0
        self.epoch += 1
        return self.epoch

    # ---- writing
    def put(self, frame: Frame, epoch: int | None = None) -> bool:
        """Keep ``frame``; False (and nothing kept) when it is stale or would replace an asked-for frame."""
        if epoch is not None and epoch != self.epoch:
            return False
        if frame.nbytes > self.max_bytes:
            return False
        k = self.key(frame.angles)
        old = self._frames.get(k)
        if old is not None:
            if frame.speculative and not old.speculative:
                self._frames.move_to_end(k)
                return False
            self._bytes -= old.nbytes
        self._frames[k] = frame
        self._frames.move_to_end(k)
        self._bytes += frame.nbytes
        while self._bytes > self.max_bytes and self._frames:
            _, gone = self._frames.popitem(last=False)
            self._bytes -= gone.nbytes
        return True

    # ---- reading
    def exact(self, angles: Angles3, tol: float = 1e-6) -> Frame | None:
        """The frame decoded for exactly these angles (to ``tol`` degrees), if kept."""
        k = self.key(angles)
        f = self._frames.get(k)
        if f is not None and angle_distance(f.angles, angles) <= tol:
            self._frames.move_to_end(k)
            self.hits += 1
            return f
        self.misses += 1
        return None

    def has_key(self, angles: Angles3) -> bool:
        """A frame with the same quantised key (what speculation need not decode again)."""
        return self.key(angles) in self._frames

    def nearest(self, angles: Angles3, tol: float) -> Frame | None:
        """The closest frame within ``tol`` degrees (per angle), or None."""
        r = max(0, math.ceil(tol / self.quantum))
        base = self.key(angles)
        best, best_d = None, math.inf
        for off in itertools.product(range(-r, r + 1), repeat=3):
            f = self._frames.get(tuple((b + o) % self._turn for b, o in zip(base, off)))
            if f is None:
                continue
            d = angle_distance(f.angles, angles)
            if d <= tol and d < best_d:
                best, best_d = f, d
        return best

    def lookup(self, angles_list: list[Angles3]) -> dict[int, np.ndarray]:
        """{index: pixels} of the exact frames already kept for a list of angles (grids, sweeps)."""
        out = {}
        for i, a in enumerate(angles_list):
            f = self.exact(a)
            if f is not None:
                out[i] = f.rgb
        return out


__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_QUANTUM", "Frame", "FrameCache", "angle_distance", "wrap"]
