"""The canvas settings: a size (presets that follow the model, sides snapped to 2^(L−1)),
temperature, seed and count. Plain controls; the panel reads them and starts the job."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget,
)

import nvp_core as nc

MAX_SIDE = 4096
PRESETS = (("1×", 1), ("2×", 2), ("10×", 10))  # label, times the training size


class SnapSpinBox(QSpinBox):
    """A spin box whose value snaps to multiples of ``multiple`` (2^(L−1))."""

    def __init__(self, multiple: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(1, MAX_SIDE)
        self.set_multiple(multiple)
        self.editingFinished.connect(self.snap)

    def set_multiple(self, multiple: int) -> None:
        self.multiple = max(1, int(multiple))
        self.setMinimum(self.multiple)
        self.setMaximum(MAX_SIDE // self.multiple * self.multiple)
        self.setSingleStep(self.multiple)
        self.snap()

    def snapped(self, value: int | None = None) -> int:
        v = self.value() if value is None else value
        m = self.multiple
        return int(min(self.maximum(), max(m, round(v / m) * m)))

    def snap(self) -> None:
        if self.value() != self.snapped():
            self.setValue(self.snapped())

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        self.setValue(self.snapped() + steps * self.multiple)


class CanvasForm(QGroupBox):
    """Preset, width, height, temperature, seed, count; ``changed`` after any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Canvas", parent)
        self.base: int | None = None  # the model's training size; None without a model
        self.preset = QComboBox()
        self.width_box = SnapSpinBox()
        self.height_box = SnapSpinBox()
        for box in (self.width_box, self.height_box):
            box.setSuffix(" px")
            box.valueChanged.connect(self._size_changed)
        self.size_hint = QLabel()
        self.size_hint.setWordWrap(True)
        self.size_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setDecimals(2)
        self.temperature.setValue(0.7)
        self.temperature.setToolTip("Latents are drawn from N(0, T²I); lower T gives smoother, more typical images")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Image i of a batch uses seed + i")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setToolTip("Number of images (shown as a grid)")
        self._lay_out()
        self.preset.currentIndexChanged.connect(self._preset_changed)
        for box in (self.width_box, self.height_box, self.seed, self.count):
            box.valueChanged.connect(self.changed)
        self.temperature.valueChanged.connect(self.changed)
        self.preset.currentIndexChanged.connect(self.changed)

    def _lay_out(self) -> None:
        dice = QPushButton("Random")
        dice.setToolTip("Pick a random seed")
        dice.clicked.connect(lambda: self.seed.setValue(int(np.random.default_rng().integers(0, 2**31 - 1))))
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Preset:", self.preset)
        form.addRow("Width:", self.width_box)
        form.addRow("Height:", self.height_box)
        form.addRow("", self.size_hint)
        form.addRow("Temperature:", self.temperature)
        form.addRow("Seed:", seed_row)
        form.addRow("Count:", self.count)

    def set_model(self, flow: nc.RealNVP | None) -> None:
        """Presets and snapping for this model (its training size and 2^(L−1)); the 1× preset chosen."""
        self.base = None if flow is None else flow.config.image_size
        self.preset.blockSignals(True)
        self.preset.clear()
        if flow is None:
            self.size_hint.setText("No model loaded.")
        else:
            m, base = flow.multiple, flow.config.image_size
            for box in (self.width_box, self.height_box):
                box.set_multiple(m)
            for label, factor in PRESETS:
                if base * factor <= MAX_SIDE:
                    self.preset.addItem(f"{label}  ({base * factor}×{base * factor})", factor)
            self.size_hint.setText(
                f"Sides snap to multiples of {m} = 2<sup>L−1</sup> (L = {flow.config.scales} levels). "
                f"Trained at {base}×{base}."
            )
        self.preset.addItem("Custom", None)
        self.preset.blockSignals(False)
        self.preset.setCurrentIndex(0)
        self._preset_changed()

    def _preset_changed(self, *_: object) -> None:
        factor = self.preset.currentData()
        if factor is None or self.base is None:
            return
        for box in (self.width_box, self.height_box):
            box.blockSignals(True)
            box.setValue(self.base * factor)
            box.blockSignals(False)

    def _size_changed(self, *_: object) -> None:
        """Editing a side by hand selects the matching preset, or Custom."""
        if self.base is None:
            return
        w, h = self.width_box.value(), self.height_box.value()
        target = self.preset.count() - 1  # Custom
        for i in range(self.preset.count()):
            f = self.preset.itemData(i)
            if f is not None and w == h == self.base * f:
                target = i
        if target != self.preset.currentIndex():
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(target)
            self.preset.blockSignals(False)

    def canvas_size(self) -> tuple[int, int]:
        """(width, height) snapped to the model's multiple."""
        return self.width_box.snapped(), self.height_box.snapped()

    def snap(self) -> None:
        self.width_box.snap()
        self.height_box.snap()
