"""The app collects garbage on the GUI thread only (explorer/main_thread_gc.py)."""
from __future__ import annotations

import gc
import threading
import weakref

from explorer.main_thread_gc import MainThreadGC


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collection_runs_on_the_timer_not_in_other_threads(qtbot):
    was = gc.isenabled()
    gc.enable()
    guard = MainThreadGC(interval_ms=20)
    try:
        assert not gc.isenabled()  # no automatic collection, whichever thread allocates
        refs = []

        def make_garbage() -> None:  # a worker allocating past every threshold collects nothing
            for _ in range(20 * guard.threshold[0]):
                c = _Cycle()
                refs.append(weakref.ref(c))

        worker = threading.Thread(target=make_garbage)
        worker.start()
        worker.join()
        assert all(r() is not None for r in refs[:100])
        qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5000)  # the GUI thread's timer did
    finally:
        guard.timer.stop()
        if was:
            gc.enable()
