"""Manifold: eight anchors z1…z8 and three angles on the sphere through them (DESIGN.md §1).

    z = cos φ (cos φ′ (z1 cos φ″ + z2 sin φ″) + sin φ′ (z3 cos φ″ + z4 sin φ″))
      + sin φ (cos φ′ (z5 cos φ″ + z6 sin φ″) + sin φ′ (z7 cos φ″ + z8 sin φ″))

The decoded point follows the sliders while they are dragged: every change is
a latest-wins request to the render worker, so a slow frame never queues more.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMenu, QPushButton,
    QSplitter, QVBoxLayout, QWidget,
)

import nvp_core as nc

from .. import export
from ..dialogs import ExportDialog
from ..export import ExportOptions
from ..hub import Hub
from ..render import Job
from ..session import N_ANCHORS
from ..widgets import AnchorSlot, AngleControl, ImageView, section
from .encode import IMAGE_FILTER

ANGLE_NAMES = (("phi", "φ"), ("phi1", "φ′"), ("phi2", "φ″"))


class ManifoldPanel(QWidget):
    GRID_N = 8

    def __init__(self, hub: Hub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = hub.session
        self._frame_angles: tuple[float, float, float] | None = None
        self._awaiting = 0  # stamp of the last requested frame not yet shown (animation pacing)

        # ---- anchors
        self.slots: list[AnchorSlot] = []
        slots_grid = QGridLayout()
        slots_grid.setSpacing(4)
        for i in range(N_ANCHORS):
            slot = AnchorSlot(i)
            slot.dropped.connect(self.drop_on_slot)
            slot.clicked.connect(self._slot_menu)
            self.slots.append(slot)
            slots_grid.addWidget(slot, i // 4, i % 4)
        fill_images = QPushButton("From encoded images")
        fill_images.setToolTip("z1…z8 = the first eight images of the Encode tab")
        fill_images.clicked.connect(hub.fill_anchors_from_images)
        fill_samples = QPushButton("New samples")
        fill_samples.setToolTip("Eight fresh model samples")
        fill_samples.clicked.connect(lambda: hub.sample_anchors(list(range(N_ANCHORS)),
                                                                temperature=self.sample_t.value()))
        self.sample_t = QDoubleSpinBox()
        self.sample_t.setRange(0.0, 2.0)
        self.sample_t.setSingleStep(0.05)
        self.sample_t.setValue(0.8)
        self.sample_t.setPrefix("T = ")
        self.sample_t.setToolTip("Temperature of new sample anchors")
        fill_row = QHBoxLayout()
        fill_row.addWidget(fill_images)
        fill_row.addWidget(fill_samples)
        fill_row.addWidget(self.sample_t)

        # ---- angles
        self.controls: dict[str, AngleControl] = {}
        angles_box = QGroupBox("Angles (degrees)")
        al = QVBoxLayout(angles_box)
        for key, name in ANGLE_NAMES:
            ctl = AngleControl(name)
            ctl.setValue(getattr(self.session.angles, key))
            ctl.valueChanged.connect(lambda v, key=key: self._angle_changed(key, v))
            ctl.playToggled.connect(self._play_toggled)
            self.controls[key] = ctl
            al.addWidget(ctl)
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.1, 45.0)
        self.speed.setValue(3.0)
        self.speed.setSuffix("° / frame")
        self.speed.setToolTip("How far ▶ moves an angle per rendered frame")
        reset = QPushButton("Reset to z1")
        reset.clicked.connect(lambda: self.set_angles(0.0, 0.0, 0.0))
        row = QHBoxLayout()
        row.addWidget(QLabel("animation step"))
        row.addWidget(self.speed)
        row.addStretch(1)
        row.addWidget(reset)
        al.addLayout(row)
        self.weights = QLabel()
        self.weights.setStyleSheet("color: #9aa0a6; font-family: monospace; font-size: 11px;")
        self.weights.setWordWrap(True)
        al.addWidget(self.weights)

        # ---- grid and export
        out_box = QGroupBox("Grid and export")
        ol = QVBoxLayout(out_box)
        self.grid_btn = QPushButton(f"Render {self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")
        self.grid_btn.setToolTip("φ down the rows, φ′ across, both 0°…90°, at the current φ″ (one batch on the worker)")
        self.grid_btn.clicked.connect(self.render_grid)
        self.sweep_angle = QComboBox()
        for key, name in ANGLE_NAMES:
            self.sweep_angle.addItem(f"sweep {name} through 360°", key)
        sweep_btn = QPushButton("Export sweep…")
        sweep_btn.clicked.connect(self._export_sweep_dialog)
        save_btn = QPushButton("Save frame…")
        save_btn.clicked.connect(self._save_frame_dialog)
        ol.addWidget(self.grid_btn)
        row = QHBoxLayout()
        row.addWidget(self.sweep_angle, 1)
        row.addWidget(sweep_btn)
        ol.addLayout(row)
        ol.addWidget(save_btn)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(section("Anchors z1 … z8 (drop images, or click a slot)"))
        ll.addLayout(slots_grid)
        ll.addLayout(fill_row)
        ll.addWidget(angles_box)
        ll.addWidget(out_box)
        ll.addStretch(1)
        left.setFixedWidth(400)

        self.view = ImageView("z(φ, φ′, φ″)", placeholder="fill the eight anchors")
        self.grid_view = ImageView(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)",
                                   placeholder="press “Render grid”")
        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(self.grid_view)
        split.setSizes([600, 500])

        lay = QHBoxLayout(self)
        lay.addWidget(left)
        lay.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(30)
        self.timer.timeout.connect(self._tick)

        hub.anchors_changed.connect(self.refresh_anchors)
        hub.model_changed.connect(self._model_changed)
        hub.session_restored.connect(lambda: self.set_angles(*self.session.angles.as_tuple()))
        self.refresh_anchors()
        self._update_weights()

    # ---------------------------------------------------------------- anchors
    def refresh_anchors(self) -> None:
        for slot, a in zip(self.slots, self.session.anchors):
            if a is None:
                slot.set_empty()
            else:
                slot.set_anchor(a.thumbnail, a.label)
        self._update_weights()
        self.render()

    def drop_on_slot(self, slot: int, paths: list) -> None:
        self.hub.set_anchor_from_paths(slot, [str(p) for p in paths])

    def _slot_menu(self, slot: int) -> None:
        menu = QMenu(self)
        menu.addAction("Open image…", lambda: self._browse_slot(slot))
        sub = menu.addMenu("Encoded image")
        sub.setEnabled(bool(self.session.images))
        for i, e in enumerate(self.session.images):
            sub.addAction(e.name, lambda i=i: self.hub.set_anchor_from_image(slot, i))
        menu.addAction("New sample", lambda: self.hub.sample_anchors([slot], temperature=self.sample_t.value()))
        menu.addAction("Clear", lambda: self.hub.clear_anchor(slot))
        menu.exec(self.slots[slot].mapToGlobal(self.slots[slot].rect().bottomLeft()))

    def _browse_slot(self, slot: int) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Image for z{slot + 1}", self.hub.last_folder, IMAGE_FILTER)
        if path:
            self.drop_on_slot(slot, [path])

    def _model_changed(self) -> None:
        self.view.clear("encoding the anchors…")
        self.grid_view.clear("press “Render grid”")
        self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")

    # ---------------------------------------------------------------- angles
    def set_angles(self, phi: float, phi1: float, phi2: float) -> None:
        for key, v in zip(("phi", "phi1", "phi2"), (phi, phi1, phi2)):
            self.controls[key].setValue(v)

    def _angle_changed(self, key: str, value: float) -> None:
        setattr(self.session.angles, key, value)
        self._update_weights()
        self.render()

    def _update_weights(self) -> None:
        w = nc.sphere_weights(*self.session.angles.radians())
        self.weights.setText("weights  " + "  ".join(f"z{i + 1} {x:+.2f}" for i, x in enumerate(w)))

    # ---------------------------------------------------------------- rendering
    def render(self) -> None:
        s = self.session
        if s.flow is None or not s.anchors_complete:
            if s.flow is not None:
                self.view.clear("fill the eight anchors")
            return
        angles = s.angles.as_tuple()
        task = s.manifold_task()
        self._awaiting = self.hub.renderer.submit(
            "manifold", lambda job: (job.stamp, angles, task(job)), on_result=self._show, on_error=self._failed)

    def _failed(self, message: str) -> None:
        self._awaiting = 0
        self.hub.message.emit(message, "error")

    def _show(self, result: tuple[int, tuple[float, float, float], np.ndarray]) -> None:
        stamp, angles, img = result
        self._frame_angles = angles
        if stamp >= self._awaiting:
            self._awaiting = 0
        a, b, c = angles
        self.view.set_image(img, f"φ = {a:.1f}°   φ′ = {b:.1f}°   φ″ = {c:.1f}°")

    def frame_done(self) -> bool:
        """True once the newest requested frame is on screen (tests and the animation wait on it)."""
        return self._awaiting == 0

    def render_grid(self) -> None:
        s = self.session
        if s.flow is None or not s.anchors_complete:
            self.hub.message.emit("The grid needs a model and all eight anchors", "warning")
            return
        phi2 = s.angles.phi2  # clicking again while rendering simply replaces the request
        self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′) — rendering…")

        def done(img: np.ndarray) -> None:
            self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′) at φ″ = {phi2:.1f}°")
            self.grid_view.set_image(img, "rows: φ 0°→90°   columns: φ′ 0°→90°   (z1 top-left, z3 top-right, "
                                          "z5 bottom-left)")

        def failed(m: str) -> None:
            self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")
            self.hub.message.emit(m, "error")

        def progress(f: float, _text: str) -> None:
            self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′) — {f:.0%}")

        self.hub.renderer.submit("manifold-grid", s.manifold_grid_task(self.GRID_N), on_result=done,
                                 on_error=failed, on_progress=progress)

    # ---------------------------------------------------------------- animation
    def _play_toggled(self, _on: bool) -> None:
        if any(c.play.isChecked() for c in self.controls.values()):
            self.timer.start()
        else:
            self.timer.stop()

    def _tick(self) -> None:
        """Step every playing angle once the previous frame is on screen: smooth, never a backlog."""
        if self._awaiting:
            return
        for ctl in self.controls.values():
            if ctl.play.isChecked():
                ctl.step(self.speed.value())

    def hideEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        """Another tab is shown: stop animating, rendering frames nobody sees."""
        self.stop_animation()
        super().hideEvent(ev)

    def stop_animation(self) -> None:
        for ctl in self.controls.values():
            ctl.play.setChecked(False)
        self.timer.stop()

    # ---------------------------------------------------------------- export
    def export_sweep(self, options: ExportOptions, which: str = "phi", span: float = 360.0) -> int:
        """Render ``options.frames`` frames moving one angle and write them (worker). Returns the stamp."""
        s = self.session
        task = s.manifold_sweep_task(which, options.frames, span)

        def run(job: Job) -> list[Path]:
            frames = task(lambda f: job.report(0.9 * f, "rendering"))
            job.report(0.95, "writing")
            return export.export_frames(frames, options)

        def done(paths: list[Path]) -> None:
            where = paths[0].parent if paths else options.folder  # a fresh export's own sub-folder
            self.hub.message.emit(f"Exported {len(paths)} file(s) to {where}", "info")

        return self.hub.renderer.submit(
            "manifold-sweep", run, on_result=done,
            on_error=lambda m: self.hub.message.emit(f"Export failed: {m}", "error"),
            on_progress=lambda f, t: self.hub.message.emit(f"Exporting sweep: {t} {f:.0%}", "info"))

    def _export_sweep_dialog(self) -> None:
        s = self.session
        if s.flow is None or not s.anchors_complete:
            self.hub.message.emit("The sweep needs a model and all eight anchors", "warning")
            return
        which = self.sweep_angle.currentData()
        name = dict(ANGLE_NAMES)[which]
        opts = ExportDialog.get_options(self, default_frames=60, default_size=s.image_size[::-1],
                                        default_name=f"sweep_{which}", title=f"Export a sweep of {name}")
        if opts is not None:
            self.export_sweep(opts, which)

    def _save_frame_dialog(self) -> None:
        img = self.view.image()
        if img is None:
            self.hub.message.emit("Nothing to save yet", "warning")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save frame", str(Path(self.hub.last_folder) / self.export_name()),
                                              "PNG image (*.png)")
        if path:
            try:
                self.hub.message.emit(f"Saved {export.save_png(img, path)}", "info")
            except OSError as exc:
                self.hub.message.emit(f"Could not save: {exc}", "error")

    def current_image(self) -> np.ndarray | None:
        return self.view.image()

    def export_name(self) -> str:
        a, b, c = self._frame_angles or self.session.angles.as_tuple()
        return f"manifold_{a:.0f}_{b:.0f}_{c:.0f}.png"
