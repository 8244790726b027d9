"""One render worker, latest-wins.

Every heavy computation of the explorer (decode a manifold point, a grid, a
canvas, encode dropped images, open a model) is a *task*: a function of one
argument, ``job``, run on a single worker QThread. Requests carry a key
(``"manifold"``, ``"infoloss"``…) and a stamp (a global counter):

* a newer request for a key replaces the pending one of that key, so dragging a
  slider never queues a backlog — at most one request per key waits;
* a result older than the last one delivered for its key is dropped, and
  :meth:`Renderer.cancel` drops everything in flight for a key (e.g. when the
  model changes under it);
* results come back on the GUI thread through signals, with their stamp.

A task may call ``job.report(fraction, text)`` to report progress; it raises
:class:`nvp_core.Cancelled` once the request has been superseded or cancelled, so a long
task (a 10× canvas, a sweep) stops at its next report.

Usage::

    renderer.submit("manifold", session.manifold_task(), on_result=view.set_image)
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

import nvp_core as nc
from nvp_core.errors import Cancelled  # the one cancellation signal: job.report and nvp_core.pipeline raise it

from .session import StaleLatents


@dataclass
class Job:
    """One request: what the task sees as its ``job`` argument."""

    key: str
    stamp: int
    fn: Callable[["Job"], Any]
    replace: bool = True
    priority: int = 0  # higher runs first; equal priorities run oldest first
    on_result: Callable[[Any], None] | None = None
    on_error: Callable[[str], None] | None = None
    on_progress: Callable[[float, str], None] | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _emit_progress: Callable[["Job", float, str], None] | None = None
    _last_report: float = 0.0

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(self.key)

    def report(self, fraction: float, text: str = "") -> None:
        """Progress in [0, 1]; throttled to ~20 signals/s. Raises Cancelled when superseded."""
        self.check()
        now = time.monotonic()
        if self._emit_progress is not None and (now - self._last_report > 0.05 or fraction >= 1.0):
            self._last_report = now
            self._emit_progress(self, float(fraction), text)

    def __call__(self, fraction: float) -> None:
        """So ``job`` itself is the ``progress`` callable the session's functions take."""
        self.report(fraction)


def describe_error(exc: BaseException) -> str:
    """A message for the window: ours verbatim, memory errors named, anything else with its type."""
    if isinstance(exc, nc.NVPError):
        return str(exc)
    oom = getattr(torch, "OutOfMemoryError", MemoryError)
    if isinstance(exc, (MemoryError, oom)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        return "out of memory: try a smaller size or fewer images"
    if isinstance(exc, OSError):
        if getattr(exc, "errno", None) == 28:
            return f"disk full: {exc.filename or ''} was not written".strip()
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{exc.__class__.__name__}: {exc}"


class _Worker(QThread):
    """Runs one job at a time; pending jobs wait in a dict keyed by request key."""

    finished_job = Signal(object, str, object)  # job, "ok" | "error" | "cancelled", result | message
    progressed = Signal(object, float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("nvp-render-worker")
        self._cond = threading.Condition()
        self._pending: dict[str, Job] = {}
        self._running: Job | None = None
        self._stopping = False

    # called from the GUI thread
    def put(self, job: Job) -> list[Job]:
        """Queue ``job``; returns the jobs it replaced (never run)."""
        dropped = []
        with self._cond:
            if job.replace:
                old = self._pending.pop(job.key, None)
                if old is not None:
                    dropped.append(old)
                if self._running is not None and self._running.key == job.key:
                    # A frame that never reports just finishes (its result is still newer than
                    # what is shown); a long task stops at its next report.
                    self._running._cancel.set()
            self._pending[job.key if job.replace else f"{job.key}#{job.stamp}"] = job
            self._cond.notify()
        return dropped

    def drop(self, key: str) -> int:
        """Forget pending jobs of ``key`` (returns how many) and cancel a running one."""
        with self._cond:
            gone = [k for k, j in self._pending.items() if j.key == key]
            for k in gone:
                del self._pending[k]
            if self._running is not None and self._running.key == key:
                self._running._cancel.set()
        return len(gone)

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + (1 if self._running is not None else 0)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._pending.clear()
            if self._running is not None:
                self._running._cancel.set()
            self._cond.notify_all()

    # the worker thread
    def run(self) -> None:  # noqa: D401 - QThread entry point
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                # highest priority, then oldest request first: keys never starve each other
                k = min(self._pending, key=lambda k: (-self._pending[k].priority, self._pending[k].stamp))
                job = self._pending.pop(k)
                self._running = job
            job._emit_progress = self._emit_progress
            try:
                result, status = job.fn(job), "ok"
            except (Cancelled, StaleLatents):  # superseded, or latents of a replaced model
                result, status = None, "cancelled"
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a message in the window
                if not isinstance(exc, (nc.NVPError, MemoryError, OSError)):
                    traceback.print_exc(file=sys.stderr)
                result, status = describe_error(exc), "error"
            with self._cond:
                self._running = None
            self.finished_job.emit(job, status, result)

    def _emit_progress(self, job: Job, fraction: float, text: str) -> None:
        self.progressed.emit(job, fraction, text)


class Renderer(QObject):
    """The explorer's one render worker and its bookkeeping, on the GUI thread.

    Signals (all on the GUI thread):
      ``result(key, stamp, value)`` — a fresh result (usually a uint8 image);
      ``failed(key, stamp, message)`` — the task raised; message is for the user;
      ``progress(key, stamp, fraction, text)``;
      ``busy_changed(bool)`` — work started / everything finished (screenshots wait for False).
    """

    result = Signal(str, int, object)
    failed = Signal(str, int, str)
    progress = Signal(str, int, float, str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stamps = itertools.count(1)
        self._last_stamp = 0
        self._delivered: dict[str, int] = {}  # newest stamp delivered per key (latest-wins keys)
        self._barrier: dict[str, int] = {}  # results up to this stamp were cancelled
        self._outstanding = 0
        self._worker = _Worker()
        self._worker.finished_job.connect(self._on_finished)
        self._worker.progressed.connect(self._on_progress)
        self._closed = False
        self._worker.start()
        app = QCoreApplication.instance()
        if app is not None:  # safety net: a QThread must never outlive the application running
            app.aboutToQuit.connect(self.shutdown)

    # ---- API
    def submit(
        self,
        key: str,
        fn: Callable[[Job], Any],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        replace: bool = True,
        priority: int = 0,
    ) -> int:
        """Queue ``fn(job)`` under ``key``; returns the request's stamp.

        ``replace=False`` keeps every request of the key (used for encoding dropped
        files: each drop must be processed, not just the last). A higher ``priority``
        runs before older pending work (the exact frame of a drag before speculation).
        """
        if self._closed:
            return -1
        stamp = self._last_stamp = next(self._stamps)
        job = Job(key=key, stamp=stamp, fn=fn, replace=replace, on_result=on_result,
                  on_error=on_error, on_progress=on_progress, priority=priority)
        before = self._outstanding
        dropped = self._worker.put(job)
        self._outstanding += 1 - len(dropped)
        if before == 0 and self._outstanding > 0:
            self.busy_changed.emit(True)
        return stamp

    def cancel(self, key: str) -> None:
        """Drop pending work for ``key`` and ignore any result of it still in flight."""
        dropped = self._worker.drop(key)
        self._outstanding = max(0, self._outstanding - dropped)
        self._barrier[key] = self._last_stamp
        if self._outstanding == 0:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return self._outstanding > 0

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the worker and wait for it (a running task stops at its next report)."""
        if self._closed:
            return
        self._closed = True
        self._worker.stop()
        self._worker.quit()
        if not self._worker.wait(timeout_ms):
            print("render worker did not stop in time", file=sys.stderr)
        self._outstanding = 0

    # ---- worker callbacks (GUI thread, queued)
    def _fresh(self, job: Job) -> bool:
        if job.stamp <= self._barrier.get(job.key, 0):
            return False
        return not job.replace or job.stamp > self._delivered.get(job.key, 0)

    @Slot(object, str, object)
    def _on_finished(self, job: Job, status: str, value: Any) -> None:
        if self._closed:
            return
        self._outstanding = max(0, self._outstanding - 1)
        try:
            if status == "cancelled" or not self._fresh(job):
                return
            if job.replace:
                self._delivered[job.key] = job.stamp
            if status == "ok":
                self.result.emit(job.key, job.stamp, value)
                if job.on_result is not None:
                    try:
                        job.on_result(value)
                    except Exception as exc:  # noqa: BLE001 - a display bug must not kill the loop
                        traceback.print_exc(file=sys.stderr)
                        self.failed.emit(job.key, job.stamp, f"could not show the result: {describe_error(exc)}")
            else:
                self.failed.emit(job.key, job.stamp, str(value))
                if job.on_error is not None:
                    job.on_error(str(value))
        finally:
            if self._outstanding == 0:
                self.busy_changed.emit(False)

    @Slot(object, float, str)
    def _on_progress(self, job: Job, fraction: float, text: str) -> None:
        if self._closed or not self._fresh(job) or job.cancelled:
            return
        self.progress.emit(job.key, job.stamp, fraction, text)
        if job.on_progress is not None:
            job.on_progress(fraction, text)
