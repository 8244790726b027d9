"""Canvas: sample the flow at any size (1×, 2×, 10× the training size or custom).

The flow is convolutional, so latents with the shapes of a bigger image decode
into a bigger "texture" of the data set (DESIGN.md §1, Extrapolation). A 10×
canvas is hundreds of times the work of one sample, so it runs on its own
cancellable worker thread rather than the shared latest-wins renderer: the
window stays live, a progress bar moves per coupling network, and Cancel stops
the job at the next network call (its result is dropped).
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QCoreApplication, QObject, QPointF, Qt, QThread, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar,
    QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)

import nvp_core as nc
from nvp_core.layers.resnet import ResNet

from .. import export

MAX_SIDE = 4096
PRESETS = (("1×", 1), ("2×", 2), ("10×", 10))


class _Cancelled(Exception):
    """Raised inside the flow (from a module hook) to abandon a job."""


def describe_failure(exc: BaseException, width: int, height: int) -> str:
    """A message a user can act on, for anything a generation job can raise."""
    text = str(exc)
    oom = isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and any(k in text.lower() for k in ("out of memory", "can't allocate", "cannot allocate", "not enough memory"))
    )
    if oom:
        return (f"Out of memory generating a {width}×{height} canvas. "
                "Try a smaller size, fewer images, or the CPU if the GPU is small.")
    if isinstance(exc, nc.NVPError):
        return text
    return f"Generation failed: {type(exc).__name__}: {text}"


class CanvasJob(QObject):
    """Samples ``count`` images of ``width``×``height`` on a worker thread.

    Image ``i`` uses seed ``seed + i``, so the first image of a batch equals the
    single image for that seed, and any image can be regenerated alone.
    Progress is counted in coupling-network calls (roughly equal work each:
    area shrinks 4× per level while width doubles), observed through forward
    pre-hooks that fire only on this job's thread; the same hooks raise to
    cancel, so a cancel takes effect within one network call.
    """

    progress = Signal(int, int)          # units done, units total
    image_ready = Signal(int, object)    # index, uint8 (H, W, 3)
    finished = Signal(object)            # list of uint8 arrays
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, flow: nc.RealNVP, width: int, height: int, temperature: float, seed: int,
                 count: int) -> None:
        super().__init__()
        self.flow = flow
        self.width, self.height = int(width), int(height)
        self.temperature = float(temperature)
        self.seed, self.count = int(seed), int(count)
        self._cancel = threading.Event()
        self._thread_id: int | None = None
        self._done = 0
        self._nets = [m for m in flow.modules() if isinstance(m, ResNet)]
        self.total = self.count * max(1, len(self._nets))

    def cancel(self) -> None:
        """Thread-safe: ask the job to stop at its next network call."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def _hook(self, module: torch.nn.Module, args: tuple) -> None:
        if threading.get_ident() != self._thread_id:
            return  # another thread (the explorer's renderer) shares this flow
        if self._cancel.is_set():
            raise _Cancelled
        self._done += 1
        self.progress.emit(self._done, self.total)

    @Slot()
    def run(self) -> None:
        self._thread_id = threading.get_ident()
        handles = [m.register_forward_pre_hook(self._hook) for m in self._nets]
        images: list[np.ndarray] = []
        try:
            self.flow.check_size(self.height, self.width)
            for i in range(self.count):
                if self._cancel.is_set():
                    raise _Cancelled
                images.append(self._one(self.seed + i))
                self._done = (i + 1) * max(1, len(self._nets))
                self.progress.emit(self._done, self.total)
                self.image_ready.emit(i, images[-1])
        except _Cancelled:
            self.cancelled.emit()
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message; the panel survives
            if self.flow.device.type == "cuda":
                torch.cuda.empty_cache()
            self.failed.emit(describe_failure(exc, self.width, self.height))
            return
        finally:
            for h in handles:
                h.remove()
        self.finished.emit(images)

    def _one(self, seed: int) -> np.ndarray:
        flow = self.flow
        with torch.inference_mode():
            zs = flow.sample_latents(1, self.height, self.width, self.temperature, generator=seed)
            if flow.training:  # never the case for a loaded model, but never decode with batch stats
                with flow.evaluating():
                    x = flow.decode(zs)
            else:
                x = flow.decode(zs)
            return nc.to_numpy_image(x[0])


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


class CanvasPanel(QWidget):
    """Width/height/presets, temperature, seed, count → Generate → zoomable view → Save."""

    status_message = Signal(str)

    def __init__(self, session: object, renderer: object = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.renderer = renderer  # unused: canvases run on their own cancellable job
        self.flow: nc.RealNVP | None = None
        self.images: list[np.ndarray] = []
        self.shown: np.ndarray | None = None
        self._meta: dict = {}
        self._job: CanvasJob | None = None
        self._thread: QThread | None = None
        self._started = 0.0
        self._applying = False
        self._build()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.set_flow(getattr(session, "flow", None))

    # ------------------------------------------------------------------ UI
    def _build(self) -> None:
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
        dice = QPushButton("Random")
        dice.setToolTip("Pick a random seed")
        dice.clicked.connect(lambda: self.seed.setValue(int(np.random.default_rng().integers(0, 2**31 - 1))))
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setToolTip("Number of images (shown as a grid)")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Preset:", self.preset)
        form.addRow("Width:", self.width_box)
        form.addRow("Height:", self.height_box)
        form.addRow("", self.size_hint)
        form.addRow("Temperature:", self.temperature)
        form.addRow("Seed:", seed_row)
        form.addRow("Count:", self.count)
        settings = QGroupBox("Canvas")
        settings.setLayout(form)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        run_row = QHBoxLayout()
        run_row.addWidget(self.generate_button, 1)
        run_row.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.show_combo = QComboBox()
        self.show_combo.currentIndexChanged.connect(self._show_selected)
        self.save_button = QPushButton("Save PNG…")
        self.save_button.clicked.connect(self._save_dialog)
        self.save_all_button = QPushButton("Save all…")
        self.save_all_button.setToolTip("Each image as its own numbered PNG")
        self.save_all_button.clicked.connect(self._save_all_dialog)
        self.fit_button = QPushButton("Fit view")
        self.fit_button.clicked.connect(self.fit_view)
        view_form = QFormLayout()
        view_form.addRow("Show:", self.show_combo)
        out_row = QHBoxLayout()
        out_row.addWidget(self.save_button)
        out_row.addWidget(self.save_all_button)
        view_box = QGroupBox("Result")
        view_layout = QVBoxLayout(view_box)
        view_layout.addLayout(view_form)
        view_layout.addLayout(out_row)
        view_layout.addWidget(self.fit_button)

        controls = QVBoxLayout()
        controls.addWidget(settings)
        controls.addLayout(run_row)
        controls.addWidget(self.progress)
        controls.addWidget(self.status)
        controls.addWidget(view_box)
        controls.addStretch(1)
        side = QWidget()
        side.setLayout(controls)
        side.setFixedWidth(290)

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
        right = QVBoxLayout()
        right.addWidget(self.graphics, 1)
        right.addWidget(self.readout)

        layout = QHBoxLayout(self)
        layout.addWidget(side)
        layout.addLayout(right, 1)

        self.preset.currentIndexChanged.connect(self._preset_changed)
        for box in (self.width_box, self.height_box, self.seed, self.count):
            box.valueChanged.connect(self._store_settings)
        self.temperature.valueChanged.connect(self._store_settings)
        self.preset.currentIndexChanged.connect(self._store_settings)
        self._update_buttons()

    # ------------------------------------------------------------------ model
    def set_flow(self, flow: nc.RealNVP | None) -> None:
        """A model was (re)loaded: cancel any job on the old one, reset sizes."""
        if self._job is not None:
            self.cancel()
        self.flow = flow
        self._applying = True  # resetting the controls must not overwrite the session's settings
        self.preset.blockSignals(True)
        self.preset.clear()
        if flow is None:
            self.size_hint.setText("No model loaded.")
            self.preset.addItem("Custom", None)
        else:
            m, base = flow.multiple, flow.config.image_size
            for box in (self.width_box, self.height_box):
                box.set_multiple(m)
            for label, factor in PRESETS:
                side = base * factor
                if side <= MAX_SIDE:
                    self.preset.addItem(f"{label}  ({side}×{side})", factor)
            self.preset.addItem("Custom", None)
            self.size_hint.setText(
                f"Sides snap to multiples of {m} = 2<sup>L−1</sup> (L = {flow.config.scales} levels). "
                f"Trained at {base}×{base}."
            )
        self.preset.blockSignals(False)
        self.preset.setCurrentIndex(0)
        self._preset_changed()
        self._applying = False
        self.apply_settings()
        self._update_buttons()

    # ------------------------------------------------------------------ session
    def apply_settings(self) -> None:
        """Take width/height/temperature/seed/count from ``session.canvas`` when the
        session has one (a reopened session file); width/height 0 mean the training size."""
        st = getattr(self.session, "canvas", None)
        if st is None:
            return
        self._applying = True
        try:
            for box, name in ((self.temperature, "temperature"), (self.seed, "seed"), (self.count, "count")):
                if hasattr(st, name):
                    box.setValue(type(box.value())(getattr(st, name)))
            w, h = int(getattr(st, "width", 0) or 0), int(getattr(st, "height", 0) or 0)
            if self.flow is not None and w > 0 and h > 0:
                self.width_box.setValue(self.width_box.snapped(w))
                self.height_box.setValue(self.height_box.snapped(h))
        finally:
            self._applying = False
        self._store_settings()

    def _store_settings(self, *_: object) -> None:
        """Mirror the controls into ``session.canvas`` so a saved session keeps them."""
        st = getattr(self.session, "canvas", None)
        if st is None or self._applying or self.flow is None:
            return
        w, h = self.canvas_size()
        base = self.flow.config.image_size
        values = {"width": 0 if (w, h) == (base, base) else w, "height": 0 if (w, h) == (base, base) else h,
                  "temperature": float(self.temperature.value()), "seed": int(self.seed.value()),
                  "count": int(self.count.value())}
        for name, value in values.items():
            if hasattr(st, name):
                try:
                    setattr(st, name, value)
                except (AttributeError, TypeError):  # a frozen settings object: leave it
                    return

    def current_image(self) -> np.ndarray | None:
        """What the view shows (one image or the grid), for the window's "export view"."""
        return self.shown

    def _preset_changed(self, *_: object) -> None:
        factor = self.preset.currentData()
        if factor is None or self.flow is None:
            return
        side = self.flow.config.image_size * factor
        for box in (self.width_box, self.height_box):
            box.blockSignals(True)
            box.setValue(side)
            box.blockSignals(False)

    def _size_changed(self, *_: object) -> None:
        """Editing a side by hand selects the matching preset, or Custom."""
        if self.flow is None:
            return
        w, h = self.width_box.value(), self.height_box.value()
        target = self.preset.count() - 1  # Custom
        for i in range(self.preset.count()):
            f = self.preset.itemData(i)
            if f is not None and w == h == self.flow.config.image_size * f:
                target = i
        if target != self.preset.currentIndex():
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(target)
            self.preset.blockSignals(False)

    def canvas_size(self) -> tuple[int, int]:
        """(width, height) snapped to the model's multiple."""
        return self.width_box.snapped(), self.height_box.snapped()

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        return self._thread is not None

    def generate(self) -> None:
        """Start a job with the current settings (ignored while one runs)."""
        if self.busy:
            return
        if self.flow is None:
            self._set_status("Load a model first.", error=True)
            return
        self.width_box.snap()
        self.height_box.snap()
        w, h = self.canvas_size()
        job = CanvasJob(self.flow, w, h, self.temperature.value(), self.seed.value(), self.count.value())
        thread = QThread(self)
        thread.setObjectName("canvas-job")
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.progress.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        for end in (job.finished, job.failed, job.cancelled):
            end.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # QThread.quit is thread-safe
        thread.finished.connect(self._on_thread_done)
        self._job, self._thread = job, thread
        self._meta = {"width": w, "height": h, "seed": job.seed, "temperature": job.temperature,
                      "count": job.count}
        self._started = time.perf_counter()
        self.progress.setRange(0, job.total)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        if self.shown is None:
            self.placeholder.setText("Generating…")
        n = job.count
        self._set_status(f"Generating {n} image{'s' * (n > 1)} of {w}×{h}…")
        self._update_buttons()
        thread.start()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._set_status("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _sender_is_current(self) -> bool:
        return self.sender() is self._job and self._job is not None

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self._sender_is_current() or self._job.is_cancelled:
            return
        self.progress.setValue(done)
        per = max(1, total // max(1, self._job.count))
        if self._job.count > 1:
            self.progress.setFormat(f"image {min(done // per + 1, self._job.count)}/{self._job.count} — %p%")

    @Slot(object)
    def _on_finished(self, images: list) -> None:
        if not self._sender_is_current() or self._job.is_cancelled:
            return  # a cancelled job's result is dropped
        secs = time.perf_counter() - self._started
        self.images = list(images)
        self.show_combo.blockSignals(True)
        self.show_combo.clear()
        if len(images) > 1:
            self.show_combo.addItem(f"All {len(images)} (grid)", -1)
        for i in range(len(images)):
            self.show_combo.addItem(f"Image {i + 1} (seed {self._meta['seed'] + i})", i)
        self.show_combo.blockSignals(False)
        self.show_combo.setCurrentIndex(0)
        self._show_selected()
        self.fit_view()
        n = len(images)
        self.progress.setFormat("done")
        self._set_status(f"{n} image{'s' * (n > 1)} of {self._meta['width']}×{self._meta['height']} "
                         f"in {secs:.1f} s (T = {self._meta['temperature']:.2f}).")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self._sender_is_current():
            self.placeholder.setText("Nothing generated yet")
            self.progress.setFormat("failed")
            self._set_status(message, error=True)

    @Slot()
    def _on_cancelled(self) -> None:
        if self._sender_is_current():
            self.placeholder.setText("Cancelled")
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self._set_status("Cancelled; the previous result is kept.")

    @Slot()
    def _on_thread_done(self) -> None:
        thread = self.sender()
        if thread is not self._thread:
            return
        self._job.deleteLater()
        thread.deleteLater()
        self._job, self._thread = None, None
        self._update_buttons()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel a running job and wait for its thread (main window close, app quit)."""
        thread = self._thread
        if thread is None:
            return
        if self._job is not None:
            self._job.cancel()
        thread.quit()
        thread.wait(timeout_ms)
        if thread is self._thread:
            if self._job is not None:
                self._job.deleteLater()
            self._job, self._thread = None, None
            self._update_buttons()

    # ------------------------------------------------------------------ view
    def _show_selected(self, *_: object) -> None:
        if not self.images:
            return
        idx = self.show_combo.currentData()
        arr = export.grid(self.images) if idx in (None, -1) and len(self.images) > 1 else self.images[max(0, idx or 0)]
        old = None if self.shown is None else self.shown.shape
        self.shown = arr
        self.placeholder.hide()
        self.image_item.setImage(arr, autoLevels=False, levels=(0, 255))
        if old != arr.shape:
            self.fit_view()
        self._update_buttons()

    def fit_view(self) -> None:
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

    # ------------------------------------------------------------------ saving
    def save_image(self, path: str | Path) -> Path:
        """Write what the view shows (one image or the grid) as a PNG."""
        if self.shown is None:
            raise nc.NVPError("nothing to save yet: generate a canvas first")
        return export.save_png(self.shown, path)

    def save_all(self, folder: str | Path) -> list[Path]:
        if not self.images:
            raise nc.NVPError("nothing to save yet: generate a canvas first")
        prefix = f"canvas_{self._meta['width']}x{self._meta['height']}_seed{self._meta['seed']}"
        return export.save_sequence(self.images, folder, prefix=prefix)

    def _default_name(self) -> str:
        m = self._meta
        return f"canvas_{m.get('width')}x{m.get('height')}_seed{m.get('seed')}.png"

    def _save_dialog(self) -> None:
        from .. import dialogs  # the remembered folder, else Pictures (not the current directory)

        path = dialogs.get_save_file(self, "canvas-save", "Save canvas", self._default_name(), "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            self._set_status(f"Saved {self.save_image(path)}")
        except (nc.NVPError, OSError) as exc:
            self._set_status(str(exc), error=True)

    def _save_all_dialog(self) -> None:
        from .. import dialogs

        folder = dialogs.get_existing_folder(self, "canvas-folder", "Save every image into folder")
        if not folder:
            return
        try:
            paths = self.save_all(folder)
            self._set_status(f"Saved {len(paths)} PNGs into {folder}")
        except (nc.NVPError, OSError) as exc:
            self._set_status(str(exc), error=True)

    # ------------------------------------------------------------------ misc
    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #e5533d;" if error else "")
        self.status.setText(text)
        self.status_message.emit(text)

    def _update_buttons(self) -> None:
        busy = self.busy
        self.generate_button.setEnabled(not busy and self.flow is not None)
        self.cancel_button.setEnabled(busy)
        has = self.shown is not None
        self.save_button.setEnabled(has)
        self.fit_button.setEnabled(has)
        self.save_all_button.setEnabled(len(self.images) > 1)
        self.show_combo.setEnabled(len(self.images) > 1)
