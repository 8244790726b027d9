"""Manifold: eight anchors z1…z8 and three angles on the sphere through them (DESIGN.md §1).

    z = cos φ (cos φ′ (z1 cos φ″ + z2 sin φ″) + sin φ′ (z3 cos φ″ + z4 sin φ″))
      + sin φ (cos φ′ (z5 cos φ″ + z6 sin φ″) + sin φ′ (z7 cos φ″ + z8 sin φ″))

The decoded point follows the sliders and the (φ, φ′) pad at screen rate: a
:class:`~explorer.speculative.SpeculativeRenderer` shows the nearest decoded
frame at once and decodes batches ahead of the gesture on the one render
worker; the exact frame replaces it as soon as it is there. The 8×8 grid, the
sweep export and ▶ play share its frame cache. Keys (with focus in the tab):
Space play/pause, ←/→ step the last-used angle, Home resets, Ctrl+Z /
Ctrl+Shift+Z undo and redo angle and anchor changes.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMenu, QPushButton,
    QSplitter, QVBoxLayout, QWidget,
)

import nvp_core as nc
from nvp_core.images import grid as tile

from .. import export
from ..dialogs import ExportDialog
from ..export import ExportOptions
from ..hub import Hub
from ..frame_cache import angle_distance
from ..render import Job
from ..session import N_ANCHORS
from ..speculative import SpeculativeRenderer, manifold_source
from ..widgets import AnchorSlot, AngleControl, ImageView, section
from ..widgets_pad import AnglePad
from .encode import IMAGE_FILTER


def _degrees(angles) -> list[tuple[float, float, float]]:
    return [tuple(math.degrees(a) for a in t) for t in angles]


def _grid_degrees(phi2: float, n: int) -> list[tuple[float, float, float]]:
    """nvp_core's n×n grid over (φ, φ′) ∈ [0°, 90°]² at φ″, in the panel's degrees (z1, z3, z5, z7 in the corners)."""
    return _degrees(nc.manifold_angles(n, n, math.radians(phi2), span=math.pi / 2, endpoint=True))


def _sweep_degrees(start, which: str, frames: int, span: float) -> list[tuple[float, float, float]]:
    """nvp_core's sweep of one angle from ``start`` (an Angles, degrees) over ``span`` degrees."""
    return _degrees(nc.sweep_angles(which, frames, start.radians(), math.radians(span)))

ANGLE_NAMES = (("phi", "φ"), ("phi1", "φ′"), ("phi2", "φ″"))
ANGLE_KEYS = tuple(k for k, _ in ANGLE_NAMES)
UNDO_SETTLE_MS = 400  # angle changes closer together than this are one undo step (a drag)


class _ChangeCommand(QUndoCommand):
    """Undo step: a value before and after a change that already happened (angles after a
    gesture, the eight Anchor objects); ``restore`` puts one of them back."""

    def __init__(self, text: str, restore: Callable[[Any], None], old: Any, new: Any) -> None:
        super().__init__(text)
        self.restore, self.old, self.new = restore, old, new
        self._first = True

    def redo(self) -> None:  # noqa: D401 - Qt API
        if self._first:  # pushed after the change happened
            self._first = False
            return
        self.restore(self.new)

    def undo(self) -> None:
        self.restore(self.old)


class ManifoldPanel(QWidget):
    GRID_N = 8
    readout = Signal(str)  # frames/s and latency while dragging ("" when idle): the status bar shows it

    def __init__(self, hub: Hub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = hub.session
        self._frame_angles: tuple[float, float, float] | None = None
        self._setting = False  # set_angles is moving several controls: render once at the end
        self._restoring = False  # undo/redo is applying a change: do not record it again
        self._focused_angle = "phi"
        self._grid_phi2: float | None = None
        self._info_at = 0.0  # when the view's caption last changed (it follows a drag at ~10 Hz)
        self.planner = SpeculativeRenderer(hub.renderer, parent=self)
        self.planner.shown.connect(self._show_frame)
        self.planner.failed.connect(lambda m: self.hub.message.emit(m, "error"))
        self.undo_stack = QUndoStack(self)
        self._committed_angles = self.session.angles.as_tuple()
        self._committed_anchors = list(self.session.anchors)
        self._anchor_generation = self.session.model_generation

        slots_grid, fill_row = self._build_anchors()
        angles_box, pad_help = self._build_angles()
        out_box = self._build_grid_export()
        left = self._build_left(slots_grid, fill_row, angles_box, out_box)
        split = self._build_views(pad_help)

        lay = QHBoxLayout(self)
        lay.addWidget(left)
        lay.addWidget(split, 1)

        self.grid_view.glw.scene().sigMouseClicked.connect(self._grid_clicked)

        self._build_timers()
        self._build_shortcuts()

        hub.anchors_changed.connect(self.refresh_anchors)
        hub.model_changed.connect(self._model_changed)
        hub.session_restored.connect(lambda: self.set_angles(*self.session.angles.as_tuple()))
        self.refresh_anchors()
        self._update_weights()

    def _build_anchors(self) -> tuple[QGridLayout, QHBoxLayout]:
        """The eight anchor slots and the buttons that fill them."""
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
        fill_images.clicked.connect(self.hub.fill_anchors_from_images)
        fill_samples = QPushButton("New samples")
        fill_samples.setToolTip("Eight fresh model samples")
        fill_samples.clicked.connect(lambda: self.hub.sample_anchors(list(range(N_ANCHORS)),
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
        return slots_grid, fill_row

    def _build_angles(self) -> tuple[QGroupBox, QLabel]:
        """The angle pad (placed under the view), one slider per angle, animation step and weights."""
        self.controls: dict[str, AngleControl] = {}
        angles_box = QGroupBox("Angles (degrees)")
        al = QVBoxLayout(angles_box)
        self.pad = AnglePad()
        self.pad.setFixedSize(140, 140)
        self.pad.moved.connect(self._pad_moved)
        self.pad.released.connect(self._gesture_ended)
        pad_help = QLabel("Drag the point: φ′ across, φ down, both 0°…360°. The tinted square is the "
                          "grid's 0°…90° range with its corner anchors.\n\nSpace play/pause · ←/→ step · "
                          "Home reset · Ctrl+Z undo")
        pad_help.setWordWrap(True)
        pad_help.setStyleSheet("color: #9aa0a6; font-size: 11px;")
        for key, name in ANGLE_NAMES:
            ctl = AngleControl(name)
            ctl.setValue(getattr(self.session.angles, key))
            ctl.valueChanged.connect(lambda v, key=key: self._angle_changed(key, v))
            ctl.playToggled.connect(self._play_toggled)
            ctl.slider.sliderPressed.connect(lambda key=key: self._focus_angle(key))
            ctl.slider.sliderReleased.connect(self._gesture_ended)
            self.controls[key] = ctl
            al.addWidget(ctl)
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.1, 45.0)
        self.speed.setValue(3.0)
        self.speed.setSuffix("° / frame")
        self.speed.setToolTip("How far ▶ moves an angle per rendered frame")
        reset = QPushButton("Reset to z1")
        reset.setToolTip("All angles to 0° (Home)")
        reset.clicked.connect(self.reset_angles)
        row = QHBoxLayout()
        row.addWidget(QLabel("animation step"))
        row.addWidget(self.speed)
        row.addStretch(1)
        row.addWidget(reset)
        al.addLayout(row)
        self.weights = QLabel()
        self.weights.setStyleSheet("color: #9aa0a6; font-family: monospace; font-size: 11px;")
        # a fixed size: its text changes with every move, and a label that may change size makes Qt
        # lay out the whole window again each time
        self.weights.setFixedSize(366, 32)
        al.addWidget(self.weights)
        return angles_box, pad_help

    def _build_grid_export(self) -> QGroupBox:
        """Grid render and sweep / frame export."""
        out_box = QGroupBox("Grid and export")
        ol = QVBoxLayout(out_box)
        self.grid_btn = QPushButton(f"Render {self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")
        self.grid_btn.setToolTip("φ down the rows, φ′ across, both 0°…90°, at the current φ″ (one batch on the worker). "
                                 "Click a cell to go there.")
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
        return out_box

    def _build_left(self, slots_grid: QGridLayout, fill_row: QHBoxLayout, angles_box: QGroupBox,
                    out_box: QGroupBox) -> QWidget:
        """The fixed-width left column."""
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
        return left

    def _build_views(self, pad_help: QLabel) -> QSplitter:
        """The interpolated view with the pad under it, beside the grid view."""
        self.view = ImageView("z(φ, φ′, φ″)", placeholder="fill the eight anchors")
        self.grid_view = ImageView(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)",
                                   placeholder="press “Render grid”")
        view_col = QWidget()
        vl = QVBoxLayout(view_col)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.addWidget(self.view, 1)
        pad_row = QHBoxLayout()
        pad_row.addWidget(self.pad)
        pad_row.addWidget(pad_help, 1)
        vl.addLayout(pad_row)
        split = QSplitter()
        split.addWidget(view_col)
        split.addWidget(self.grid_view)
        split.setSizes([600, 500])
        return split

    def _build_timers(self) -> None:
        """Animation, undo settling, caption and readout timers."""
        self.timer = QTimer(self)
        self.timer.setInterval(25)
        self.timer.timeout.connect(self._tick)
        self._commit_timer = QTimer(self)
        self._commit_timer.setSingleShot(True)
        self._commit_timer.setInterval(UNDO_SETTLE_MS)
        self._commit_timer.timeout.connect(self._commit_angles)
        self._caption = ""
        self._caption_timer = QTimer(self)
        self._caption_timer.setSingleShot(True)
        self._caption_timer.setInterval(100)
        self._caption_timer.timeout.connect(self._update_caption)
        self._readout_timer = QTimer(self)
        self._readout_timer.setInterval(250)
        self._readout_timer.timeout.connect(self._update_readout)

    def _build_shortcuts(self) -> None:
        """Keys that act anywhere inside the panel."""
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for seq, slot in ((Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_Home, self.reset_angles),
                          (QKeySequence.StandardKey.Undo, self.undo), (QKeySequence("Ctrl+Shift+Z"), self.redo),
                          (QKeySequence.StandardKey.Redo, self.redo)):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(ctx)
            sc.activated.connect(slot)

    # ---------------------------------------------------------------- anchors
    def refresh_anchors(self) -> None:
        for slot, a in zip(self.slots, self.session.anchors):
            if a is None:
                slot.set_empty()
            else:
                slot.set_anchor(a.thumbnail, a.label)
        self._record_anchors()
        self._update_source()
        self._update_weights()
        self.render()

    def _update_source(self) -> None:
        """New anchors or model: the frame cache starts over (frames in flight are dropped)."""
        s = self.session
        if s.flow is None or not s.anchors_complete or not s.anchors_fit():  # stale: the re-encode follows
            self.planner.set_source(None)
            return
        self.planner.set_source(manifold_source(s.flow, s.anchor_latents()), s.image_size)
        self._grid_phi2 = None
        self.grid_view.clear("press “Render grid”")
        self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")

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
        self.undo_stack.clear()
        self.planner.set_source(None)
        self.view.clear("encoding the anchors…")
        self.grid_view.clear("press “Render grid”")
        self.grid_view.set_title(f"{self.GRID_N}×{self.GRID_N} grid over (φ, φ′)")

    # ---------------------------------------------------------------- angles
    def set_angles(self, phi: float, phi1: float, phi2: float) -> None:
        """Move all three angles as one change (one frame request, one undo step)."""
        self._setting = True
        try:
            for key, v in zip(ANGLE_KEYS, (phi, phi1, phi2)):
                self.controls[key].setValue(v)
        finally:
            self._setting = False
        self._angles_moved()

    def reset_angles(self) -> None:
        self.stop_animation()
        self.set_angles(0.0, 0.0, 0.0)
        self._commit_angles()

    def _angle_changed(self, key: str, value: float) -> None:
        setattr(self.session.angles, key, value)
        if not self._setting:
            if not self.timer.isActive():
                self._focused_angle = key
            self._angles_moved()

    def _pad_moved(self, phi: float, phi1: float) -> None:
        self._focused_angle = "phi1"
        self.set_angles(phi, phi1, self.session.angles.phi2)

    def _angles_moved(self) -> None:
        a = self.session.angles
        self.pad.set_value(a.phi, a.phi1)
        self._update_weights()
        if not self._restoring:
            self._commit_timer.start()
        self.render()

    def _gesture_ended(self) -> None:
        """Slider or pad released: the exact frame now, and one undo step for the whole drag."""
        self.planner.settle()
        if self._caption_timer.isActive():
            self._update_caption()
        self._commit_angles()

    def _focus_angle(self, key: str) -> None:
        self._focused_angle = key

    def step_focused(self, degrees: float) -> None:
        """←/→ outside a slider: step the angle last used."""
        self.controls[self._focused_angle].step(degrees)

    def keyPressEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        """Arrows no child took (a slider or the pad takes its own) step the last-used angle."""
        step = 10.0 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1.0
        if ev.key() in (Qt.Key.Key_Left, Qt.Key.Key_Down):
            self.step_focused(-step)
        elif ev.key() in (Qt.Key.Key_Right, Qt.Key.Key_Up):
            self.step_focused(step)
        else:
            super().keyPressEvent(ev)

    def _update_weights(self) -> None:
        w = nc.sphere_weights(*self.session.angles.radians())
        parts = [f"z{i + 1} {x:+.2f}" for i, x in enumerate(w)]
        self.weights.setText("weights  " + "  ".join(parts[:4]) + "\n         " + "  ".join(parts[4:]))

    # ---------------------------------------------------------------- undo / redo
    def undo(self) -> None:
        self._commit_angles()
        self.undo_stack.undo()

    def redo(self) -> None:
        self._commit_angles()
        self.undo_stack.redo()

    def _commit_angles(self) -> None:
        """Close the current gesture: one undo step from the last committed angles to these."""
        self._commit_timer.stop()
        now = self.session.angles.as_tuple()
        if now != self._committed_angles and not self._restoring:
            self.undo_stack.push(_ChangeCommand("angles", self._restore_angles, self._committed_angles, now))
        self._committed_angles = now

    def _restore_angles(self, angles: tuple) -> None:
        self._restoring = True
        try:
            self.set_angles(*angles)
        finally:
            self._restoring = False
        self._committed_angles = self.session.angles.as_tuple()

    def _record_anchors(self) -> None:
        s = self.session
        now = list(s.anchors)
        if self._restoring:
            pass
        elif s.model_generation != self._anchor_generation:  # re-encoded for a new model: a fresh history
            self.undo_stack.clear()
            self._anchor_generation = s.model_generation
        elif any(a is not b for a, b in zip(now, self._committed_anchors)):
            self._commit_angles()
            self.undo_stack.push(_ChangeCommand("anchors", self._restore_anchors, self._committed_anchors, now))
        self._committed_anchors = now

    def _restore_anchors(self, anchors: list) -> None:
        self._restoring = True
        try:
            for i, a in enumerate(anchors):
                self.session.set_anchor(i, a)
            self.hub.anchors_changed.emit()
        finally:
            self._restoring = False
        self._committed_anchors = list(self.session.anchors)

    # ---------------------------------------------------------------- rendering
    def render(self, step: tuple[float, float, float] | None = None) -> None:
        s = self.session
        if s.flow is None or not s.anchors_complete:
            if s.flow is not None:
                self.view.clear("fill the eight anchors")
            return
        if not self.planner.has_source:
            self._update_source()
        self.planner.target(s.angles.as_tuple(), step)
        if not self._readout_timer.isActive():
            self._readout_timer.start()

    def _show_frame(self, frame) -> None:  # noqa: ANN001 - explorer.frame_cache.Frame
        self._frame_angles = frame.angles
        a, b, c = frame.angles
        target = self.planner.target_angles
        near = target is not None and angle_distance(frame.angles, target) > 1e-6
        caption = f"{'≈ nearest decoded: ' if near else ''}φ = {a:.1f}°   φ′ = {b:.1f}°   φ″ = {c:.1f}°"
        now = time.perf_counter()
        dragging = self.planner.in_gesture() and not self.timer.isActive()
        if dragging and now - self._info_at < 0.1:  # the caption follows a drag at 10 Hz (each change relayouts)
            self._caption = caption
            self.view.set_image(frame.rgb, self.view.info.text(), now=True)
            if not self._caption_timer.isActive():
                self._caption_timer.start()
        else:
            self._info_at = now
            self._caption = caption
            self._caption_timer.stop()  # a pending older caption must not overwrite this one
            self.view.set_image(frame.rgb, caption, now=True)

    def _update_caption(self) -> None:
        self._caption_timer.stop()
        self._info_at = time.perf_counter()
        if self._caption and self.view.has_image:
            self.view.info.setText(self._caption)

    def _update_readout(self) -> None:
        text = self.planner.meter.text()
        self.readout.emit(f"Manifold: {text}" if text else "")
        if not text:
            self._readout_timer.stop()

    def frame_done(self) -> bool:
        """True once the exact frame of the current angles is on screen (tests and the animation wait on it)."""
        return self.planner.done()

    def render_grid(self) -> None:
        s = self.session
        if s.flow is None or not s.anchors_complete:
            self.hub.message.emit("The grid needs a model and all eight anchors", "warning")
            return
        if not self.planner.has_source:
            self._update_source()
        phi2, n = s.angles.phi2, self.GRID_N  # clicking again while rendering simply replaces the request
        title = f"{n}×{n} grid over (φ, φ′)"
        self.grid_view.set_title(f"{title} — rendering…")

        def done(frames: np.ndarray) -> None:
            self._grid_phi2 = phi2
            self.grid_view.set_title(f"{title} at φ″ = {phi2:.1f}° — click a cell to go there")
            self.grid_view.set_image(tile(frames, cols=n, pad=1, value=24),
                                     "rows: φ 0°→90°   columns: φ′ 0°→90°   (z1 top-left, z3 top-right, "
                                     "z5 bottom-left)")

        def failed(m: str) -> None:
            self.grid_view.set_title(title)
            self.hub.message.emit(m, "error")

        def progress(f: float, _text: str) -> None:
            self.grid_view.set_title(f"{title} — {f:.0%}")

        self.planner.frames(_grid_degrees(phi2, n), "manifold-grid", on_result=done, on_error=failed,
                            on_progress=progress)

    def grid_cell_angles(self, row: int, col: int) -> tuple[float, float, float]:
        """The angles of a cell of the shown grid (row: φ, column: φ′, both 0°…90°)."""
        n = self.GRID_N
        return _grid_degrees(self._grid_phi2 or 0.0, n)[row * n + col]

    def grid_cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The (row, col) under grid-image pixel (x, y), or None on the padding / outside."""
        img = self.grid_view.image()
        if img is None or self._grid_phi2 is None:
            return None
        n = self.GRID_N
        cell_h, cell_w = (img.shape[0] - 1) / n, (img.shape[1] - 1) / n
        if not (1 <= x < img.shape[1] and 1 <= y < img.shape[0]):
            return None
        return min(n - 1, int((y - 1) // cell_h)), min(n - 1, int((x - 1) // cell_w))

    def _grid_clicked(self, ev) -> None:  # noqa: ANN001 - pyqtgraph mouse event
        if ev.double() or ev.button() != Qt.MouseButton.LeftButton:
            return
        p = self.grid_view.view.mapSceneToView(ev.scenePos())
        self.click_grid(p.x(), p.y())

    def click_grid(self, x: float, y: float) -> bool:
        """Jump the angles to the grid cell under image pixel (x, y): what a click on the grid does."""
        cell = self.grid_cell_at(x, y)
        if cell is None:
            return False
        self.stop_animation()
        self.set_angles(*self.grid_cell_angles(*cell))
        self._commit_angles()
        return True

    # ---------------------------------------------------------------- animation
    def toggle_play(self) -> None:
        """Space: stop whatever plays, else play the angle last used."""
        playing = [c for c in self.controls.values() if c.play.isChecked()]
        if playing:
            self.stop_animation()
            self._commit_angles()
        else:
            self.controls[self._focused_angle].play.setChecked(True)

    def _play_toggled(self, _on: bool) -> None:
        if any(c.play.isChecked() for c in self.controls.values()):
            self.timer.start()
        else:
            self.timer.stop()
            if self._caption_timer.isActive():
                self._update_caption()

    def _play_step(self) -> tuple[float, float, float]:
        v = self.speed.value()
        return tuple(v if self.controls[k].play.isChecked() else 0.0 for k in ANGLE_KEYS)  # type: ignore[return-value]

    def _tick(self) -> None:
        """Step the playing angles once the next frame is decoded (the path is decoded ahead in batches)."""
        step = self._play_step()
        if not any(step):
            return
        if not self.planner.done():
            return  # the current position is not on screen yet
        now = self.session.angles.as_tuple()
        nxt = tuple((a + d) % 360.0 for a, d in zip(now, step))
        if not self.planner.exact_cached(nxt):
            self.planner.prefetch(step)
            return
        self._setting = True
        try:
            for key, v in zip(ANGLE_KEYS, nxt):
                self.controls[key].setValue(v)
        finally:
            self._setting = False
        a = self.session.angles
        self.pad.set_value(a.phi, a.phi1)
        self._update_weights()
        self.render(step)

    def hideEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        """Another tab is shown: stop animating, rendering frames nobody sees."""
        self.stop_animation()
        super().hideEvent(ev)

    def stop_animation(self) -> None:
        for ctl in self.controls.values():
            ctl.play.setChecked(False)
        self.timer.stop()
        if self._caption_timer.isActive():
            self._update_caption()

    # ---------------------------------------------------------------- export
    def export_sweep(self, options: ExportOptions, which: str = "phi", span: float = 360.0) -> int:
        """Render ``options.frames`` frames moving one angle and write them (worker). Returns the stamp."""
        s = self.session
        if not self.planner.has_source:
            self._update_source()
        angles = _sweep_degrees(s.angles, which, options.frames, span)

        def write(job: Job, frames: np.ndarray) -> list[Path]:
            job.report(0.95, "writing")
            return export.export_frames(list(frames), options)

        def done(paths: list[Path]) -> None:
            where = paths[0].parent if paths else options.folder  # a fresh export's own sub-folder
            self.hub.message.emit(f"Exported {len(paths)} file(s) to {where}", "info")

        return self.planner.frames(
            angles, "manifold-sweep", on_result=done, then=write,
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
