"""Python's cyclic garbage collector, run on the GUI thread only.

Automatic collection runs in whichever thread happens to allocate when a
threshold is crossed — often the render worker while it builds a model. If the
garbage then holds Qt objects (a closed dialog, an old window's menus), their
C++ destructors run on that worker: ~QObject takes Qt's connection lock and
asks for the GIL, while the GUI thread, holding the GIL, waits in its own
~QObject for the same lock — a deadlock (seen in the test suite under load:
both threads idle forever). So automatic collection is switched off and a timer
on the GUI thread collects by the same generation thresholds instead.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGC(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(interval_ms)

    def collect(self) -> None:
        """Collect the generations whose counts passed their thresholds, youngest first."""
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.threshold[generation]:
                break
            gc.collect(generation)
