"""Training tab: configure a run, watch its curves and samples, open the result.

The ``Trainer`` of ``nvp_core.train`` (the same loop as ``nvp train``) runs on a
QThread inside a QObject worker; it talks to the panel only through a signal
carrying its ``TrainEvent`` objects, and the panel controls it through the
trainer's thread-safe ``pause``/``resume``/``request_stop``. Stopping (the Stop
button or closing the window) finishes the current step, writes a checkpoint
and the model, so a run can always be resumed and nothing trained is lost.
"""
from __future__ import annotations

import dataclasses

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
    QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QRadioButton, QScrollArea,
    QSpinBox, QSplitter, QVBoxLayout, QWidget,
)

import nvp_core as nc
from nvp_core.checkpoint import CHECKPOINT_NAME
from nvp_core.config import NORMS, FlowConfig
from nvp_core.data import BUILTIN_DATASETS, PHOTO_CROPS
from nvp_core.train import TrainConfig, TrainEvent, Trainer, load_train_config

from .. import dialogs, export

TRAIN_COLOR = "#3b8fd9"
TEST_COLOR = "#ff7f0e"
ERROR_COLOR = "#e5533d"  # readable on light and dark palettes
NOTE_COLOR = "#d99a1e"


def _muted(label: QLabel) -> None:
    """Secondary text in the palette's own muted colour (follows light/dark themes)."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)


def format_duration(seconds: float | None) -> str:
    """ETA / elapsed as h:mm:ss (or m:ss), '—' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainWorker(QObject):
    """Runs ``Trainer.run()`` on its thread; every TrainEvent becomes a signal."""

    event = Signal(object)  # TrainEvent
    ended = Signal()

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self._error_sent = False
        self.trainer = Trainer(config, callback=self._forward)

    def _forward(self, ev: TrainEvent) -> None:
        if ev.kind == "error":
            self._error_sent = True
        self.event.emit(ev)  # queued to the GUI thread: the trainer never touches a widget

    @Slot()
    def run(self) -> None:
        try:
            self.trainer.run()
        except Exception as exc:  # noqa: BLE001 - the Trainer reports its own errors as events
            if not self._error_sent:
                self.event.emit(TrainEvent("error", step=self.trainer.step,
                                           message=f"{type(exc).__name__}: {exc}"))
        finally:
            self.ended.emit()


class LearningRateBox(QDoubleSpinBox):
    """Shows 0.001 rather than 0.001000; the arrows halve or double the rate."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(8)
        self.setRange(1e-7, 1.0)
        self.setToolTip("Adam learning rate (paper: 0.001); the arrows halve or double it")

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt override: allow 1e-4 style input
        from PySide6.QtGui import QValidator

        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = t == "" or all(c in "0123456789.eE+-" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = QValidator.State.Acceptable if self.minimum() <= v <= self.maximum() else QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        self.setValue(self.value() * 2.0 ** steps)


def _pairs(rows: list[tuple[str, QWidget]], columns: int = 2) -> QGridLayout:
    """Label/field pairs laid out in ``columns`` columns (a compact form)."""
    grid = QGridLayout()
    grid.setHorizontalSpacing(6)
    grid.setVerticalSpacing(4)
    for i, (text, field) in enumerate(rows):
        r, c = divmod(i, columns)
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setBuddy(field)
        grid.addWidget(label, r, 2 * c)
        grid.addWidget(field, r, 2 * c + 1)
    for c in range(columns):
        grid.setColumnStretch(2 * c + 1, 1)
    return grid


def _spin(lo: int, hi: int, value: int, step: int = 1, tip: str = "", special: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    if special:
        box.setSpecialValueText(special)
    return box


class TrainingPanel(QWidget):
    """Data, model, optimisation and output settings; Start/Pause/Resume/Stop; live curves."""

    open_model_requested = Signal(str)
    status_message = Signal(str)

    def __init__(self, session: object = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: TrainWorker | None = None
        self.train_thread: QThread | None = None
        self.model_path: str | None = None
        self.checkpoint_path: str | None = None
        self.last_event: TrainEvent | None = None
        self.events: list[str] = []  # kinds received in this run, in order (tests and status)
        self.train_points: list[tuple[int, float]] = []
        self.test_points: list[tuple[int, float]] = []
        self.samples: np.ndarray | None = None
        self.paused = False
        self._build()
        self._validate()

    # ================================================================== UI
    def _build(self) -> None:
        """Settings on the left, live progress on the right; each part is built by one method below."""
        d = self._default_config()
        boxes = (self._build_data_box(), self._build_model_box(d), self._build_opt_box(d), self._build_out_box())
        scroll = self._build_settings_scroll(boxes)
        buttons = self._build_controls()
        left_w = self._build_left(scroll, buttons)
        stats = self._build_status()
        self._build_plot()
        right_split = self._build_samples_and_log()

        right = QVBoxLayout()
        right.addLayout(stats)
        right.addWidget(self.progress)
        right.addWidget(self.state_label)
        right.addWidget(right_split, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(left_w)
        layout.addLayout(right, 1)

        self._wire()
        self._update_buttons()

    def _default_config(self) -> TrainConfig:
        """The form's starting values: the paper's, or a smaller net when there is no GPU."""
        d = TrainConfig()
        if not torch.cuda.is_available():
            # Without a GPU the paper's 32-wide, 4-block net trains at ~24 images/s here;
            # start from the shipped default model's size, which learns in an hour.
            d = dataclasses.replace(d, width=16, blocks=2, max_width=64, steps=3000, eval_every=250,
                                    sample_every=500)
        return d

    def _build_data_box(self) -> QGroupBox:
        """Which images to train on: a built-in data set or a folder, and how to crop them."""
        # use_photos: "a built-in data set" (the name predates the second one); which one: self.builtin.
        self.use_photos = QRadioButton("Built-in:")
        self.builtin = QComboBox()
        for name in BUILTIN_DATASETS:
            self.builtin.addItem(name, name)
        self.builtin.setItemData(BUILTIN_DATASETS.index(PHOTO_CROPS), "Crops of photos shipped with scikit-image, "
                                 "scikit-learn and matplotlib (pip install -e .[data]); test crops come from "
                                 "disjoint regions", Qt.ItemDataRole.ToolTipRole)
        self.builtin.setItemData(BUILTIN_DATASETS.index("shapes"), "Generated 3D scenes: floor, wall and one "
                                 "object (sphere, cube, cylinder, cone, torus) of varying hue, size, place "
                                 "and light; a separate held-out test stream", Qt.ItemDataRole.ToolTipRole)
        self.builtin.currentIndexChanged.connect(lambda _: self.use_photos.setChecked(True))
        builtin_row = QHBoxLayout()
        builtin_row.addWidget(self.use_photos)
        builtin_row.addWidget(self.builtin, 1)
        self.use_folder = QRadioButton("Image folder:")
        group = QButtonGroup(self)
        group.addButton(self.use_photos)
        group.addButton(self.use_folder)
        self.use_photos.setChecked(True)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("any tree of JPEG / PNG / WebP / … files")
        self.folder_browse = QPushButton("Browse…")
        self.folder_browse.clicked.connect(self._browse_data)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.folder_browse)
        self.crop = QComboBox()
        self.crop.addItem("Centre crop + resize (photos)", "center")
        self.crop.addItem("Random crops (textures)", "random")
        data_box = QGroupBox("Data")
        data_l = QVBoxLayout(data_box)
        data_l.addLayout(builtin_row)
        data_l.addWidget(self.use_folder)
        data_l.addLayout(folder_row)
        crop_form = QFormLayout()
        crop_form.addRow("Crops:", self.crop)
        data_l.addLayout(crop_form)
        return data_box

    def _build_model_box(self, d: TrainConfig) -> QGroupBox:
        """The flow's architecture."""
        self.size_box = _spin(4, 1024, d.size, 4, "Training image size (square)")
        self.size_box.setSuffix(" px")
        self.width_box = _spin(1, 1024, d.width, 8, "Features of the s/t ResNets at the first scale (doubles per scale)")
        self.blocks = _spin(0, 32, d.blocks, 1, "Residual blocks per s/t ResNet")
        self.scales = _spin(0, 10, d.scales, 1, "Number of scales L; auto goes down to a 4×4 last scale",
                            special="auto")
        self.max_width = _spin(1, 4096, d.max_width, 32, "Cap on the ResNet width at coarse scales")
        self.norm = QComboBox()
        for n in NORMS:
            self.norm.addItem({"batch": "Batch norm (paper)", "actnorm": "ActNorm (Glow)", "none": "None"}[n], n)
        self.norm.setCurrentIndex(NORMS.index(d.norm))
        self.init_from = QLineEdit()
        self.init_from.setPlaceholderText("none (from scratch)")
        self.init_from.setToolTip("A trained model whose first scales start this run (e.g. a 32×32 model for a "
                                  "64×64 run on the same kind of images); the other scales start from scratch")
        self.init_browse = QPushButton("Browse…")
        self.init_browse.clicked.connect(self._browse_init)
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_from, 1)
        init_row.addWidget(self.init_browse)
        self.model_hint = QLabel()
        self.model_hint.setWordWrap(True)
        _muted(self.model_hint)
        model_box = QGroupBox("Model")
        model_l = QVBoxLayout(model_box)
        model_l.addLayout(_pairs([("Size:", self.size_box), ("Width:", self.width_box), ("Blocks:", self.blocks),
                                  ("Scales:", self.scales), ("Max width:", self.max_width)]))
        norm_form = QFormLayout()
        norm_form.addRow("Normalisation:", self.norm)
        norm_form.addRow("Start from:", init_row)
        model_l.addLayout(norm_form)
        model_l.addWidget(self.model_hint)
        return model_box

    def _build_opt_box(self, d: TrainConfig) -> QGroupBox:
        """Optimiser, device and how often to evaluate, sample and checkpoint."""
        self.batch = _spin(1, 4096, d.batch_size, 8, "Images per step")
        self.lr = LearningRateBox()
        self.lr.setValue(d.lr)
        self.steps = _spin(1, 10_000_000, d.steps, 100, "Optimizer steps in total (a resumed run continues up to this)")
        self.eval_every = _spin(1, 1_000_000, d.eval_every, 50, "Steps between test bits/dim evaluations")
        self.eval_images = _spin(1, 100_000, d.eval_images, 64, "Test images per evaluation")
        self.sample_every = _spin(1, 1_000_000, d.sample_every, 50, "Steps between sample previews")
        self.n_samples = _spin(1, 256, 36, 4, "Images per sample preview")
        self.checkpoint_every = _spin(1, 1_000_000, d.checkpoint_every, 50, "Steps between checkpoints")
        self.device = QComboBox()
        self.device.addItem("Auto", "auto")
        self.device.addItem("CPU", "cpu")
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                self.device.addItem(f"CUDA {i}: {torch.cuda.get_device_name(i)}", f"cuda:{i}")
        opt_box = QGroupBox("Optimisation")
        opt_l = QVBoxLayout(opt_box)
        opt_l.addLayout(_pairs([("Batch:", self.batch), ("LR:", self.lr), ("Steps:", self.steps),
                                ("Device:", self.device)]))
        every = QLabel("Every N steps:")
        _muted(every)
        opt_l.addWidget(every)
        opt_l.addLayout(_pairs([("Evaluate:", self.eval_every), ("on images:", self.eval_images),
                                ("Samples:", self.sample_every), ("how many:", self.n_samples),
                                ("Checkpoint:", self.checkpoint_every)]))
        return opt_box

    def _build_out_box(self) -> QGroupBox:
        """Where the run is written, and whether to resume the one there."""
        # Runs are the application's data (QStandardPaths), or where the user last put one: never the CWD.
        self.out = QLineEdit(str(dialogs.folder_for("training-output") / time.strftime("train-%Y%m%d-%H%M%S")))
        self.out.setToolTip("Checkpoints, sample grids, metrics.jsonl and the final model go here")
        out_browse = QPushButton("Browse…")
        out_browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(out_browse)
        self.resume_box = QCheckBox("Resume the run in this folder")
        self.resume_box.setToolTip("Continue from the folder's checkpoint with its model and data settings")
        self.out_hint = QLabel()
        self.out_hint.setWordWrap(True)
        _muted(self.out_hint)
        out_box = QGroupBox("Output")
        out_l = QVBoxLayout(out_box)
        out_l.addLayout(out_row)
        out_l.addWidget(self.resume_box)
        out_l.addWidget(self.out_hint)
        return out_box

    def _build_settings_scroll(self, boxes: tuple[QGroupBox, ...]) -> QScrollArea:
        """The settings boxes in one scrollable pane (locked as a whole while a run goes on)."""
        data_box, model_box, opt_box, out_box = boxes
        settings = QWidget()
        self.settings_pane = settings  # locked (disabled) while a run is going on
        sl = QVBoxLayout(settings)
        sl.setContentsMargins(0, 0, 6, 0)
        for box in (data_box, model_box, opt_box, out_box):
            sl.addWidget(box)
        sl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        return scroll

    def _build_controls(self) -> QGridLayout:
        """Start / Pause / Stop / Open buttons and the problem line above them."""
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the model")
        self.stop_button.clicked.connect(self.stop)
        self.open_button = QPushButton("Open in explorer")
        self.open_button.setToolTip("Load the trained model into the explorer's other tabs")
        self.open_button.clicked.connect(self._open_model)
        buttons = QGridLayout()
        buttons.addWidget(self.start_button, 0, 0)
        buttons.addWidget(self.pause_button, 0, 1)
        buttons.addWidget(self.stop_button, 0, 2)
        buttons.addWidget(self.open_button, 1, 0, 1, 3)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {ERROR_COLOR};")
        return buttons

    def _build_left(self, scroll: QScrollArea, buttons: QGridLayout) -> QWidget:
        """The fixed-width left column: settings, the locked note, problems, buttons."""
        self.locked_note = QLabel("The settings show the running configuration and are locked until the run "
                                  "stops (Stop saves a checkpoint; tick Resume to continue with new steps).")
        self.locked_note.setWordWrap(True)
        _muted(self.locked_note)
        self.locked_note.hide()
        left = QVBoxLayout()
        left.addWidget(scroll, 1)
        left.addWidget(self.locked_note)
        left.addWidget(self.problem)
        left.addLayout(buttons)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setFixedWidth(420)
        return left_w

    def _build_status(self) -> QHBoxLayout:
        """Status line (small captions over values, like a dashboard), progress bar and state text."""
        stats = QHBoxLayout()
        stats.setSpacing(18)
        self.step_label = self._stat(stats, "Step")
        self.train_label = self._stat(stats, "Train bits/dim")
        self.test_label = self._stat(stats, "Test bits/dim")
        self.speed_label = self._stat(stats, "Images/s")
        self.eta_label = self._stat(stats, "ETA")
        self.elapsed_label = self._stat(stats, "Elapsed")
        stats.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.state_label = QLabel("Idle.")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return stats

    def _build_plot(self) -> None:
        """The train / test bits-per-dimension curves."""
        self.plot = pg.PlotWidget()
        self.plot.setTitle("Bits per dimension (lower is better)", size="10pt")
        self.plot.setLabel("left", "bits/dim")
        self.plot.setLabel("bottom", "optimizer step")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.train_curve = self.plot.plot([], [], pen=pg.mkPen(TRAIN_COLOR, width=2), name="train (batch mean)")
        self.test_curve = self.plot.plot([], [], pen=pg.mkPen(TEST_COLOR, width=2), symbol="o", symbolSize=6,
                                         symbolBrush=TEST_COLOR, symbolPen=None, name="test")
        self._theme_plot()

    def _build_samples_and_log(self) -> QSplitter:
        """Sample preview and trainer log under the curves."""
        self.sample_view = pg.GraphicsLayoutWidget()
        self.sample_view.setBackground("#202124")
        self.sample_title = self.sample_view.addLabel("Samples appear here during training", color="#ddd",
                                                      size="9pt")
        self.sample_view.nextRow()
        self.sample_box = self.sample_view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.sample_item = pg.ImageItem(axisOrder="row-major")
        self.sample_box.addItem(self.sample_item)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Messages from the trainer")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.sample_view)
        bottom.addWidget(self.log)
        bottom.setSizes([400, 400])
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.plot)
        right_split.addWidget(bottom)
        right_split.setSizes([380, 320])
        return right_split

    def _wire(self) -> None:
        """Every setting re-validates the form when it changes."""
        for box in (self.size_box, self.width_box, self.blocks, self.scales, self.max_width, self.batch, self.steps,
                    self.eval_every, self.eval_images, self.sample_every, self.n_samples, self.checkpoint_every):
            box.valueChanged.connect(self._validate)
        self.lr.valueChanged.connect(self._validate)
        for combo in (self.norm, self.crop, self.device):
            combo.currentIndexChanged.connect(self._validate)
        for edit in (self.folder, self.out):
            edit.textChanged.connect(self._validate)
        self.use_photos.toggled.connect(self._validate)
        self.resume_box.toggled.connect(self._resume_toggled)

    def _theme_plot(self) -> None:
        """Plot colours from the widget palette, so the curves sit in light and dark themes alike."""
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text).name()
        base = pal.color(QPalette.ColorRole.Base)
        self.plot.setBackground(base)
        self.plot.setTitle("Bits per dimension (lower is better)", color=text, size="10pt")
        self.plot.setLabel("left", "bits/dim", color=text)
        self.plot.setLabel("bottom", "optimizer step", color=text)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen(text)
            self.plot.getAxis(axis).setPen(pal.color(QPalette.ColorRole.Mid))
        self.legend.setLabelTextColor(text)
        self.legend.setBrush(pg.mkBrush(base.red(), base.green(), base.blue(), 220))
        self.legend.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "legend"):
            self._theme_plot()
        super().changeEvent(event)

    @staticmethod
    def _stat(row: QHBoxLayout, caption: str) -> QLabel:
        box = QVBoxLayout()
        box.setSpacing(0)
        cap = QLabel(caption)
        cap.setStyleSheet("font-size: 8pt;")
        _muted(cap)
        value = QLabel("—")
        value.setStyleSheet("font-size: 12pt; font-weight: 600;")
        value.setMinimumWidth(70)
        box.addWidget(cap)
        box.addWidget(value)
        row.addLayout(box)
        return value

    # ================================================================== settings
    def _browse_data(self) -> None:
        folder = dialogs.get_existing_folder(self, "training-data", "Folder of training images",
                                             start=self.folder.text().strip() or None)
        if folder:
            self.folder.setText(folder)
            self.use_folder.setChecked(True)

    def _browse_init(self) -> None:
        path = dialogs.get_open_file(self, "model", "Start the first scales from a trained model",
                                     dialogs.MODEL_FILTER)
        if path:  # a config.json beside the weights is read as its model folder (nvp_core.io)
            self.init_from.setText(path)

    def _browse_out(self) -> None:
        current = Path(self.out.text().strip() or dialogs.folder_for("training-output"))
        start = next((p for p in (current, *current.parents) if p.is_dir()), Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Output folder (checkpoints and model)", str(start))
        if folder:
            self.out.setText(folder)
            dialogs.remember_folder("training-output", Path(folder).parent, is_file=False)

    def data_source(self) -> str:
        return self.builtin.currentData() if self.use_photos.isChecked() else self.folder.text().strip()

    def config(self) -> TrainConfig:
        """The TrainConfig the form describes; ConfigError (naming the field) when invalid."""
        return TrainConfig(
            data=self.data_source() or "",
            size=self.size_box.value(),
            out=self.out.text().strip(),
            steps=self.steps.value(),
            batch_size=self.batch.value(),
            lr=self.lr.value(),
            width=self.width_box.value(),
            blocks=self.blocks.value(),
            scales=self.scales.value(),
            max_width=self.max_width.value(),
            norm=self.norm.currentData(),
            crop=self.crop.currentData(),
            device=self.device.currentData(),
            eval_every=self.eval_every.value(),
            eval_images=self.eval_images.value(),
            sample_every=self.sample_every.value(),
            n_samples=self.n_samples.value(),
            checkpoint_every=self.checkpoint_every.value(),
            resume=self.resume_box.isChecked(),
            init_from=self.init_from.text().strip(),
            command="explorer training tab",
        )

    def set_config(self, cfg: TrainConfig) -> None:
        """Fill the form from a TrainConfig (resume: the run's own settings)."""
        if cfg.data in BUILTIN_DATASETS:
            self.builtin.setCurrentIndex(self.builtin.findData(cfg.data))
            self.use_photos.setChecked(True)
        else:
            self.use_folder.setChecked(True)
            self.folder.setText(cfg.data)
        for box, value in ((self.size_box, cfg.size), (self.width_box, cfg.width), (self.blocks, cfg.blocks),
                           (self.scales, cfg.scales), (self.max_width, cfg.max_width), (self.batch, cfg.batch_size),
                           (self.eval_every, cfg.eval_every), (self.eval_images, cfg.eval_images),
                           (self.sample_every, cfg.sample_every), (self.n_samples, cfg.n_samples),
                           (self.checkpoint_every, cfg.checkpoint_every)):
            box.setValue(value)
        self.steps.setValue(max(self.steps.value(), cfg.steps))
        self.lr.setValue(cfg.lr)
        for combo, value in ((self.norm, cfg.norm), (self.crop, cfg.crop)):
            i = combo.findData(value)
            if i >= 0:
                combo.setCurrentIndex(i)
        self.init_from.setText(cfg.init_from)
        self._extra = {k: getattr(cfg, k) for k in ("seed", "n_train_crops", "n_test_crops", "flip")}

    def _structural_widgets(self) -> list[QWidget]:
        """Settings a resumed run must keep (nvp_core.train.STRUCTURAL): locked while resuming."""
        return [self.use_photos, self.builtin, self.use_folder, self.folder, self.folder_browse, self.crop, self.size_box,
                self.width_box, self.blocks, self.scales, self.max_width, self.norm, self.batch, self.init_from,
                self.init_browse]

    def _resume_toggled(self, on: bool) -> None:
        for w in self._structural_widgets():
            w.setEnabled(not on)
        if on:
            try:
                self.set_config(load_train_config(self.out.text().strip()))
            except (nc.NVPError, OSError, KeyError) as exc:
                self._log(f"Cannot read the run to resume: {exc}")
        self._validate()

    def problem_text(self) -> str | None:
        """Why Start is disabled (None when the settings are usable)."""
        if self.use_folder.isChecked():
            folder = self.folder.text().strip()
            if not folder:
                return "Choose a folder of training images, or use a built-in data set."
            if not Path(folder).expanduser().is_dir():
                return f"The data folder {folder} does not exist."
        if not self.out.text().strip():
            return "Choose an output folder for checkpoints and the model."
        try:
            self.config()
        except nc.NVPError as exc:
            return str(exc)
        return None

    def _validate(self, *_: object) -> None:
        size, scales = self.size_box.value(), self.scales.value()
        levels = scales or FlowConfig.default_scales(size)
        m = 2 ** (levels - 1)
        last = min(self.width_box.value() * 2 ** (levels - 1), self.max_width.value())
        self.model_hint.setText(f"L = {levels} levels, z<sup>(1)</sup>…z<sup>({levels})</sup>; the size must be "
                                f"a multiple of {m}. ResNet width {self.width_box.value()} → {last} at the last scale.")
        ckpt = Path(self.out.text().strip() or ".") / CHECKPOINT_NAME
        if ckpt.is_file():
            self.out_hint.setText("This folder holds a training run." if not self.resume_box.isChecked()
                                  else "Resuming: model and data settings come from the run.")
            self.out_hint.setStyleSheet("")
        else:
            self.out_hint.setText("A new run (the folder is created)." if not self.resume_box.isChecked()
                                  else "No checkpoint here to resume from.")
            self.out_hint.setStyleSheet("" if not self.resume_box.isChecked() else f"color: {ERROR_COLOR};")
        problem = self.problem_text()
        if problem is None and self.resume_box.isChecked() and not ckpt.is_file():
            problem = f"Nothing to resume: no {CHECKPOINT_NAME} in the output folder."
        if problem is None and not self.resume_box.isChecked() and ckpt.is_file():
            problem = ("The output folder already holds a run: tick Resume to continue it "
                       "(raise Steps to train longer), or choose a new folder.")
        note = problem is not None and "already holds a run" in problem
        self.problem.setStyleSheet(f"color: {NOTE_COLOR};" if note else f"color: {ERROR_COLOR};")
        self.problem.setText(problem or "")
        self._settings_ok = problem is None
        self._update_buttons()

    # ================================================================== run control
    @property
    def running(self) -> bool:
        return self.train_thread is not None

    def start(self) -> None:
        """Start (or resume) training with the form's settings."""
        if self.running:
            return
        self._validate()
        if not self._settings_ok:
            self._set_state(self.problem.text(), error=True)
            return
        try:
            cfg = self.config()
            for k, v in getattr(self, "_extra", {}).items():
                if self.resume_box.isChecked():
                    setattr(cfg, k, v)
            cfg.validate()
            worker = TrainWorker(cfg)
        except nc.NVPError as exc:
            self._set_state(str(exc), error=True)
            return
        self.events.clear()
        self.train_points.clear()
        self.test_points.clear()
        self.train_curve.setData([], [])
        self.test_curve.setData([], [])
        self.model_path = None
        self.checkpoint_path = None
        self.paused = False
        thread = QThread(self)
        thread.setObjectName("trainer")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._on_event)
        worker.ended.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_done)
        self.worker, self.train_thread = worker, thread
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(0)
        self.progress.setFormat("loading data…")
        self._log(f"Starting: {cfg.data}, {cfg.size}×{cfg.size}, width {cfg.width}, {cfg.blocks} blocks, "
                  f"batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.steps} steps → {cfg.out}")
        self._set_state("Loading data and building the model…")
        self._update_buttons()
        thread.start()

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self.paused:
            self.worker.trainer.resume()
            self.paused = False
            self._set_state("Training…")
            self._log("Resumed.")
        else:
            self.worker.trainer.pause()
            self.paused = True
            self._set_state("Pausing after this step…")
        self._update_buttons()

    def pause(self) -> None:
        if self.running and not self.paused:
            self.toggle_pause()

    def resume(self) -> None:
        if self.running and self.paused:
            self.toggle_pause()

    def stop(self) -> None:
        """Ask the trainer to stop after this step; it saves a checkpoint and the model."""
        if not self.running:
            return
        self.worker.trainer.request_stop()
        self.paused = False
        self._set_state("Stopping: finishing the step and saving a checkpoint…")
        self.stop_button.setEnabled(False)
        self.pause_button.setEnabled(False)

    def shutdown(self, timeout_s: float = 300.0) -> bool:
        """Stop training cleanly (checkpoint + model) and wait for the thread.

        Called from the main window's closeEvent. The trainer stops within one
        step (or after its data loading); while waiting, the window keeps
        repainting (user input is held back, so nothing re-enters), and the wait
        is bounded so a hung data loader cannot hang the exit. Returns True when
        no training thread is left running.
        """
        thread = self.train_thread
        if thread is None:
            return True
        self._log("Window closing: stopping the run and saving a checkpoint…")
        self.stop()
        deadline = time.monotonic() + timeout_s
        while not thread.wait(50):
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            if time.monotonic() > deadline:
                self._log(f"The trainer did not stop within {timeout_s:.0f} s.")
                return False
        # Deliver the last queued events (checkpoint, stopped) before tearing down.
        QCoreApplication.sendPostedEvents(self, 0)
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if self.train_thread is thread:
            self._on_thread_done(thread)
        return True

    # ================================================================== events
    @Slot(object)
    def _on_event(self, ev: TrainEvent) -> None:
        if self.worker is None or self.sender() is not self.worker:
            return
        self.last_event = ev
        self.events.append(ev.kind)
        kind = ev.kind
        if ev.total_steps:
            self.progress.setMaximum(ev.total_steps)
            self.progress.setValue(ev.step)
            self.progress.setFormat("%v / %m steps (%p%)")
        self.step_label.setText(f"{ev.step:,} / {ev.total_steps:,}" if ev.total_steps else f"{ev.step:,}")
        if kind == "start":
            self._log(ev.message or "Started.")
            self._set_state("Training…")
        elif kind == "progress":
            if ev.message == "paused":
                self._set_state(f"Paused at step {ev.step:,}. Resume or Stop.")
                self._log(f"Paused at step {ev.step}.")
            elif not self.paused and not self.worker.trainer.stop_requested:
                self._set_state("Training…")
            if ev.bpd is not None:
                self.train_points.append((ev.step, float(ev.bpd)))
                xs, ys = zip(*self.train_points)
                self.train_curve.setData(np.array(xs, float), np.array(ys, float))
                self.train_label.setText(f"{ev.bpd:.3f}")
            if ev.images_per_s:
                self.speed_label.setText(f"{ev.images_per_s:,.1f}")
            self.eta_label.setText(format_duration(ev.eta_s))
            self.elapsed_label.setText(format_duration(ev.elapsed_s))
        elif kind == "eval":
            if ev.test_bpd is not None:
                self.test_points.append((ev.step, float(ev.test_bpd)))
                xs, ys = zip(*self.test_points)
                self.test_curve.setData(np.array(xs, float), np.array(ys, float))
                # The test score is measured every N steps: say when, so it never reads as current.
                self.test_label.setText(f"{ev.test_bpd:.3f} @ {ev.step:,}")
                self.test_label.setToolTip(f"Measured at step {ev.step:,} on held-out images")
                self._log(f"step {ev.step}: test {ev.test_bpd:.4f} bits/dim")
        elif kind == "samples":
            if ev.samples is not None and len(ev.samples):
                self.samples = ev.samples
                sheet = export.grid(list(ev.samples), gap=1)
                self.sample_item.setImage(sheet, autoLevels=False, levels=(0, 255))
                self.sample_box.autoRange(padding=0.02)
                self.sample_title.setText(f"Samples at step {ev.step:,}")
        elif kind == "checkpoint":
            self.checkpoint_path = ev.path
            self._log(f"step {ev.step}: checkpoint saved ({ev.path})")
        elif kind in ("done", "stopped"):
            self.model_path = ev.path
            self.progress.setFormat("done" if kind == "done" else f"stopped at step {ev.step:,}")
            self._log((ev.message or kind) + f". Model: {ev.path}")
            self._set_state(("Finished" if kind == "done" else "Stopped") +
                            f" at step {ev.step:,}. The model is in {ev.path}; resume from its folder any time.")
        elif kind == "error":
            self.progress.setFormat("error")
            self._log(f"Error: {ev.message}")
            self._set_state(ev.message or "Training failed.", error=True)
        self._update_buttons()

    @Slot()
    def _on_thread_done(self, thread: QThread | None = None) -> None:
        thread = thread or self.sender()
        if thread is not self.train_thread:
            return
        self.worker.deleteLater()
        thread.deleteLater()
        self.worker, self.train_thread = None, None
        self.paused = False
        self._validate()  # the folder now holds a checkpoint: offer resume

    def _open_model(self) -> None:
        if self.model_path:
            self.open_model_requested.emit(self.model_path)

    # ================================================================== misc
    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")

    def _set_state(self, text: str, error: bool = False) -> None:
        self.state_label.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.state_label.setText(text)
        self.status_message.emit(text)

    def _update_buttons(self) -> None:
        running = self.running
        # The run reads its configuration once, at Start: editing the form meanwhile would only mislead.
        self.settings_pane.setEnabled(not running)
        self.locked_note.setVisible(running)
        stopping = running and self.worker.trainer.stop_requested
        self.start_button.setEnabled(not running and getattr(self, "_settings_ok", False))
        self.start_button.setText("Resume run" if self.resume_box.isChecked() else "Start")
        self.pause_button.setEnabled(running and not stopping)
        self.pause_button.setText("Resume" if self.paused else "Pause")
        self.stop_button.setEnabled(running and not stopping)
        self.open_button.setEnabled(bool(self.model_path) and not running)
