"""Show the manifold at screen rate: decode along the gesture in batches, ahead of it.

One decoded 32×32 frame costs ~15 ms alone on this CPU, a batch of four ~24 ms:
decoding one frame per slider move wastes most of the worker. So instead of
asking for the frame under the slider, :class:`SpeculativeRenderer`

* shows at once whatever the :class:`~explorer.frame_cache.FrameCache` holds:
  the exact frame of the position, else the nearest one within ``show_tol``
  degrees (never a farther one than what is on screen);
* predicts where the gesture goes (the median step of the last moves, or the
  exact step of ▶ play) and asks the ONE render worker for a *chunk*: the
  exact position first (when missing), then the predicted positions not
  decoded or in flight yet — one batched decode;
* keeps at most one chunk waiting (a newer plan replaces it, latest-wins) and
  drops any chunk decoded for old anchors (the cache's epoch).

The exact frame always wins: it is shown as soon as it is there, and nothing
speculative replaces it while the position stays. Grids and sweeps go through
:meth:`frames`, which takes what the cache has and decodes only the rest.

Qt-side only: the decoding itself is the ``source`` function the panel gives
(``nvp_core.sphere_images`` over a snapshot of the flow and anchors).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from nvp_core.errors import Cancelled

from .frame_cache import Angles3, Frame, FrameCache, angle_distance, wrap
from .render import Job, Renderer

# decode(angles in degrees, progress) -> uint8 (N, H, W, 3); runs on the worker
Source = Callable[[Sequence[Angles3], Callable[[float], None]], np.ndarray]

HISTORY_S = 0.15  # moves further apart than this are not one gesture
AROUND = 12  # degrees either side of a resting position decoded ahead of the next drag


def manifold_source(flow: Any, anchors: Sequence[Any]) -> Source:
    """Decode sphere points (degrees) for a snapshot of the flow and the eight anchors with
    ``nvp_core.sphere_images`` (batched, chunk-size independent), on the render worker."""
    import nvp_core as nc

    def run(angles: Sequence[Angles3], progress: Callable[[float], None]) -> np.ndarray:
        rad = [tuple(math.radians(x) for x in a) for a in angles]
        return nc.sphere_images(flow, anchors, rad, progress=progress)

    return run


def chunk_for(height: int, width: int) -> int:
    """Frames per speculative batch: 4 at 32×32, 2 at 64×64, 1 above (a chunk stays ≲ 40 ms)."""
    return max(1, min(4, 8192 // max(1, height * width)))


def _signed(d: float) -> float:
    d = math.fmod(d, 360.0)
    if d > 180.0:
        d -= 360.0
    elif d < -180.0:
        d += 360.0
    return d


def _add(a: Angles3, step: Angles3, k: float) -> Angles3:
    return tuple(round(wrap(x + k * s), 6) for x, s in zip(a, step))  # type: ignore[return-value]


def _norm(a: Sequence[float]) -> Angles3:
    return tuple(round(wrap(x), 6) for x in a)  # type: ignore[return-value]


class DragMeter:
    """Frames shown per second and move-to-frame latency over the last second (the status read-out)."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self.shown: deque[float] = deque()
        self.latencies: deque[tuple[float, float]] = deque()
        self._asked: tuple[float, Angles3] | None = None

    def asked(self, angles: Angles3) -> None:
        if self._asked is None:
            self._asked = (time.perf_counter(), angles)

    def showed(self, frame: Frame, target: Angles3, tol: float) -> None:
        now = time.perf_counter()
        self.shown.append(now)
        if self._asked is not None and angle_distance(frame.angles, target) <= tol:
            self.latencies.append((now, (now - self._asked[0]) * 1000.0))
            self._asked = None
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.shown and now - self.shown[0] > self.window_s:
            self.shown.popleft()
        while self.latencies and now - self.latencies[0][0] > self.window_s:
            self.latencies.popleft()

    def active(self) -> bool:
        self._trim(time.perf_counter())
        return len(self.shown) > 1

    def text(self) -> str:
        self._trim(time.perf_counter())
        if len(self.shown) < 2:
            return ""
        fps = (len(self.shown) - 1) / max(1e-3, self.shown[-1] - self.shown[0])
        lat = sorted(v for _, v in self.latencies)
        tail = f" · move→frame {lat[len(lat) // 2]:.0f} ms (p95 {lat[min(len(lat) - 1, int(0.95 * len(lat)))]:.0f})" \
            if lat else ""
        return f"{fps:.0f} frames/s{tail}"


class SpeculativeRenderer(QObject):
    """See the module docstring. Emits ``shown(Frame)`` whenever the view should change."""

    shown = Signal(object)
    failed = Signal(str)

    def __init__(self, renderer: Renderer, cache: FrameCache | None = None, key: str = "manifold",
                 show_tol: float = 1.0, ahead: int = 12, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.renderer = renderer
        self.cache = cache or FrameCache()
        self.key = key
        self.show_tol = show_tol
        self.ahead = ahead
        self.chunk = 4
        self.meter = DragMeter()
        self._source: Source | None = None
        self._target: Angles3 | None = None
        self._step: Angles3 | None = None
        self._known_step = False  # ▶ play: the path is known, so decode it in bigger batches
        self._axis = 0  # the angle the last gesture moved most (where to decode around a rest)
        self._shown_frame: Frame | None = None
        self._history: deque[tuple[float, Angles3]] = deque(maxlen=5)
        self._move_dt = 1 / 60  # seconds between moves of the gesture (running mean)
        self._chunk_s = 0.05  # seconds from asking for a chunk to having it (running mean)
        self._last_chunk_s = 0.05
        self._settle = QTimer(self)  # the gesture paused: decode the exact frame
        self._settle.setSingleShot(True)
        self._settle.timeout.connect(self.settle)
        self._inflight: dict[int, dict[str, Any]] = {}  # stamp -> {"keys", "exact", "started"}
        self._waiting: int | None = None  # stamp of the chunk submitted but maybe not started
        self.submitted = 0  # chunks asked for (tests, read-out)
        self.dropped_stale = 0
        self.preempted = 0  # speculative batches stopped for an exact frame

    # ---------------------------------------------------------------- setup
    def set_source(self, source: Source | None, size: tuple[int, int] | None = None) -> None:
        """New anchors or model: forget every frame (new epoch) and what is in flight."""
        self.renderer.cancel(self.key)
        self._inflight.clear()
        self._waiting = None
        self.cache.clear()
        self._source = source
        self._shown_frame = None
        if size is not None:
            self.chunk = chunk_for(*size)

    @property
    def has_source(self) -> bool:
        return self._source is not None

    @property
    def target_angles(self) -> Angles3 | None:
        return self._target

    @property
    def shown_frame(self) -> Frame | None:
        return self._shown_frame

    def done(self) -> bool:
        """True once the exact frame of the current position is what is shown."""
        if self._source is None or self._target is None:
            return True
        f = self._shown_frame
        return f is not None and angle_distance(f.angles, self._target) <= 1e-6

    def in_gesture(self) -> bool:
        """A drag or ▶ is moving the position (the step is known or estimated)."""
        return self._step is not None

    def busy(self) -> bool:
        return bool(self._inflight)

    # ---------------------------------------------------------------- the gesture
    def target(self, angles: Sequence[float], step: Sequence[float] | None = None) -> None:
        """The position moved (a drag, a key, ▶): show the best frame there is, plan the next batch.

        ``step`` is the known step per move (▶ play); otherwise it is estimated from the last moves,
        and while they keep coming the batch covers where the gesture will be when it is decoded
        (the exact frame follows when the gesture pauses or ends: :meth:`settle`).
        """
        a = _norm(angles)
        now = time.perf_counter()
        self._known_step = step is not None
        if step is None:
            self._step = self._estimate(now, a)
            if self._step is not None:
                self._axis = max(range(3), key=lambda i: abs(self._step[i]))  # type: ignore[index]
        else:
            self._history.clear()
            st = tuple(round(_signed(s), 6) for s in step)
            self._step = st if any(abs(s) > 1e-9 for s in st) else None  # type: ignore[assignment]
        self._target = a
        if self._source is None:
            return
        if self._step is not None and not self._known_step:
            self._settle.start(max(30, int(2500 * self._move_dt)))
        self.meter.asked(a)
        f = self.cache.exact(a)
        if f is None:
            near = self.cache.nearest(a, self.show_tol)
            cur = self._shown_frame
            if near is not None and (cur is None or angle_distance(near.angles, a) < angle_distance(cur.angles, a)):
                f = near
        if f is not None and f is not self._shown_frame:
            self._display(f)
        self._plan()

    def settle(self) -> None:
        """The gesture ended or paused (slider released): stop predicting, decode the exact frame first."""
        self._settle.stop()
        self._history.clear()
        if not self._known_step:
            self._step = None
        self._plan()

    def prefetch(self, step: Sequence[float]) -> None:
        """Decode ahead along ``step`` from the current position without moving it (▶ waiting)."""
        self._step = tuple(round(_signed(s), 6) for s in step)  # type: ignore[assignment]
        self._known_step = True
        self._plan()

    def exact_cached(self, angles: Sequence[float]) -> bool:
        return self.cache.exact(_norm(angles)) is not None

    def _estimate(self, now: float, a: Angles3) -> Angles3 | None:
        if self._history and now - self._history[-1][0] > HISTORY_S:
            self._history.clear()
        self._history.append((now, a))
        if len(self._history) < 2:
            return None
        times = [t for t, _ in self._history]
        self._move_dt = 0.7 * self._move_dt + 0.3 * min(HISTORY_S, times[-1] - times[-2])
        pts = [p for _, p in self._history]
        deltas = [[_signed(y - x) for x, y in zip(p, q)] for p, q in zip(pts, pts[1:])][-3:]
        step = tuple(float(np.median([d[i] for d in deltas])) for i in range(3))
        return step if any(abs(s) > 1e-9 for s in step) else None  # type: ignore[return-value]

    def _display(self, f: Frame) -> None:
        self._shown_frame = f
        if self._target is not None:
            self.meter.showed(f, self._target, self.show_tol)
        self.shown.emit(f)

    # ---------------------------------------------------------------- planning
    def _busy_keys(self) -> tuple[set, set]:
        keys, exact = set(), set()
        for info in self._inflight.values():
            keys |= info["keys"]
            exact |= info["exact"]
        return keys, exact

    def _plan(self) -> None:
        if self._source is None or self._target is None:
            return
        # a chunk that waits and has not started yet is replaced by this newer plan
        if self._waiting is not None:
            info = self._inflight.get(self._waiting)
            if info is not None and not info["started"]:
                del self._inflight[self._waiting]
            self._waiting = None
        step = self._step
        if step is not None and not self._known_step and self._history and \
                time.perf_counter() - self._history[-1][0] > max(0.05, 3 * self._move_dt):
            step = None  # the gesture has paused: no guessing now, the exact frame next
        keys, exact = self._busy_keys()
        chunk = self.chunk * (4 if self._known_step else 1)
        dragging = step is not None and not self._known_step
        todo: list[Angles3] = []
        t = self._target
        want_exact = self.cache.exact(t) is None and t not in exact
        if want_exact and dragging:
            # mid-drag the exact frame of where the slider *was* arrives too late to matter; ask for it
            # only when speculation has nothing near to show and the worker is free
            cur = self._shown_frame
            lagging = cur is None or angle_distance(cur.angles, t) > self.show_tol
            want_exact = lagging and not self._inflight
        if want_exact:
            todo.append(t)
        covered = 0  # positions just ahead already decoded or in flight
        if step is not None:
            # a drag: start where the gesture will be once this chunk is decoded
            # (a chunk landing behind the slider is wasted, one landing ahead is shown when it gets there:
            # so lead by half as much again as the slower of the mean and the last chunk took)
            lead = 1.5 * max(self._chunk_s, self._last_chunk_s)
            move_dt = max(self._move_dt, 1e-3)
            first = min(2 * self.ahead, max(1, math.ceil(lead / move_dt))) if dragging else 1
            # when frames take longer than moves (a loaded CPU, 64×64), decode every n-th position ahead:
            # the screen then changes as often as the worker can keep up, never freezes waiting for all
            stride = max(1, min(8, round(self._chunk_s / chunk / move_dt))) if dragging else 1
            for k in range(first, first + stride * max(self.ahead, 2 * chunk), stride):
                p = _add(t, step, k)
                kk = self.cache.key(p)
                if self._known_step:  # ▶ shows only exact frames: a neighbour in the same bin is no use
                    done = p in exact or self.cache.exact(p) is not None or p in todo
                else:
                    done = kk in keys or self.cache.has_key(p) or any(self.cache.key(q) == kk for q in todo)
                if done:
                    covered += len(todo) == (1 if want_exact else 0)
                    continue
                todo.append(p)
                if len(todo) >= chunk:
                    break
        if not todo and step is None and not self._inflight and self.done():
            todo = self._around(t, keys)  # at rest: the first moves of the next drag
        if not todo:
            return
        if not want_exact and len(todo) < chunk and (self._inflight or covered >= chunk):
            return  # a partial chunk waits: batches are what make this fast
        self._submit(todo[:chunk], asked=t if want_exact else None)

    def _around(self, t: Angles3, busy: set) -> list[Angles3]:
        """Positions 1°…``AROUND``° either side of ``t`` along the angle moved last, not decoded yet.

        Decoded while the user rests, a chunk at a time (any move replaces the waiting chunk), so the
        first moves of the next drag — before its speed is known — find a frame at once.
        """
        unit = [0.0, 0.0, 0.0]
        unit[self._axis] = 1.0
        out = []
        for k in range(1, AROUND + 1):
            for sign in (1, -1):
                p = _add(t, tuple(unit), sign * k)  # type: ignore[arg-type]
                if self.cache.key(p) not in busy and not self.cache.has_key(p):
                    out.append(p)
                    if len(out) >= self.chunk:
                        return out
        return out

    def _submit(self, angles: list[Angles3], asked: Angles3 | None) -> None:
        source, epoch = self._source, self.cache.epoch
        abort = threading.Event()
        info = {"keys": {self.cache.key(a) for a in angles}, "exact": set(angles), "started": False,
                "asked_at": time.perf_counter(), "path": self._known_step, "abort": abort}
        if asked is not None:
            self._preempt()

        def stop_if_preempted(fraction: float) -> None:
            if abort.is_set():
                raise Cancelled("a speculative batch gave way to the exact frame")

        def run(job: Job) -> tuple[int, list[Angles3], np.ndarray]:
            info["started"] = True
            return epoch, angles, source(angles, stop_if_preempted)

        stamp = self.renderer.submit(
            self.key, run, on_result=lambda r: self._arrived(stamp, asked, r),
            on_error=lambda m: self._error(stamp, m), priority=1 if asked is not None else 0)
        self._inflight[stamp] = info
        self._waiting = stamp
        self.submitted += 1

    def _preempt(self) -> None:
        """The exact frame is asked for (release, pause): a running guess stops at its next scale.

        Its frames would land beside the slider's final position, after the user stopped looking
        for them; waiting for them delayed the exact frame by up to a whole batch (~100 ms under load).
        """
        for stamp, info in list(self._inflight.items()):
            if info["started"] and not info["path"] and not info["abort"].is_set():
                info["abort"].set()
                del self._inflight[stamp]
                self.preempted += 1
                if self._waiting == stamp:
                    self._waiting = None

    def _error(self, stamp: int, message: str) -> None:
        self._inflight.pop(stamp, None)
        self.failed.emit(message)

    def _arrived(self, stamp: int, asked: Angles3 | None, result: tuple[int, list[Angles3], np.ndarray]) -> None:
        info = self._inflight.pop(stamp, None)
        if info is not None:
            self._last_chunk_s = min(1.0, time.perf_counter() - info["asked_at"])
            self._chunk_s = 0.7 * self._chunk_s + 0.3 * self._last_chunk_s
        if self._waiting == stamp:
            self._waiting = None
        epoch, angles, frames = result
        if epoch != self.cache.epoch:
            self.dropped_stale += 1
            return
        path = info is not None and info["path"]  # ▶'s frames were asked for, like the exact one
        for a, rgb in zip(angles, frames):
            self.cache.put(Frame(a, rgb, speculative=a != asked and not path), epoch)
        self._refresh()
        self._plan()

    def _refresh(self) -> None:
        t = self._target
        if t is None:
            return
        cur = self._shown_frame
        if cur is not None and angle_distance(cur.angles, t) <= 1e-6:
            return  # the exact frame is on screen: nothing speculative replaces it
        f = self.cache.exact(t) or self.cache.nearest(t, self.show_tol)
        if f is not None and (cur is None or angle_distance(f.angles, t) < angle_distance(cur.angles, t)):
            self._display(f)

    # ---------------------------------------------------------------- grids and sweeps
    def frames(self, angles: Sequence[Sequence[float]], key: str,
               on_result: Callable[[np.ndarray], None], on_error: Callable[[str], None] | None = None,
               on_progress: Callable[[float, str], None] | None = None,
               then: Callable[[Job, np.ndarray], Any] | None = None) -> int:
        """Frames for many angles (grid, sweep): cached ones reused, the rest decoded in one task.

        The decoded ones go into the cache; ``then(job, frames)`` (optional) runs on the worker
        after decoding (writing a sweep), and its result — or the frames — reaches ``on_result``.
        """
        if self._source is None:
            raise RuntimeError("nothing to decode: no model or anchors")
        wanted = [_norm(a) for a in angles]
        have = self.cache.lookup(wanted)
        missing = [a for i, a in enumerate(wanted) if i not in have]
        source, epoch = self._source, self.cache.epoch

        def run(job: Job) -> tuple[np.ndarray, np.ndarray, Any]:
            new = source(missing, lambda f: job.report(0.9 * f, "decoding")) if missing else None
            it = iter(new) if new is not None else iter(())
            out = np.stack([have[i] if i in have else next(it) for i in range(len(wanted))])
            return out, new, (then(job, out) if then is not None else out)

        def done(r: tuple[np.ndarray, np.ndarray | None, Any]) -> None:
            out, new, value = r
            if new is not None and epoch == self.cache.epoch:
                for a, rgb in zip(missing, new):
                    self.cache.put(Frame(a, rgb), epoch)
            on_result(value)

        return self.renderer.submit(key, run, on_result=done, on_error=on_error, on_progress=on_progress)


__all__ = ["DragMeter", "SpeculativeRenderer", "chunk_for", "manifold_source"]
