"""Dialogs of the explorer: where file dialogs open, yes/no questions, and the
export dialog for sweeps and animations.

*Where files go.* Every file dialog has a key ("canvas-save", "sweep",
"session-open"…) and a kind of place; it opens in the folder last chosen in
that dialog, else in the platform's standard place for the kind
(``QStandardPaths``: Pictures for images and sweeps, Documents for sessions,
the application's data folder for training runs) — never in the current
directory, which is often the source checkout. The memory lives in the
window's ``QSettings`` (:func:`configure`); until configured it is kept in
memory only, so tests and scratch runs never touch the user's settings.

*Questions.* :func:`ask` is the one place that shows a modal question; tests
replace it (``monkeypatch.setattr(dialogs, "ask", …)``).

The export dialog only gathers choices and checks them (the OK button stays
disabled while something is wrong, with the reason shown); writing happens
elsewhere (:func:`explorer.export.export_frames`, off the GUI thread).
"""
from __future__ import annotations

import re
from glob import escape as glob_escape
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
    QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from .export import ExportOptions, animation_formats

__all__ = ["ExportDialog", "ExportOptions", "ask", "configure", "folder_for", "get_existing_folder",
           "get_open_file", "get_save_file", "remember_folder", "standard_folder", "start_folder"]

# ---------------------------------------------------------------- where file dialogs open
_PLACES = {
    "pictures": QStandardPaths.StandardLocation.PicturesLocation,
    "documents": QStandardPaths.StandardLocation.DocumentsLocation,
    "appdata": QStandardPaths.StandardLocation.AppDataLocation,
    "home": QStandardPaths.StandardLocation.HomeLocation,
}
#: dialog key → kind of place it starts in before the user has chosen a folder there
DIALOG_KINDS = {
    "canvas-save": "pictures", "canvas-folder": "pictures", "export-view": "pictures", "sweep": "pictures",
    "frame-save": "pictures", "images": "pictures", "session-open": "documents", "session-save": "documents",
    "training-output": "runs", "training-data": "pictures", "model": "home",
}
_settings: QSettings | None = None
_memory: dict[str, str] = {}

MODEL_FILTER = "NVP models (*.safetensors config.json);;All files (*)"


def configure(settings: QSettings | None) -> None:
    """Remember dialog folders in ``settings`` (the window's); None: in memory only."""
    global _settings
    _settings = settings


def standard_folder(kind: str) -> Path:
    """The platform's place for a kind of file: "pictures", "documents", "appdata", "runs", "home".

    "runs" is ``<app data>/runs``: training runs are the application's own data.
    A place the platform does not have falls back to the home folder.
    """
    if kind == "runs":
        return standard_folder("appdata") / "runs"
    loc = _PLACES.get(kind, _PLACES["home"])
    path = QStandardPaths.writableLocation(loc)
    return Path(path) if path else Path.home()


def folder_for(dialog: str, kind: str | None = None) -> Path:
    """The folder the dialog ``dialog`` opens in: the last one chosen there, else the standard place."""
    key = f"dialog_folders/{dialog}"
    last = _settings.value(key, "") if _settings is not None else _memory.get(key, "")
    if last:
        return Path(str(last))
    return standard_folder(kind or DIALOG_KINDS.get(dialog, "home"))


def remember_folder(dialog: str, path: str | Path, is_file: bool | None = None) -> None:
    """Remember where the user went in ``dialog`` (a file's folder, or the folder itself)."""
    p = Path(path)
    if is_file is None:
        is_file = not p.is_dir()
    folder = str(p.parent if is_file else p)
    key = f"dialog_folders/{dialog}"
    if _settings is not None:
        _settings.setValue(key, folder)
    else:
        _memory[key] = folder


def start_folder(dialog: str, kind: str | None = None, name: str = "") -> str:
    """A start path for a QFileDialog: the nearest existing folder (a missing one confuses it)."""
    folder = folder_for(dialog, kind)
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), Path.home())
    return str(existing / name) if name else str(existing)


def get_save_file(parent: QWidget | None, dialog: str, title: str, name: str, filters: str,
                  kind: str | None = None) -> str:
    """QFileDialog.getSaveFileName starting in the dialog's folder; remembers the choice. "" if cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, start_folder(dialog, kind, name), filters)
    if path:
        remember_folder(dialog, path, is_file=True)
    return path


def get_open_file(parent: QWidget | None, dialog: str, title: str, filters: str, kind: str | None = None) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, start_folder(dialog, kind), filters)
    if path:
        remember_folder(dialog, path, is_file=True)
    return path


def get_existing_folder(parent: QWidget | None, dialog: str, title: str, kind: str | None = None,
                        start: str | None = None) -> str:
    folder = QFileDialog.getExistingDirectory(parent, title, start or start_folder(dialog, kind))
    if folder:
        remember_folder(dialog, folder, is_file=False)
    return folder


# ---------------------------------------------------------------- questions
def ask(parent: QWidget | None, title: str, text: str, choices: Sequence[str],
        default: str | None = None) -> str | None:
    """A modal question with one button per choice; the choice's text, or None when closed.

    The one modal box of the explorer: asked only before losing work (closing
    during training, replacing unsaved images). Tests replace this function.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(text)
    buttons = {}
    for c in choices:
        role = QMessageBox.ButtonRole.RejectRole if c.lower() == "cancel" else QMessageBox.ButtonRole.AcceptRole
        buttons[box.addButton(c, role)] = c
        if c == default:
            box.setDefaultButton(list(buttons)[-1])
    box.exec()
    return buttons.get(box.clickedButton())

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

        size_row = self._build_frames_and_size(default_frames)
        self._build_formats()
        folder_row = self._build_destination(default_folder, default_name)
        form = self._build_form(size_row, folder_row)
        self._build_buttons()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self._wire()
        self._ready = True
        self._refresh()

    def _build_frames_and_size(self, default_frames: int) -> QHBoxLayout:
        """Frame count, and the output size as a scale linked to width × height."""
        self.frames = QSpinBox()
        self.frames.setRange(1, 10000)
        self.frames.setValue(max(1, int(default_frames)))
        self.frames.setToolTip("How many frames the sweep is cut into")

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
        return size_row

    def _build_formats(self) -> None:
        """PNG sequence, animation format and frame rate."""
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

    def _build_destination(self, default_folder: str | Path | None, default_name: str) -> QHBoxLayout:
        """Folder, file name prefix and whether each export gets its own sub-folder."""
        self.folder = QLineEdit(str(default_folder or folder_for("sweep")))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.name = QLineEdit(default_name)
        self.name.setToolTip("Prefix of the PNG files and name of the animation file")
        self.fresh = QCheckBox("New sub-folder for each export (named by date and time)")
        self.fresh.setChecked(True)
        self.fresh.setToolTip("Keeps every export apart: frames of an earlier, longer export never end up "
                              "beside the new ones, and nothing is overwritten")
        return folder_row

    def _build_form(self, size_row: QHBoxLayout, folder_row: QHBoxLayout) -> QFormLayout:
        """All the settings, one labelled row each."""
        w0, h0 = self._native
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Frames:", self.frames)
        form.addRow(f"Size (native {w0}×{h0}):", size_row)
        form.addRow("PNG frames:", self.sequence)
        form.addRow("Animation:", self.animation)
        form.addRow("Frame rate:", self.fps)
        form.addRow("Folder:", folder_row)
        form.addRow("Name:", self.name)
        form.addRow("", self.fresh)
        return form

    def _build_buttons(self) -> None:
        """What will be written (kept current by _refresh), and Export / Cancel."""
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _wire(self) -> None:
        """Size boxes stay linked; every setting refreshes the summary."""
        self.scale.valueChanged.connect(self._set_size_from_scale)
        self.out_w.valueChanged.connect(lambda _: self._set_from_pixels(self.out_w))
        self.out_h.valueChanged.connect(lambda _: self._set_from_pixels(self.out_h))
        for signal in (self.frames.valueChanged, self.sequence.toggled, self.animation.currentIndexChanged,
                       self.fps.valueChanged, self.folder.textChanged, self.name.textChanged, self.fresh.toggled):
            signal.connect(self._refresh)

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
        folder = get_existing_folder(self, "sweep", "Export into folder", start=self.folder.text())
        if folder:
            self.folder.setText(folder)

    def leftovers(self) -> list[Path]:
        """Files of an earlier export with this name that this one would leave beside its own
        (e.g. frames 0010–0059 of a 60-frame export when 10 frames are written)."""
        opts = self.options()
        if opts.fresh or not opts.folder.is_dir():
            return []
        mine = set(opts.targets())
        return sorted(p for p in opts.folder.glob(f"{glob_escape(opts.name)}_*.png")
                      if p not in mine and re.fullmatch(rf"{re.escape(opts.name)}_\d+\.png", p.name))

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
        if opts.fresh:
            where = f"a new folder {opts.folder / (opts.name + '_<date>-<time>')}"
            warn = ""
        else:
            where = str(opts.folder)
            clash = sum(p.exists() for p in opts.targets())
            stale = len(self.leftovers())
            notes = ([f"Overwrites {clash} existing file(s)."] if clash else []) + (
                [f"{stale} older frame(s) named {opts.name}_… stay beside the new ones."] if stale else [])
            warn = f"<br><span style='color:#d99a1e'>{' '.join(notes)}</span>" if notes else ""
        self.summary.setText(f"Writes {' and '.join(parts)} at {opts.width}×{opts.height} px into {where}{warn}")

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
            fresh=self.fresh.isChecked(),
        )

    def accept(self) -> None:
        """Export only with valid choices, and replace earlier files only when the user says so."""
        if self.problem() is not None:
            return
        opts = self.options()
        if not opts.fresh:
            clash = sum(p.exists() for p in opts.targets())
            stale = len(self.leftovers())
            if clash or stale:
                text = (f"{opts.folder} already holds an export named {opts.name}: "
                        + (f"{clash} file(s) would be replaced" if clash else "nothing is replaced")
                        + (f", and {stale} older frame(s) would stay beside the new ones" if stale else "")
                        + ". Nothing is deleted. Tick “New sub-folder” to keep the exports apart.")
                if ask(self, "Replace files?", text, ["Replace", "Cancel"], default="Cancel") != "Replace":
                    return
        remember_folder("sweep", opts.folder, is_file=False)
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
