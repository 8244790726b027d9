"""Information loss: replace chosen levels z^(k) by fresh ε^(k) and see what survives.

The seed page's figure resamples z^(1), then z^(1..2), … keeping the coarser
levels; here every level can be toggled, the noise has a temperature and a
seed (re-roll), and "zero" replaces a level by its mean instead of a sample.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from .. import export
from ..hub import Hub
from ..infoloss_cache import InfoLossCache, all_level_sets, decode_level_sets, strip_sets
from ..session import stale_task
from ..widgets import ImageView, section


class InfoLossPanel(QWidget):
    def __init__(self, hub: Hub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = hub.session
        self.level_boxes: list[QCheckBox] = []
        self._strip: list[np.ndarray] = []
        self.decoded = InfoLossCache()  # every level subset of the current image, decoded in one batch

        lay = QHBoxLayout(self)
        lay.addWidget(self._build_controls())
        lay.addLayout(self._build_views(), 1)

        hub.model_changed.connect(self._rebuild_levels)
        hub.images_changed.connect(self._refresh_subjects)
        hub.current_changed.connect(self._current_changed)
        hub.session_restored.connect(self._load_settings)
        self._rebuild_levels()
        self._refresh_subjects()

    def _build_controls(self) -> QWidget:
        """The left column: image, levels to resample, noise, the seed-figure strip."""
        self.subject = QComboBox()
        self.subject.setMinimumWidth(180)
        self.subject.currentIndexChanged.connect(self._subject_changed)

        self.levels_group = QGroupBox("Resample levels")
        self.levels_layout = QVBoxLayout(self.levels_group)
        quick = QHBoxLayout()
        none_btn = QPushButton("None")
        none_btn.clicked.connect(lambda: self.set_levels(set()))
        fine_btn = QPushButton("All but z(L)")
        fine_btn.setToolTip("Keep only the coarsest level: what the global code alone remembers")
        fine_btn.clicked.connect(lambda: self.set_levels(set(range(1, self.session.levels))))
        quick.addWidget(none_btn)
        quick.addWidget(fine_btn)

        self.strip_btn = QPushButton("Seed figure strip")
        self.strip_btn.setToolTip("Resample z(1), z(1..2), … z(1..L−1): the seed page's figure for this image")
        self.strip_btn.clicked.connect(self.render_strip)
        self.save_strip_btn = QPushButton("Save strip…")
        self.save_strip_btn.clicked.connect(self._save_strip_dialog)
        self.save_strip_btn.setEnabled(False)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(section("Image"))
        ll.addWidget(self.subject)
        ll.addWidget(self.levels_group)
        ll.addLayout(quick)
        ll.addWidget(self._build_noise_group())
        ll.addWidget(self.strip_btn)
        ll.addWidget(self.save_strip_btn)
        ll.addStretch(1)
        left.setFixedWidth(300)
        return left

    def _build_noise_group(self) -> QGroupBox:
        """Temperature, seed (re-roll) and "zero instead of noise"."""
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 3.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setDecimals(2)
        self.temperature.setValue(self.session.infoloss.temperature)
        self.temperature.setToolTip("ε ~ N(0, T²I)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(self.session.infoloss.seed)
        self.reroll = QPushButton("Re-roll")
        self.reroll.setToolTip("New noise: a fresh seed")
        self.reroll.clicked.connect(self.reroll_seed)
        self.zero = QCheckBox("Zero instead of noise (the mean of ε)")
        self.temperature.valueChanged.connect(self._settings_changed)
        self.seed.valueChanged.connect(self._settings_changed)
        self.zero.toggled.connect(self._settings_changed)

        noise_group = QGroupBox("Noise")
        ng = QVBoxLayout(noise_group)
        row = QHBoxLayout()
        row.addWidget(QLabel("temperature"))
        row.addWidget(self.temperature)
        ng.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("seed"))
        row.addWidget(self.seed, 1)
        row.addWidget(self.reroll)
        ng.addLayout(row)
        ng.addWidget(self.zero)
        return noise_group

    def _build_views(self) -> QVBoxLayout:
        """g(z) beside the resampled decode, and the strip under them."""
        self.original = ImageView("Reconstruction g(z)", placeholder="open an image in Encode")
        self.result = ImageView("With resampled levels", placeholder="")
        self.strip_view = ImageView("Seed figure: g(z), then ε replacing z(1), z(1..2), …", min_size=80,
                                    placeholder="press “Seed figure strip”")
        top = QHBoxLayout()
        top.addWidget(self.original, 1)
        top.addWidget(self.result, 1)
        right = QVBoxLayout()
        right.addLayout(top, 3)
        right.addWidget(self.strip_view, 2)
        return right

    # ---------------------------------------------------------------- controls
    def _rebuild_levels(self) -> None:
        for b in self.level_boxes:
            self.levels_layout.removeWidget(b)
            b.deleteLater()
        self.level_boxes = []
        s = self.session
        if s.flow is None:
            return
        h, w = s.image_size
        shapes = s.flow.latent_shapes(h, w)
        for k, (c, hk, wk) in enumerate(shapes, start=1):
            kind = "finest" if k == 1 else ("coarsest" if k == len(shapes) else "")
            b = QCheckBox(f"z({k})  {c}×{hk}×{wk}" + (f"  — {kind}" if kind else ""))
            b.setChecked(k in s.infoloss.levels)
            b.toggled.connect(self._settings_changed)
            self.levels_layout.addWidget(b)
            self.level_boxes.append(b)
        self._strip = []
        self.strip_view.clear("press “Seed figure strip”")
        self.save_strip_btn.setEnabled(False)
        self.render()

    def set_levels(self, levels: set[int]) -> None:
        for k, b in enumerate(self.level_boxes, start=1):
            b.blockSignals(True)
            b.setChecked(k in levels)
            b.blockSignals(False)
        self._settings_changed()

    def reroll_seed(self) -> None:
        self.seed.setValue(random.randrange(0, 1_000_000))

    def _load_settings(self) -> None:
        il = self.session.infoloss
        for w in (self.temperature, self.seed, self.zero):
            w.blockSignals(True)
        self.temperature.setValue(il.temperature)
        self.seed.setValue(il.seed)
        self.zero.setChecked(il.mode == "zero")
        for w in (self.temperature, self.seed, self.zero):
            w.blockSignals(False)
        self.set_levels(set(il.levels))

    def _settings_changed(self, *_: object) -> None:
        il = self.session.infoloss
        il.levels = {k for k, b in enumerate(self.level_boxes, start=1) if b.isChecked()}
        il.temperature = self.temperature.value()
        il.seed = self.seed.value()
        il.mode = "zero" if self.zero.isChecked() else "noise"
        self.temperature.setEnabled(il.mode == "noise")
        self.render()

    def _refresh_subjects(self) -> None:
        s = self.session
        self.subject.blockSignals(True)
        self.subject.clear()
        for e in s.images:
            self.subject.addItem(f"{e.name}  ({e.bpd:.2f} bpd)")
        self.subject.setCurrentIndex(s.current)
        self.subject.blockSignals(False)
        self._subject_shown()

    def _subject_changed(self, index: int) -> None:
        self.hub.set_current(index)
        self._subject_shown()

    def _current_changed(self, index: int) -> None:
        if self.subject.currentIndex() != index:
            self.subject.blockSignals(True)
            self.subject.setCurrentIndex(index)
            self.subject.blockSignals(False)
        self._subject_shown()

    def _subject_shown(self) -> None:
        e = self.session.current_image
        self._strip = []
        self.save_strip_btn.setEnabled(False)
        self.strip_btn.setEnabled(e is not None)
        if e is None:
            self.original.clear("open an image in Encode")
            self.result.clear("")
            self.strip_view.clear("")
            return
        self.original.set_image(e.recon, f"{e.name}: {e.bpd:.3f} bits/dim")
        self.strip_view.clear("press “Seed figure strip”")
        self.render()

    # ---------------------------------------------------------------- rendering
    def _subsets(self) -> tuple[object, tuple, dict]:
        """(entry, cache key, decoded subsets) for the current image and noise settings."""
        s = self.session
        e, il = s.current_image, s.infoloss
        key = (s.model_generation, *InfoLossCache.key(e, il.temperature, il.seed, il.mode))
        return e, key, self.decoded.frames(e, key)

    def _decode_task(self, sets: list) -> object:
        s = self.session
        flow, zs, il = s.require_flow(), s.subject_latents(), s.infoloss
        if not s.subject_fits():  # the old model's latents, before the re-encode lands
            return stale_task
        t, seed, mode = il.temperature, il.seed, il.mode
        return lambda job: decode_level_sets(flow, zs, sets, t, seed, mode, job)

    def render(self) -> None:
        """Show the chosen subset: from the batch if decoded, else decoded alone first, then the rest in one batch."""
        s = self.session
        if s.flow is None or s.current_image is None:
            return
        il = s.infoloss
        desc = ("nothing resampled" if not il.levels else
                "z(" + ",".join(str(k) for k in sorted(il.levels)) + ") → " +
                ("0" if il.mode == "zero" else f"ε, T = {il.temperature:.2f}, seed {il.seed}"))
        e, key, done = self._subsets()
        if not done:
            done[frozenset()] = e.recon  # nothing replaced: g(f(x)), already decoded by the encoder
        chosen = frozenset(il.levels)
        if chosen in done:
            self.hub.renderer.cancel("infoloss")
            self.result.set_image(done[chosen], desc)
        else:
            def one(img_batch: np.ndarray) -> None:
                self.decoded.put(e, key, [chosen], img_batch)
                if key == self._subsets()[1] and frozenset(self.session.infoloss.levels) == chosen:
                    self.result.set_image(img_batch[0], desc)

            self.hub.renderer.submit("infoloss", self._decode_task([chosen]), on_result=one,
                                     on_error=lambda m: self.hub.message.emit(m, "error"), priority=1)
        rest = [x for x in all_level_sets(s.levels) if x not in done and x != chosen]
        if rest:
            self.hub.renderer.submit("infoloss-all", self._decode_task(rest),
                                     on_result=lambda imgs: self.decoded.put(e, key, rest, imgs),
                                     on_error=lambda m: self.hub.message.emit(m, "error"))

    def render_strip(self) -> None:
        s = self.session
        if s.flow is None or s.current_image is None:
            return
        mode, t = s.infoloss.mode, s.infoloss.temperature
        e, key, done = self._subsets()
        sets = strip_sets(s.levels)

        def show(frames: list[np.ndarray]) -> None:
            self._strip = frames
            self.save_strip_btn.setEnabled(True)
            L = len(frames)
            self.strip_view.set_image(self.strip_image(), f"{L} columns: g(z), then z(1) … z(1..{L - 1}) resampled"
                                      f" ({'zeros' if mode == 'zero' else f'T = {t:.2f}'})")

        if all(x in done for x in sets):
            show([done[x] for x in sets])
            return

        def arrived(imgs: np.ndarray) -> None:
            self.decoded.put(e, key, sets, imgs)
            show(list(imgs))

        self.hub.renderer.submit("infoloss-strip", self._decode_task(sets), on_result=arrived,
                                 on_error=lambda m: self.hub.message.emit(m, "error"))

    def strip_image(self) -> np.ndarray | None:
        return export.grid(self._strip, columns=len(self._strip), gap=2) if self._strip else None

    def save_strip(self, path: str | Path) -> Path:
        img = self.strip_image()
        if img is None:
            raise ValueError("no strip yet")
        return export.save_png(img, path)

    def _save_strip_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save strip", str(Path(self.hub.last_folder) / "infoloss_strip.png"),
                                              "PNG image (*.png)")
        if path:
            try:
                self.hub.message.emit(f"Saved {self.save_strip(path)}", "info")
            except (OSError, ValueError) as exc:
                self.hub.message.emit(f"Could not save: {exc}", "error")

    def current_image(self) -> np.ndarray | None:
        return self.result.image()

    def export_name(self) -> str:
        il = self.session.infoloss
        lv = "".join(str(k) for k in sorted(il.levels)) or "none"
        return f"infoloss_z{lv}_{il.mode}_seed{il.seed}.png"
