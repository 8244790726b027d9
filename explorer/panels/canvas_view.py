"""A zoomable, pixel-exact view of a generated canvas, with the pixel under the pointer read out."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


class CanvasView(QWidget):
    """Shows one uint8 (H, W, 3) picture (or a placeholder text) in a pan/zoom view box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown: np.ndarray | None = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#202124")
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.placeholder = pg.TextItem("Choose a size and press Generate", color="#aaa", anchor=(0.5, 0.5))
        self.view.addItem(self.placeholder)
        self.placeholder.setPos(0.5, 0.5)
        self.view.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.graphics.scene().sigMouseMoved.connect(self._hover)
        self.readout = QLabel(" ")
        self.readout.setStyleSheet("font-family: monospace;")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)

    def set_placeholder(self, text: str) -> None:
        """The text shown while there is no picture (hidden once one is shown)."""
        self.placeholder.setText(text)

    def show_image(self, arr: np.ndarray) -> None:
        """Show ``arr`` pixel for pixel; the view refits when the picture's shape changes."""
        old = None if self.shown is None else self.shown.shape
        self.shown = arr
        self.placeholder.hide()
        self.image_item.setImage(arr, autoLevels=False, levels=(0, 255))
        if old != arr.shape:
            self.fit()

    def fit(self) -> None:
        if self.shown is not None:
            self.view.autoRange(padding=0.02)

    def _hover(self, pos: QPointF) -> None:
        if self.shown is None or not self.view.sceneBoundingRect().contains(pos):
            self.readout.setText(" ")
            return
        p = self.view.mapSceneToView(pos)
        x, y = int(math.floor(p.x())), int(math.floor(p.y()))
        h, w = self.shown.shape[:2]
        if 0 <= x < w and 0 <= y < h:
            r, g, b = (int(v) for v in self.shown[y, x][:3])
            self.readout.setText(f"x {x:5d}  y {y:5d}   RGB {r:3d} {g:3d} {b:3d}   ({w}×{h} px)")
        else:
            self.readout.setText(f"{w}×{h} px")
