"""Encode & latents: images in, their bits/dim, reconstruction and every level z^(k) out.

Each level is shown as it is (``explorer.latent_view``): by default one channel
of its true elements, stepped with a channel stepper, all levels on one
symmetric colour scale with a colour bar, the element and its value on hover;
or |z| per position; or the level put back in the input's layout
(``nc.level_images``) and averaged per colour, so z^(1) is a fine picture of
local detail and z^(L) a coarse one of the global content.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QMenu, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)

from ..colorbar import ColorBar
from ..entries import check_box, default_box, fit_caption, size_text
from ..hub import Hub
from ..latent_view import MODES, SCALES, LatentLevelView, level_map, own_scale, shared_scale
from ..session import N_ANCHORS
from ..widgets import DIVERGING, VIEW_BACKGROUND, ImageView, paths_from_mime, section, to_pixmap

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
COLOR_MAPS = (("diverging", DIVERGING), ("viridis", "viridis"), ("grey", "CET-L1"))


class CropDialog(QDialog):
    """Choose the part of an image the model sees: a box of the model's aspect over the original."""

    def __init__(self, original: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Crop")
        self.original = original
        h, w = original.shape[:2]
        glw = pg.GraphicsLayoutWidget()
        glw.setBackground(VIEW_BACKGROUND)
        glw.setMinimumSize(480, 400)
        view = glw.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        view.addItem(pg.ImageItem(original, axisOrder="row-major", levels=(0, 255)))
        self.roi = pg.ROI((0, 0), (1, 1), maxBounds=QRectF(0, 0, w, h), pen=pg.mkPen((255, 210, 60), width=2),
                          snapSize=1.0)
        self.roi.addScaleHandle((1, 1), (0, 0), lockAspect=True)
        self.roi.addScaleHandle((0, 0), (1, 1), lockAspect=True)
        view.addItem(self.roi)
        self.set_box(box)
        self.info = QLabel()
        self.roi.sigRegionChanged.connect(self._update_info)
        centre = QPushButton("Centre crop")
        centre.clicked.connect(lambda: self.set_box(default_box(original, *size)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.info, 1)
        row.addWidget(centre)
        row.addWidget(buttons)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Drag the box to move it, its corner handles to resize it."))
        lay.addWidget(glw, 1)
        lay.addLayout(row)
        self._update_info()

    def set_box(self, box: tuple[int, int, int, int]) -> None:
        left, top, right, bottom = box
        self.roi.setPos((left, top), update=False)
        self.roi.setSize((right - left, bottom - top))

    def box(self) -> tuple[int, int, int, int]:
        x, y = self.roi.pos()
        w, h = self.roi.size()
        return check_box((x, y, x + w, y + h), self.original)

    def _update_info(self) -> None:
        left, top, right, bottom = self.box()
        self.info.setText(f"crop {right - left}×{bottom - top} at ({left}, {top}) of "
                          f"{self.original.shape[1]}×{self.original.shape[0]}")


class EncodePanel(QWidget):
    def __init__(self, hub: Hub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = hub.session
        self.setAcceptDrops(True)
        # What a drop here does; the window routes it through its own handler so a model
        # or session file dropped on this tab opens as such rather than as a bad image.
        self.drop_handler: Callable[[list[str]], None] = self.add_paths

        left = self._build_left()
        top = self._build_image_row()
        lv_controls = self._build_level_controls()
        bar_row = self._build_levels()
        right = self._build_right(top, lv_controls, bar_row)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        lay = QHBoxLayout(self)
        lay.addWidget(split)

        hub.images_changed.connect(self.refresh_list)
        hub.current_changed.connect(self._select)
        hub.model_changed.connect(self._rebuild_level_views)
        self._rebuild_level_views()
        self.refresh_list()

    def _build_left(self) -> QWidget:
        """Left: the loaded images and the buttons that add, crop and remove them."""
        self.list = QListWidget()
        self.list.setIconSize(QSize(48, 48))
        self.list.setSpacing(2)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._list_menu)
        self.list.currentRowChanged.connect(self._row_changed)
        self.list.setToolTip("Drop images or folders here")
        open_btn = QPushButton("Open images…")
        open_btn.clicked.connect(self.browse_images)
        folder_btn = QPushButton("Open folder…")
        folder_btn.clicked.connect(self.browse_folder)
        self.examples_btn = QPushButton("Example photos")
        self.examples_btn.setToolTip("Photos that ship with scikit-image / scikit-learn (if installed)")
        self.examples_btn.clicked.connect(self.hub.load_examples)
        remove_btn = QPushButton("Remove")
        remove_btn.clicked.connect(lambda: self.hub.remove_image(self.list.currentRow()))
        clear_btn = QPushButton("Clear")
        clear_btn.clicked.connect(self.hub.clear_images)
        self.crop_btn = QPushButton("Crop…")
        self.crop_btn.setToolTip("Choose which part of the image is encoded (default: centre crop)")
        self.crop_btn.clicked.connect(self.open_crop_dialog)
        buttons = QGridLayout()
        buttons.addWidget(open_btn, 0, 0)
        buttons.addWidget(folder_btn, 0, 1)
        buttons.addWidget(self.examples_btn, 1, 0)
        buttons.addWidget(self.crop_btn, 1, 1)
        buttons.addWidget(remove_btn, 2, 0)
        buttons.addWidget(clear_btn, 2, 1)
        self.hint = QLabel("Drop images or folders anywhere on this tab. Each is centre-cropped and "
                           "resized to the model's size, then encoded.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #9aa0a6;")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(section("Images"))
        ll.addWidget(self.list, 1)
        ll.addLayout(buttons)
        ll.addWidget(self.hint)
        left.setMinimumWidth(220)
        left.setMaximumWidth(320)
        return left

    def _build_image_row(self) -> QHBoxLayout:
        """Right, top: the selected image, its reconstruction and its numbers."""
        self.original = ImageView("Input x (fitted)", placeholder="drop an image")
        self.recon = ImageView("Reconstruction g(f(x))", placeholder="")
        self.stats = QLabel("—")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats.setStyleSheet("font-size: 13px;")
        self.stats.setMinimumWidth(170)
        self.stats.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        top = QHBoxLayout()
        top.addWidget(self.original, 1)
        top.addWidget(self.recon, 1)
        top.addWidget(self.stats, 1)
        return top

    def _build_level_controls(self) -> QHBoxLayout:
        """How the latent levels are drawn: mode, channel, scale, colours."""
        self.mode = QComboBox()
        for data, label in MODES:
            self.mode.addItem(label, data)
        self.mode.setToolTip("One channel: the level's true elements. |z| per position: RMS over its channels. "
                             "Input layout: the level where it sits in the picture, averaged per colour")
        self.channel_step = QSpinBox()
        self.channel_step.setPrefix("channel ")
        self.channel_step.setRange(0, 0)
        self.channel_step.setWrapping(True)
        self.channel_step.setToolTip("Which channel of each level (levels with fewer channels show their last)")
        self.scale = QComboBox()
        for data, label in SCALES:
            self.scale.addItem(label, data)
        self.scale.setToolTip("Shared ±max: one symmetric ±max|z| for every level (the colour bar), so levels "
                              "compare by eye and nothing is clipped. Shared ±3: the standard normal's ±3σ. "
                              "Per level: each map its own range")
        self.cmap = QComboBox()
        self.cmap.setToolTip("Diverging: blue negative, white 0, red positive")
        for label, data in COLOR_MAPS:
            self.cmap.addItem(label, data)
        for w in (self.mode, self.scale, self.cmap):
            w.currentIndexChanged.connect(self._show_levels)
        self.channel_step.valueChanged.connect(self._show_levels)
        lv_controls = QHBoxLayout()
        title = section("Latent levels z(1) … z(L)")
        title.setToolTip("Each level z(k) of the encoded image; hover a map for the element and its value")
        lv_controls.addWidget(title)
        lv_controls.addStretch(1)
        lv_controls.addWidget(QLabel("show"))
        lv_controls.addWidget(self.mode)
        lv_controls.addWidget(self.channel_step)
        lv_controls.addWidget(QLabel("scale"))
        lv_controls.addWidget(self.scale)
        lv_controls.addWidget(QLabel("colours"))
        lv_controls.addWidget(self.cmap)
        return lv_controls

    def _build_levels(self) -> QHBoxLayout:
        """The row the level maps go in (filled per model) and the colour bar under it."""
        self.levels_row = QHBoxLayout()
        self.level_views: list[LatentLevelView] = []
        self.colorbar = ColorBar()
        self.colorbar_label = QLabel()
        self.colorbar_label.setStyleSheet("color: #9aa0a6; font-size: 11px;")
        bar_row = QHBoxLayout()
        bar_row.addWidget(self.colorbar_label)
        bar_row.addWidget(self.colorbar, 1)
        self._raw_cache: tuple[object, list[np.ndarray]] | None = None
        return bar_row

    def _build_right(self, top: QHBoxLayout, lv_controls: QHBoxLayout, bar_row: QHBoxLayout) -> QWidget:
        """Right: the image row over the latent levels."""
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(top, 5)
        rl.addLayout(lv_controls)
        rl.addLayout(self.levels_row, 4)
        rl.addLayout(bar_row)
        return right

    # ---------------------------------------------------------------- loading
    def add_paths(self, paths: list[str]) -> None:
        """What a drop (or the file dialogs) does: encode on the worker, report bad files."""
        if paths:
            self.hub.last_folder = str(Path(paths[0]).parent if Path(paths[0]).is_file() else Path(paths[0]))
        self.hub.add_paths(paths)

    def browse_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.hub.last_folder, IMAGE_FILTER)
        if paths:
            self.add_paths(paths)

    def browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.hub.last_folder)
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802, ANN001 - Qt API
        paths = paths_from_mime(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.drop_handler(paths)

    # ---------------------------------------------------------------- list
    def refresh_list(self) -> None:
        s = self.session
        self.list.blockSignals(True)
        self.list.clear()
        for e in s.images:
            item = QListWidgetItem(QIcon(to_pixmap(e.pixels, 48)), f"{e.name}\n{size_text(e)} · {e.bpd:.3f} bits/dim")
            item.setToolTip(e.source or e.name)
            self.list.addItem(item)
        self.list.setCurrentRow(s.current)
        self.list.blockSignals(False)
        self.hint.setVisible(not s.images)
        self._show_current()

    def _row_changed(self, row: int) -> None:
        self.hub.set_current(row)
        self._show_current()

    def _select(self, index: int) -> None:
        if self.list.currentRow() != index:
            self.list.blockSignals(True)
            self.list.setCurrentRow(index)
            self.list.blockSignals(False)
        self._show_current()

    def _list_menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        row = self.list.indexAt(pos).row()
        if row < 0:
            return
        menu = QMenu(self)
        sub = menu.addMenu("Use as manifold anchor")
        for slot in range(N_ANCHORS):
            sub.addAction(f"z{slot + 1}", lambda slot=slot: self.hub.set_anchor_from_image(slot, row))
        menu.addAction("Remove", lambda: self.hub.remove_image(row))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    # ---------------------------------------------------------------- views
    def _rebuild_level_views(self) -> None:
        for v in self.level_views:
            self.levels_row.removeWidget(v)
            v.deleteLater()
        self.level_views = []
        s = self.session
        if s.flow is None:
            return
        h, w = s.image_size
        for k, (c, hk, wk) in enumerate(s.flow.latent_shapes(h, w)):
            v = LatentLevelView(f"z({k + 1})  {c}×{hk}×{wk}", min_size=80, placeholder="")
            v.setToolTip(f"Level {k + 1}: {c}·{hk}·{wk} = {c * hk * wk} numbers, shown where they sit in the "
                         "input. Hover for values.")
            self.levels_row.addWidget(v, 1)
            self.level_views.append(v)
        self.channel_step.setRange(0, max(c for c, _, _ in s.flow.latent_shapes(h, w)) - 1)
        self._show_current()

    def _show_current(self) -> None:
        e = self.session.current_image
        if e is None:
            self.original.clear("drop an image")
            self.recon.clear("")
            for v in self.level_views:
                v.clear("")
            self.stats.setText("No image selected.")
            self.crop_btn.setEnabled(False)
            return
        self.crop_btn.setEnabled(True)
        self.original.set_image(e.pixels, fit_caption(e))
        self.recon.set_image(e.recon)
        err = int(np.abs(e.pixels.astype(np.int16) - e.recon.astype(np.int16)).max())
        d = int(np.prod(e.pixels.shape))
        z_norm = e.z_norm
        self.stats.setText(
            f"<b>{e.name}</b><br><br>"
            f"<span style='font-size:22px'><b>{e.bpd:.3f}</b></span> bits/dim<br>"
            f"<span style='color:#9aa0a6'>midpoint dequantization (u = ½); {e.bpd * d / 8 / 1024:.2f} KiB "
            f"for all {d} values</span><br><br>"
            f"reconstruction: max |x − g(f(x))| = {err} "
            f"{'(exact)' if err == 0 else 'grey levels'}<br>"
            f"‖z‖ = {z_norm:.1f} (a typical sample: √D = {np.sqrt(d):.1f})")
        self._show_levels()

    def raw_levels(self) -> list[np.ndarray]:
        """The current image's latents as float32 (C_k, h_k, w_k) arrays: the true elements (cached)."""
        e = self.session.current_image
        if e is None:
            return []
        if self._raw_cache is None or self._raw_cache[0] is not e:
            self._raw_cache = (e, [z[0].detach().float().cpu().numpy() for z in e.latents])
        return self._raw_cache[1]

    def _show_levels(self) -> None:
        e = self.session.current_image
        if e is None or len(self.level_views) != len(e.levels):
            return
        h, w = e.pixels.shape[:2]
        mode = self.mode.currentData()
        cmap = self.cmap.currentData()
        self.channel_step.setEnabled(mode == "channel")
        raws = self.raw_levels()
        maps = [level_map(raw, pooled, k + 1, mode, self.channel_step.value())
                for k, (raw, pooled) in enumerate(zip(raws, e.levels))]
        kind = self.scale.currentData()
        shared = kind != "level"
        scale = shared_scale(maps, raws, mode, kind)
        for k, (v, m, raw) in enumerate(zip(self.level_views, maps, raws)):
            c, hk, wk = raw.shape
            what = f"channel {m.channel}/{c - 1}" if m.channel is not None else f"{c} channels"
            v.show_level(m, (w, h), cmap if m.signed or cmap != DIVERGING else "viridis",
                         scale if shared else own_scale(m), f"z({k + 1})  {c}×{hk}×{wk}  ·  {what}")
        signed = any(m.signed for m in maps)
        bar_cmap = cmap if signed or cmap != DIVERGING else "viridis"
        if shared:
            self.colorbar.set_scale(*scale, bar_cmap, "all levels")
            what = "z" if mode == "channel" else ("|z|" if not signed else "value")
            clip = " (larger values saturate)" if kind == "sigma" else ""
            self.colorbar_label.setText(f"all levels: {what} {scale[0]:+.2f} … {scale[1]:+.2f}{clip}")
        else:
            self.colorbar.set_scale(-1.0 if signed else 0.0, 1.0, bar_cmap, "per level")
            self.colorbar_label.setText("per level: ×max|value| of each map (see its range)")

    def open_crop_dialog(self) -> CropDialog | None:
        """Non-modal: the window stays live; OK re-encodes the image with the chosen box."""
        s = self.session
        e, index = s.current_image, s.current
        if e is None or s.flow is None:
            return None
        h, w = s.image_size
        box = e.box or default_box(e.original, h, w)
        dialog = CropDialog(e.original, (h, w), box, self)
        dialog.accepted.connect(lambda: self.hub.recrop(index, dialog.box()))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def current_image(self) -> np.ndarray | None:
        e = self.session.current_image
        return None if e is None else e.recon

    def export_name(self) -> str:
        e = self.session.current_image
        return f"{Path(e.name).stem}_reconstruction.png" if e else "reconstruction.png"
