"""Dialogs of the explorer: the export dialog for sweeps and animations.

The dialog only gathers choices and checks them (the OK button stays disabled
while something is wrong, with the reason shown); writing happens elsewhere
(:func:`explorer.export.export_frames`, off the GUI thread for long sweeps).
"""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
    QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from .export import ExportOptions, animation_formats

__all__ = ["ExportDialog", "ExportOptions"]

_FORMAT_LABELS = {
    ".gif": "GIF (256 colours, plays everywhere)",
    ".webp": "WebP (lossless)",
    ".apng": "APNG (animated PNG, lossless)",
    ".mp4": "MP4 (H.264, via imageio-ffmpeg)",
}
_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


class ExportDialog(QDialog):
    """Frame count, output size, formats, frame rate and destination of an export."""

    def __init__(
        self,
        parent: QWidget | None = None,
        default_frames: int = 40,
        default_size: tuple[int, int] = (32, 32),
        default_folder: str | Path | None = None,
        default_name: str = "frame",
        title: str = "Export animation",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._native = (max(1, int(default_size[0])), max(1, int(default_size[1])))
        self._syncing = False
        self._ready = False  # _refresh waits until every widget exists

        self.frames = QSpinBox()
        self.frames.setRange(1, 10000)
        self.frames.setValue(max(1, int(default_frames)))
        self.frames.setToolTip("How many frames the sweep is cut into")

        w0, h0 = self._native
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.125, 64.0)
        self.scale.setDecimals(3)
        self.scale.setSingleStep(1.0)
        self.scale.setSuffix(" ×")
        self.scale.setValue(self._default_scale())
        self.scale.setToolTip("Whole-number scales keep pixels crisp (nearest neighbour); others are smoothed")
        self.out_w = QSpinBox()
        self.out_h = QSpinBox()
        for box in (self.out_w, self.out_h):
            box.setRange(1, 16384)
            box.setSuffix(" px")
        size_row = QHBoxLayout()
        size_row.addWidget(self.scale)
        size_row.addSpacing(12)
        size_row.addWidget(self.out_w)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.out_h)
        size_row.addStretch(1)
        self._set_size_from_scale()

        self.sequence = QCheckBox("Numbered PNG sequence")
        self.sequence.setChecked(True)
        self.animation = QComboBox()
        self.animation.addItem("None", None)
        for ext in animation_formats():
            if ext in _FORMAT_LABELS:
                self.animation.addItem(_FORMAT_LABELS[ext], ext)
        self.animation.setCurrentIndex(1)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1.0, 120.0)
        self.fps.setDecimals(1)
        self.fps.setValue(20.0)
        self.fps.setSuffix(" fps")

        self.folder = QLineEdit(str(default_folder or Path.cwd() / "export"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.name = QLineEdit(default_name)
        self.name.setToolTip("Prefix of the PNG files and name of the animation file")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Frames:", self.frames)
        form.addRow(f"Size (native {w0}×{h0}):", size_row)
        form.addRow("PNG frames:", self.sequence)
        form.addRow("Animation:", self.animation)
        form.addRow("Frame rate:", self.fps)
        form.addRow("Folder:", folder_row)
        form.addRow("Name:", self.name)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self.scale.valueChanged.connect(self._set_size_from_scale)
        self.out_w.valueChanged.connect(lambda _: self._set_from_pixels(self.out_w))
        self.out_h.valueChanged.connect(lambda _: self._set_from_pixels(self.out_h))
        for signal in (self.frames.valueChanged, self.sequence.toggled, self.animation.currentIndexChanged,
                       self.fps.valueChanged, self.folder.textChanged, self.name.textChanged):
            signal.connect(self._refresh)
        self._ready = True
        self._refresh()

    # ------------------------------------------------------------ size linking
    def _default_scale(self) -> float:
        """Small model outputs (32×32) are unreadable at 1×: default to ~256 px."""
        longest = max(self._native)
        return float(max(1, 256 // longest)) if longest < 256 else 1.0

    def _set_size_from_scale(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        s = self.scale.value()
        self.out_w.setValue(max(1, round(self._native[0] * s)))
        self.out_h.setValue(max(1, round(self._native[1] * s)))
        self._syncing = False
        self._refresh()

    def _set_from_pixels(self, source: QSpinBox) -> None:
        """Typing a pixel width (or height) keeps the aspect ratio."""
        if self._syncing:
            return
        self._syncing = True
        w0, h0 = self._native
        s = source.value() / (w0 if source is self.out_w else h0)
        other, base = (self.out_h, h0) if source is self.out_w else (self.out_w, w0)
        other.setValue(max(1, round(base * s)))
        self.scale.setValue(s)
        self._syncing = False
        self._refresh()

    # ------------------------------------------------------------ validation
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def problem(self) -> str | None:
        """Why the current choices cannot be exported, or None."""
        if not self.sequence.isChecked() and self.animation.currentData() is None:
            return "Choose a PNG sequence, an animation, or both."
        if self.animation.currentData() is not None and self.frames.value() < 2:
            return "An animation needs at least 2 frames."
        if not self.folder.text().strip():
            return "Choose a folder."
        folder = Path(self.folder.text().strip()).expanduser()
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"{existing} is a file, not a folder."
        name = self.name.text().strip()
        if not name or _BAD_NAME.search(name) or name in (".", ".."):
            return 'The name must be non-empty and cannot hold / \\ : * ? " < > |'
        return None

    def _refresh(self, *_: object) -> None:
        if not self._ready:
            return
        problem = self.problem()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(problem is None)
        self.fps.setEnabled(self.animation.currentData() is not None)
        if problem:
            self.summary.setText(f"<span style='color:#e5533d'>{problem}</span>")
            return
        opts = self.options()
        parts = []
        if opts.sequence:
            paths = opts.targets()
            parts.append(f"{paths[0].name} … {paths[opts.frames - 1].name}" if opts.frames > 1 else paths[0].name)
        if opts.animation_path is not None:
            secs = opts.frames / opts.fps
            parts.append(f"{opts.animation_path.name} ({secs:.1f} s, looping)")
        clash = sum(p.exists() for p in opts.targets())
        warn = f"<br><span style='color:#d99a1e'>Overwrites {clash} existing file(s).</span>" if clash else ""
        self.summary.setText(
            f"Writes {' and '.join(parts)} at {opts.width}×{opts.height} px into {opts.folder}{warn}"
        )

    def options(self) -> ExportOptions:
        return ExportOptions(
            frames=self.frames.value(),
            width=self.out_w.value(),
            height=self.out_h.value(),
            sequence=self.sequence.isChecked(),
            animation=self.animation.currentData(),
            fps=self.fps.value(),
            folder=Path(self.folder.text().strip()).expanduser(),
            name=self.name.text().strip(),
        )

    def accept(self) -> None:
        if self.problem() is None:
            super().accept()

    @classmethod
    def get_options(
        cls,
        parent: QWidget | None = None,
        default_frames: int = 40,
        default_size: tuple[int, int] = (32, 32),
        **kwargs: object,
    ) -> ExportOptions | None:
        """Show the dialog modally; the chosen options, or None if cancelled."""
        dialog = cls(parent, default_frames=default_frames, default_size=default_size, **kwargs)
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                return dialog.options()
            return None
        finally:
            dialog.deleteLater()
