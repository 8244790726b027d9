"""Canvas: sample the flow at any size (1×, 2×, 10× the training size or custom).

The flow is convolutional, so latents with the shapes of a bigger image decode
into a bigger "texture" of the data set (DESIGN.md §1, Extrapolation). The work
runs as a :class:`CanvasJob` on its own thread (nvp_core samples, reports
progress per decoded scale and stops on Cancel); this panel only asks and shows.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
    QWidget,
)

import nvp_core as nc

from .. import export
from .canvas_form import CanvasForm
from .canvas_job import CanvasJob
from .canvas_view import CanvasView


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
        self.form = CanvasForm()
        f = self.form  # the controls keep their names on the panel (tests, the session mirror)
        self.preset, self.width_box, self.height_box = f.preset, f.width_box, f.height_box
        self.size_hint, self.temperature, self.seed, self.count = f.size_hint, f.temperature, f.seed, f.count
        self.canvas_view = CanvasView()
        controls = QVBoxLayout()
        controls.addWidget(self.form)
        controls.addLayout(self._build_run_controls())
        controls.addWidget(self.progress)
        controls.addWidget(self.status)
        controls.addWidget(self._build_result_box())
        controls.addStretch(1)
        side = QWidget()
        side.setLayout(controls)
        side.setFixedWidth(290)
        layout = QHBoxLayout(self)
        layout.addWidget(side)
        layout.addWidget(self.canvas_view, 1)
        self.form.changed.connect(self._store_settings)
        self._update_buttons()

    def _build_run_controls(self) -> QHBoxLayout:
        """Generate / Cancel, and the progress bar and status line under them."""
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
        return run_row

    def _build_result_box(self) -> QGroupBox:
        """Which image to show, Save PNG / Save all, Fit view."""
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
        return view_box

    # ------------------------------------------------------------------ model
    def set_flow(self, flow: nc.RealNVP | None) -> None:
        """A model was (re)loaded: cancel any job on the old one, reset sizes."""
        if self._job is not None:
            self.cancel()
        self.flow = flow
        self._applying = True  # resetting the controls must not overwrite the session's settings
        self.form.set_model(flow)
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

    def canvas_size(self) -> tuple[int, int]:
        """(width, height) snapped to the model's multiple."""
        return self.form.canvas_size()

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
        self.form.snap()
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
            self.canvas_view.set_placeholder("Generating…")
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
            self.canvas_view.set_placeholder("Nothing generated yet")
            self.progress.setFormat("failed")
            self._set_status(message, error=True)

    @Slot()
    def _on_cancelled(self) -> None:
        if self._sender_is_current():
            self.canvas_view.set_placeholder("Cancelled")
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self._set_status("Cancelled; the previous result is kept." if self.shown is not None else "Cancelled.")

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
        self.shown = arr
        self.canvas_view.show_image(arr)
        self._update_buttons()

    def fit_view(self) -> None:
        self.canvas_view.fit()

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
