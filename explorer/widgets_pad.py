"""A 2-D pad for two angles: drag a point over a square instead of two sliders.

The Manifold tab uses it for (φ, φ′): φ′ runs left → right and φ top → bottom,
as in the 8×8 grid, over the whole circle (0°…360°). The quadrant the grid
covers (0°…90° each) is tinted and its corners are labelled with the anchors
that sit there (z1, z3, z5, z7 at φ″ = 0). Keys when focused: arrows step 1°
(Shift: 10°), Page Up/Down step φ by 15°.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

CORNERS = (((0.0, 0.0), "z1"), ((0.0, 90.0), "z3"), ((90.0, 0.0), "z5"), ((90.0, 90.0), "z7"))


class AnglePad(QWidget):
    """Point (x, y) = (φ′, φ) in degrees on [0, 360)²; emits ``moved(phi, phi1)`` while dragged."""

    moved = Signal(float, float)  # phi (vertical), phi1 (horizontal), degrees
    pressed = Signal()
    released = Signal()

    SPAN = 360.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._phi = 0.0
        self._phi1 = 0.0
        self._dragging = False
        self._background: QPixmap | None = None  # the static square, redrawn only on resize
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("φ, φ′ pad")
        self.setToolTip("Drag to move φ (down) and φ′ (right) together; the tinted square is the 8×8 grid's "
                        "0°…90° range. Arrows step 1° (Shift 10°).")

    # ---- value
    def value(self) -> tuple[float, float]:
        return self._phi, self._phi1

    def set_value(self, phi: float, phi1: float) -> None:
        """Move the point without emitting (the panel's angles changed elsewhere)."""
        phi, phi1 = phi % self.SPAN, phi1 % self.SPAN
        if (phi, phi1) != (self._phi, self._phi1):
            self._phi, self._phi1 = phi, phi1
            self.update()

    def is_dragging(self) -> bool:
        return self._dragging

    # ---- geometry
    MARGIN = 7  # the point (radius 5.5) stays inside the widget at 0° and 360°

    def square(self) -> QRectF:
        side = min(self.width(), self.height()) - 2 * self.MARGIN
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_pos(self, phi: float, phi1: float) -> QPointF:
        r = self.square()
        return QPointF(r.left() + r.width() * (phi1 % self.SPAN) / self.SPAN,
                       r.top() + r.height() * (phi % self.SPAN) / self.SPAN)

    def from_pos(self, pos: QPointF) -> tuple[float, float]:
        r = self.square()
        fx = min(max((pos.x() - r.left()) / max(r.width(), 1.0), 0.0), 1.0)
        fy = min(max((pos.y() - r.top()) / max(r.height(), 1.0), 0.0), 1.0)
        # 0.1° like the sliders; the right/bottom edge is 360° ≡ 0°
        return round(fy * self.SPAN, 1) % self.SPAN, round(fx * self.SPAN, 1) % self.SPAN

    # ---- input
    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if ev.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(ev)
        self._dragging = True
        self.pressed.emit()
        self._move_to(ev.position())

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._dragging:
            self._move_to(ev.position())

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._dragging and ev.button() == Qt.MouseButton.LeftButton:
            self._move_to(ev.position())
            self._dragging = False
            self.released.emit()

    def keyPressEvent(self, ev: QKeyEvent) -> None:  # noqa: N802 - Qt API
        step = 10.0 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1.0
        d = {Qt.Key.Key_Left: (0.0, -step), Qt.Key.Key_Right: (0.0, step), Qt.Key.Key_Up: (-step, 0.0),
             Qt.Key.Key_Down: (step, 0.0), Qt.Key.Key_PageUp: (15.0, 0.0), Qt.Key.Key_PageDown: (-15.0, 0.0)}
        if ev.key() not in d:
            return super().keyPressEvent(ev)
        dphi, dphi1 = d[ev.key()]
        self._emit((self._phi + dphi) % self.SPAN, (self._phi1 + dphi1) % self.SPAN)

    def _move_to(self, pos: QPointF) -> None:
        self._emit(*self.from_pos(pos))

    def _emit(self, phi: float, phi1: float) -> None:
        phi, phi1 = round(phi, 6) % self.SPAN, round(phi1, 6) % self.SPAN
        if (phi, phi1) == (self._phi, self._phi1):
            return
        self._phi, self._phi1 = phi, phi1
        self.update()
        self.moved.emit(phi, phi1)

    # ---- drawing
    def resizeEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        self._background = None
        super().resizeEvent(ev)

    def _draw_background(self) -> QPixmap:
        """The square, its 45° lines, the grid's quadrant and the corner anchors: drawn once per size."""
        ratio = self.devicePixelRatioF()
        pm = QPixmap(int(self.width() * ratio), int(self.height() * ratio))
        pm.setDevicePixelRatio(ratio)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        r = self.square()
        p.fillRect(r, QColor(28, 29, 31))
        p.fillRect(QRectF(r.left(), r.top(), r.width() / 4, r.height() / 4), QColor(52, 70, 92))
        p.setPen(QPen(QColor(70, 72, 78), 1))
        for i in range(1, 8):  # every 45°
            x = r.left() + r.width() * i / 8
            y = r.top() + r.height() * i / 8
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
        p.setPen(QPen(QColor(120, 124, 132), 1))
        p.drawRect(r)
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.8))
        p.setFont(f)
        p.setPen(QColor(170, 200, 235))
        for (phi, phi1), name in CORNERS:
            c = self.to_pos(phi, phi1)
            p.drawText(QRectF(c.x() + 2, c.y() + 1, 24, 14), Qt.AlignmentFlag.AlignLeft, name)
        p.setPen(QColor(140, 140, 140))
        p.drawText(QRectF(r.left(), r.bottom() - 15, r.width() - 3, 14), Qt.AlignmentFlag.AlignRight, "φ′ →")
        p.drawText(QRectF(r.left() + 3, r.bottom() - 15, 40, 14), Qt.AlignmentFlag.AlignLeft, "φ ↓")
        p.end()
        return pm

    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802 - Qt API
        if self._background is None:
            self._background = self._draw_background()
        p = QPainter(self)
        p.drawPixmap(0, 0, self._background)
        r = self.square()
        c = self.to_pos(self._phi, self._phi1)
        p.setPen(QPen(QColor(255, 210, 60, 110), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(20, 20, 20), 2))
        p.setBrush(QColor(255, 210, 60))
        p.drawEllipse(c, 5.5, 5.5)
        if self.hasFocus():
            p.setPen(QPen(QColor(64, 128, 200), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r.adjusted(1, 1, -1, -1))
        p.end()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(170, 170)

    def heightForWidth(self, w: int) -> int:  # noqa: N802 - Qt API
        return w

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt API
        return True


__all__ = ["AnglePad"]
