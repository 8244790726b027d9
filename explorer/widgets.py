"""Small widgets shared by the explorer's panels.

* :class:`ImageView` — a pyqtgraph view of an RGB image or of a scalar map
  (a latent level) with a colour map, value range and a hover read-out;
* :class:`AngleControl` — slider + spin box (degrees) + play button for φ, φ′, φ″;
* :class:`AnchorSlot` — one of the manifold's eight drop targets;
* :class:`MessageBar` — errors and notices in one fixed-height line of the
  status bar (never a modal box, never moving the layout);
* helpers to turn numpy images into pixmaps and drops into paths.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QMimeData, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget,
)

DIVERGING = "CET-D1"  # blue–white–red: sign matters for a Gaussian latent
VIEW_BACKGROUND = (28, 29, 31)


# ---------------------------------------------------------------- helpers
def to_qimage(arr: np.ndarray) -> QImage:
    """uint8 (H, W, 3) or (H, W) → a QImage that owns its pixels."""
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    if a.ndim == 2:
        h, w = a.shape
        return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    h, w, c = a.shape
    if c == 4:
        return QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return QImage(a[:, :, :3].copy().data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def to_pixmap(arr: np.ndarray, size: int | None = None) -> QPixmap:
    """A pixmap, scaled with nearest-neighbour so small model images stay crisp."""
    pm = QPixmap.fromImage(to_qimage(arr))
    if size:
        pm = pm.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pm


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local files and folders of a drag (anything else — web links, text — is ignored)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def dark_palette() -> QPalette:
    """A neutral dark palette: images read better on grey than on white."""
    p = QPalette()
    base, window, text = QColor(36, 37, 40), QColor(46, 47, 51), QColor(226, 226, 226)
    for role, color in (
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, QColor(60, 60, 64)), (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(58, 59, 64)),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
        (QPalette.ColorRole.Highlight, QColor(64, 128, 200)), (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(110, 170, 240)), (QPalette.ColorRole.PlaceholderText, QColor(140, 140, 140)),
    ):
        p.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def fmt(value: float) -> str:
    return f"{value:+.3f}" if abs(value) < 1000 else f"{value:+.3g}"


# ---------------------------------------------------------------- image view
class ImageView(QWidget):
    """A titled pyqtgraph view: RGB images or scalar maps, pan/zoom, hover read-out.

    Scalar maps (:meth:`set_map`) can be shown over a larger *display rect*, so
    every latent level sits on the input image's coordinates whatever its own
    resolution; the read-out then names the level's own pixel and value.
    """

    hovered = Signal(str)

    def __init__(self, title: str = "", parent: QWidget | None = None, min_size: int = 96,
                 placeholder: str = "") -> None:
        super().__init__(parent)
        self._data: np.ndarray | None = None
        self._rgb: np.ndarray | None = None
        self._extent: tuple[float, float] = (1.0, 1.0)
        self._range_text = ""
        self._placeholder_text = placeholder

        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600;")
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(VIEW_BACKGROUND)
        self.glw.setMinimumSize(min_size, min_size)
        self.glw.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.glw.ci.setContentsMargins(0, 0, 0, 0)
        self.view = self.glw.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setDefaultPadding(0.02)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.placeholder = pg.TextItem(placeholder, color=(150, 150, 150), anchor=(0.5, 0.5))
        self.view.addItem(self.placeholder)
        self.placeholder.setPos(0.5, 0.5)
        self.view.setRange(QRectF(0, 0, 1, 1), padding=0)
        self.info = QLabel(" ")
        self.info.setStyleSheet("color: #9aa0a6; font-size: 11px;")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        if title:
            lay.addWidget(self.title)
        else:
            self.title.hide()
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.info)
        self.glw.scene().sigMouseMoved.connect(self._on_mouse)
        self.setToolTip("Scroll to zoom, drag to pan, double-click to fit")
        self.glw.scene().sigMouseClicked.connect(self._on_click)

    # ---- content
    def set_image(self, rgb: np.ndarray, info: str = "", now: bool = False) -> None:
        """uint8 (H, W, 3): shown as is.

        ``now`` paints before returning instead of at the next turn of the event loop (the
        scene's dirty-item pass, then the viewport's update request: two queued hops, 7–15 ms
        measured while dragging): for frames that follow the hand, where those ms are the lag.
        """
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        first = self._rgb is None or self._rgb.shape != rgb.shape or self._data is not None
        self._rgb, self._data = rgb, None
        self.item.setLookupTable(None)
        self.item.setImage(rgb, autoLevels=False, levels=(0, 255))
        h, w = rgb.shape[:2]
        self.item.setRect(QRectF(0, 0, w, h))
        self._extent = (w, h)
        self._range_text = info
        self.info.setText(info or f"{w}×{h}")
        self.placeholder.hide()
        if first:
            self.fit()
        if now and self.glw.isVisible():
            self.glw.viewport().repaint()

    def set_map(self, values: np.ndarray, display_size: tuple[int, int] | None = None,
                cmap: str = DIVERGING, symmetric: bool = True, info: str = "") -> None:
        """float (h, w) map with a colour map; ``display_size`` = (W, H) it covers on screen."""
        v = np.asarray(values, dtype=np.float32)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if symmetric:
            m = max(abs(lo), abs(hi), 1e-6)
            levels = (-m, m)
        else:
            levels = (lo, hi if hi > lo else lo + 1e-6)
        first = self._data is None or self._extent != (display_size or (v.shape[1], v.shape[0]))
        self._data, self._rgb = v, None
        self.item.setColorMap(pg.colormap.get(cmap))
        self.item.setImage(v, autoLevels=False, levels=levels)
        w, h = display_size or (v.shape[1], v.shape[0])
        self.item.setRect(QRectF(0, 0, w, h))
        self._extent = (w, h)
        self._range_text = info or f"{v.shape[1]}×{v.shape[0]}  range {fmt(lo)} … {fmt(hi)}"
        self.info.setText(self._range_text)
        self.placeholder.hide()
        if first:
            self.fit()

    def clear(self, placeholder: str | None = None) -> None:
        self._rgb = self._data = None
        self.item.clear()
        if placeholder is not None:
            self._placeholder_text = placeholder
        self.placeholder.setText(self._placeholder_text)
        self.placeholder.show()
        self.placeholder.setPos(0.5, 0.5)
        self.view.setRange(QRectF(0, 0, 1, 1), padding=0)
        self._range_text = ""
        self.info.setText(" ")

    def image(self) -> np.ndarray | None:
        """What is shown, as uint8 RGB (scalar maps through their colour map) — for export."""
        if self._rgb is not None:
            return self._rgb
        if self._data is not None:
            lo, hi = self.item.getLevels()
            cmap = self.item.getColorMap() or pg.colormap.get(DIVERGING)
            t = np.clip((self._data - lo) / max(hi - lo, 1e-12), 0, 1)
            return cmap.map(t, mode="byte")[..., :3].astype(np.uint8)
        return None

    @property
    def has_image(self) -> bool:
        return self._rgb is not None or self._data is not None

    def fit(self) -> None:
        w, h = self._extent
        self.view.setRange(QRectF(0, 0, w, h), padding=0.02)

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    # ---- read-out
    def _on_click(self, ev) -> None:  # noqa: ANN001 - pyqtgraph event
        if ev.double():
            self.fit()

    def _on_mouse(self, pos: QPointF) -> None:
        arr = self._rgb if self._rgb is not None else self._data
        if arr is None:
            return
        p = self.view.mapSceneToView(pos)
        w, h = self._extent
        if not (0 <= p.x() < w and 0 <= p.y() < h):
            self.info.setText(self._range_text)
            return
        rows, cols = arr.shape[:2]
        r, c = int(p.y() * rows / h), int(p.x() * cols / w)
        r, c = min(max(r, 0), rows - 1), min(max(c, 0), cols - 1)
        if self._rgb is not None:
            px = self._rgb[r, c]
            text = f"x={c} y={r}  RGB {int(px[0])}, {int(px[1])}, {int(px[2])}"
        else:
            text = f"x={c} y={r}  value {fmt(float(self._data[r, c]))}"
        self.info.setText(text)
        self.hovered.emit(text)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(240, 260)


# ---------------------------------------------------------------- angle control
class AngleControl(QWidget):
    """One angle in degrees: slider (0.1° resolution), wrapping spin box and a play button.

    Keyboard on the slider: arrows step 1°, Page Up/Down 15°.
    """

    valueChanged = Signal(float)  # noqa: N815 - Qt naming
    playToggled = Signal(bool)  # noqa: N815

    SCALE = 10  # slider units per degree

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._block = False
        self.label = QLabel(name)
        self.label.setMinimumWidth(22)
        self.label.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 360 * self.SCALE)
        self.slider.setSingleStep(self.SCALE)
        self.slider.setPageStep(15 * self.SCALE)
        self.slider.setMinimumWidth(160)
        self.slider.setAccessibleName(f"{name} slider")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 360.0)
        self.spin.setDecimals(1)
        self.spin.setSingleStep(1.0)
        self.spin.setWrapping(True)
        self.spin.setSuffix("°")
        self.spin.setKeyboardTracking(False)
        self.spin.setFixedWidth(84)
        self.play = QToolButton()
        self.play.setCheckable(True)
        self.play.setText("▶")
        self.play.setToolTip(f"Animate {name}")
        self.play.setFixedWidth(30)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        lay.addWidget(self.play)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)
        self.play.toggled.connect(self._on_play)

    def value(self) -> float:
        return self.spin.value() % 360.0

    def setValue(self, degrees: float) -> None:  # noqa: N802 - Qt naming
        degrees = float(degrees) % 360.0
        if math.isclose(degrees, self.value(), abs_tol=1e-9) and self.slider.value() == round(degrees * self.SCALE):
            return
        self._block = True
        try:
            self.slider.setValue(round(degrees * self.SCALE))
            self.spin.setValue(degrees)
        finally:
            self._block = False
        self.valueChanged.emit(degrees)

    def step(self, degrees: float) -> None:
        self.setValue(self.value() + degrees)

    def _from_slider(self, v: int) -> None:
        if self._block:
            return
        self._block = True
        try:
            self.spin.setValue(v / self.SCALE)
        finally:
            self._block = False
        self.valueChanged.emit((v / self.SCALE) % 360.0)

    def _from_spin(self, v: float) -> None:
        if self._block:
            return
        self._block = True
        try:
            self.slider.setValue(round(v * self.SCALE))
        finally:
            self._block = False
        self.valueChanged.emit(v % 360.0)

    def _on_play(self, on: bool) -> None:
        self.play.setText("⏸" if on else "▶")
        self.playToggled.emit(on)


# ---------------------------------------------------------------- anchor slot
class AnchorSlot(QFrame):
    """A drop target with a thumbnail; click for its menu (the panel supplies the actions)."""

    dropped = Signal(int, list)  # slot index, local paths
    clicked = Signal(int)

    THUMB = 72

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"z{index + 1}: drop an image here, or click for options")
        self.thumb = QLabel()
        self.thumb.setFixedSize(self.THUMB, self.THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: #1c1d1f; color: #777; border-radius: 3px;")
        self.caption = QLabel(f"z{index + 1}")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("font-size: 11px;")
        self.caption.setMaximumWidth(self.THUMB + 8)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(2)
        lay.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.caption)
        self.set_empty()

    def set_anchor(self, thumbnail: np.ndarray, label: str) -> None:
        self.thumb.setPixmap(to_pixmap(thumbnail, self.THUMB))
        text = f"z{self.index + 1} · {Path(label).stem if '.' in label else label}"
        metrics = self.caption.fontMetrics()
        self.caption.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.THUMB + 14))
        self.caption.setToolTip(label)

    def set_empty(self) -> None:
        self.thumb.clear()
        self.thumb.setText("drop\nimage")
        self.caption.setText(f"z{self.index + 1}")

    def mousePressEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        if ev.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)
        super().mousePressEvent(ev)

    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()
            self.setStyleSheet("AnchorSlot { border: 2px solid #4080c8; }")

    def dragLeaveEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        self.setStyleSheet("")

    def dropEvent(self, ev: QDropEvent) -> None:  # noqa: N802 - Qt API
        self.setStyleSheet("")
        paths = paths_from_mime(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.dropped.emit(self.index, paths)


# ---------------------------------------------------------------- messages
class MessageBar(QFrame):
    """Errors and notices in one fixed-height line (the window puts it in the status bar).

    It never changes its height, so a message never moves the tabs under the
    mouse. Notices ("info", "warning", "status") show for a few seconds; errors
    stay until dismissed (✕) or until the same *action* succeeds
    (:meth:`succeeded`, or a notice with the same ``key``). Several errors queue:
    the newest shows, with "(+N more)". Long text is elided; the tooltip holds all.
    Unlike a modal box, it never blocks the event loop (dragging goes on).
    """

    STYLES = {
        "error": "background: #5c2626; color: #ffd9d9;",
        "warning": "background: #5a4a1e; color: #fff0c8;",
        "info": "background: #203a56; color: #d8e8ff;",
        "status": "",
    }
    TIMEOUTS = {"info": 6000, "warning": 10000, "status": 8000}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = ""
        self._shown = ""
        self.errors: list[tuple[str | None, str]] = []  # (action key, text), oldest first
        self.label = QLabel()
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this message")
        self.close_button.clicked.connect(self.dismiss)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 0, 2, 0)
        lay.setSpacing(4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.close_button)
        self.setFixedHeight(max(22, self.fontMetrics().height() + 8))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._notice_over)
        self.history: list[tuple[str, str]] = []
        self._render("", "")

    # ---- API
    def show_message(self, text: str, level: str = "error", timeout_ms: int | None = None,
                     key: str | None = None) -> None:
        """Show ``text``. An error (level "error") stays; a notice with ``key`` clears that action's errors."""
        self.history.append((level, text))
        del self.history[:-50]
        if level == "error":
            self.errors = [(k, t) for k, t in self.errors if t != text and (key is None or k != key)] + [(key, text)]
            self._timer.stop()
            self._render(text, "error")
            return
        if key is not None:
            self.errors = [(k, t) for k, t in self.errors if k != key]
        self._render(text, level)
        timeout_ms = self.TIMEOUTS.get(level, 6000) if timeout_ms is None else timeout_ms
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def succeeded(self, key: str) -> None:
        """The action ``key`` worked: its errors go (the one shown too)."""
        before = len(self.errors)
        self.errors = [(k, t) for k, t in self.errors if k != key]
        if len(self.errors) != before and self.level == "error":
            self._show_pending()

    def text(self) -> str:
        return self._shown

    def dismiss(self) -> None:
        """✕: drop the shown error (the next one shows), or end the shown notice."""
        if self.level == "error" and self.errors:
            shown = next((i for i in range(len(self.errors) - 1, -1, -1) if self.errors[i][1] == self._shown),
                         len(self.errors) - 1)
            del self.errors[shown]
        self._timer.stop()
        self._show_pending()

    # ---- internals
    def _notice_over(self) -> None:
        self._show_pending()

    def _show_pending(self) -> None:
        if self.errors:
            self._render(self.errors[-1][1], "error")
        else:
            self._render("", "")

    def _render(self, text: str, level: str) -> None:
        self.level = level
        self._shown = text
        more = len(self.errors) - 1 if level == "error" else 0
        line = text.splitlines()[0] if text else ""
        shown = line + (f"   (+{more} more)" if more > 0 else "")
        self.label.setText(shown)
        self.label.setToolTip(text if text != line or len(text) > 80 else "")
        self._full = shown
        self._elide()
        style = self.STYLES.get(level, "") if text else ""
        self.setStyleSheet(f"MessageBar {{ {style} border-radius: 3px; }} QLabel {{ {style} }}" if style else "")
        self.close_button.setVisible(bool(text) and level in ("error", "warning", "info"))

    def _elide(self) -> None:
        width = max(40, self.label.width())
        self.label.setText(self.label.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width))

    def resizeEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        super().resizeEvent(ev)
        if hasattr(self, "_full"):
            self._elide()


def section(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setStyleSheet("font-weight: 600; color: #c8c8c8; margin-top: 6px;")
    return lab


def existing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if Path(p).exists()]
