"""A horizontal colour bar: which colour means which value, for maps drawn with a shared scale."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def tick_values(lo: float, hi: float) -> list[float]:
    """lo, hi and 0 between them (a diverging map's centre), else the middle."""
    if lo < 0.0 < hi:
        return [lo, 0.0, hi]
    return [lo, (lo + hi) / 2.0, hi]


class ColorBar(QWidget):
    """Gradient of a pyqtgraph colour map from ``lo`` to ``hi`` with labelled ends (and 0)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lo, self._hi = -1.0, 1.0
        self._cmap = "CET-D1"
        self._label = ""
        self._image: QImage | None = None
        self.setMinimumHeight(38)
        self.setMaximumHeight(38)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_scale(self, lo: float, hi: float, cmap: str, label: str = "") -> None:
        if cmap != self._cmap or self._image is None:
            lut = pg.colormap.get(cmap).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
            self._lut = np.ascontiguousarray(lut[None, :, :3])
            self._image = QImage(self._lut.data, 256, 1, 3 * 256, QImage.Format.Format_RGB888).copy()
        self._lo, self._hi, self._cmap, self._label = float(lo), float(hi), cmap, label
        self.setToolTip(f"{label}: {lo:+.4g} … {hi:+.4g}" if label else f"{lo:+.4g} … {hi:+.4g}")
        self.update()

    def scale(self) -> tuple[float, float]:
        return self._lo, self._hi

    def label(self) -> str:
        return self._label

    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802 - Qt API
        if self._image is None:
            return
        p = QPainter(self)
        fm = p.fontMetrics()
        margin = 40
        bar = QRectF(margin, 3, max(10.0, self.width() - 2 * margin), 12)
        p.drawImage(bar, self._image)
        p.setPen(QPen(QColor(120, 124, 132), 1))
        p.drawRect(bar)
        p.setPen(QColor(200, 200, 200))
        span = self._hi - self._lo or 1.0
        for v in tick_values(self._lo, self._hi):
            x = bar.left() + bar.width() * (v - self._lo) / span
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            text = f"{v:+.2f}" if v else "0"
            w = fm.horizontalAdvance(text)
            p.drawText(int(x - w / 2), int(bar.bottom()) + 4 + fm.ascent(), text)
        p.end()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, 38)


__all__ = ["ColorBar", "tick_values"]
