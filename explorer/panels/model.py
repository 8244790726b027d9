"""Model tab: what is loaded (config, size, device, test bits/dim) and what it samples."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QSpinBox, QVBoxLayout, QWidget,
)

import nvp_core as nc

from ..hub import Hub
from ..models import is_model_path, model_summary
from ..widgets import ImageView


def human_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def training_summary(meta: dict) -> str:
    """One line from the trainer's metadata: data, steps, train bits/dim, time, hardware."""
    parts = []
    data = meta.get("data") or meta.get("dataset")
    if data:
        parts.append(f"data: {data}")
    tc = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else {}
    if isinstance(tc.get("init_from"), str) and tc["init_from"]:
        parts.append(f"first scales from {model_name(tc['init_from'])}")  # --init-from: a warm start
    if meta.get("step") is not None:
        parts.append(f"{meta['step']:,} steps" if isinstance(meta["step"], int) else f"step {meta['step']}")
    if isinstance(meta.get("train_bpd"), (int, float)):
        parts.append(f"train {meta['train_bpd']:.3f} bits/dim")
    if isinstance(meta.get("wall_time_s"), (int, float)):
        t = float(meta["wall_time_s"])
        parts.append(f"{t / 3600:.1f} h" if t >= 3600 else f"{t / 60:.1f} min")
    if meta.get("hardware"):
        parts.append(str(meta["hardware"]))
    return ", ".join(parts) if parts else "—"


def model_name(path: str | None) -> str:
    """A folder model is named by its folder, a single file by its stem.

    A trainer's output ``<run>/model/`` is named by its run folder: "model" says nothing.
    """
    if not path:
        return "untitled model"
    p = Path(path)
    if p.name in ("model.safetensors", "config.json"):
        p = p.parent
    elif p.suffix.lower() == ".safetensors":
        return p.stem
    if p.name == "model" and p.parent.name:
        return p.parent.name
    return p.name


def display_name(flow: object, path: str | None) -> str:
    """A model's name from its metadata: data set, image size and run name ("photo-crops 32×32 · train-…").

    Uses ``run_name``, ``data`` (or ``dataset``) and ``image_size`` (or ``size``) when the
    trainer recorded them; the size falls back to the model's config, the run name to
    the folder (see :func:`model_name`). Without a data set it is the folder name alone.
    """
    raw = getattr(flow, "metadata", None)
    meta = raw if isinstance(raw, dict) else {}  # a list, text or NaN in the file names nothing
    folder = model_name(path) if path else None
    run = str(meta.get("run_name") or folder or "").strip()
    data = meta.get("data") or meta.get("dataset")
    if not data:
        return run or "untitled model"
    data = Path(str(data)).name or str(data)
    size = meta.get("image_size") or meta.get("size")
    if not isinstance(size, int):
        cfg = getattr(flow, "config", None)
        size = getattr(cfg, "image_size", None)
    name = f"{data} {size}×{size}" if isinstance(size, int) else data
    if run and not run.startswith(data):  # "photo-crops-32" adds nothing to "photo-crops 32×32"
        name += f" · {run}"
    return name


def bpd_caption(meta: dict, bpd: float | None) -> tuple[str, bool]:
    """The card's test bits/dim and whether it is stale: measured before the weights were saved.

    The step of the measurement is ``test_bpd_step`` (or, for older metadata, the
    last entry of ``history["test"]`` with this value). A number measured at an
    earlier step than the saved weights is shown with its step and flagged, never
    as the model's current score.
    """
    if bpd is None:
        return "not recorded (untrained or trained elsewhere)", False
    step = meta.get("test_bpd_step")
    if not isinstance(step, int):
        step = None
        hist = meta.get("history", {}).get("test") if isinstance(meta.get("history"), dict) else None
        for row in reversed(hist or []):
            if isinstance(row, (list, tuple)) and len(row) == 2 and isinstance(row[1], (int, float)) \
                    and abs(float(row[1]) - bpd) < 1e-9:
                step = int(row[0])
                break
    n_test = meta.get("test_images")
    on = f"  (on {n_test} held-out images)" if n_test else ""
    saved = meta.get("step")
    if step is None:
        return f"{bpd:.3f}" + on + ("  — the step it was measured at is not recorded" if saved else ""), False
    text = f"{bpd:.3f} at step {step:,}" + on
    if isinstance(saved, int) and step < saved:
        return text + f" — older than the weights (saved at step {saved:,}): not their score", True
    return text, False


class ModelPanel(QWidget):
    """Open models; show their card; preview samples (rendered on the worker)."""

    open_requested = Signal(str)  # a path from the recent list or the default button
    browse_requested = Signal()  # "Open model…"

    N_SAMPLES = 16

    def __init__(self, hub: Hub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = hub.session

        left = self._build_left()
        right = self._build_samples()

        lay = QHBoxLayout(self)
        leftw = QWidget()
        leftw.setLayout(left)
        leftw.setMaximumWidth(560)
        lay.addWidget(leftw, 2)
        lay.addLayout(right, 3)

        hub.model_changed.connect(self.refresh)
        hub.model_loading.connect(self._loading)
        hub.model_failed.connect(lambda msg: self.refresh())
        self.refresh()

    def _build_left(self) -> QVBoxLayout:
        """Left: the model's name, the open buttons, its card and the recent models."""
        self.header = QLabel("No model open")
        self.header.setStyleSheet("font-size: 18px; font-weight: 600;")
        self.subheader = QLabel()
        self.subheader.setWordWrap(True)
        self.subheader.setStyleSheet("color: #9aa0a6;")
        open_btn = QPushButton("Open model…")
        open_btn.clicked.connect(self.browse_requested)
        self.default_btn = QPushButton("Open default model")
        self.default_btn.setToolTip(str(nc.default_model_path()))
        self.default_btn.clicked.connect(lambda: self.open_requested.emit(str(nc.default_model_path())))
        card = self._build_card()
        recent_box = self._build_recent()

        left = QVBoxLayout()
        left.addWidget(self.header)
        left.addWidget(self.subheader)
        row = QHBoxLayout()
        row.addWidget(open_btn)
        row.addWidget(self.default_btn)
        row.addStretch(1)
        left.addLayout(row)
        left.addWidget(card)
        left.addWidget(recent_box)
        left.addStretch(1)
        return left

    def _build_card(self) -> QGroupBox:
        """One selectable label per fact about the open model (filled by refresh)."""
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for key, label in (("file", "File"), ("device", "Device"), ("params", "Parameters"),
                           ("size", "Size on disk"), ("image", "Trained at"), ("levels", "Levels"),
                           ("shapes", "Latent shapes"), ("arch", "Architecture"), ("bpd", "Test bits/dim"),
                           ("training", "Training")):
            lab = QLabel("—")
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = lab
            form.addRow(f"{label}:", lab)
        card = QGroupBox("Model card")
        card.setLayout(form)
        return card

    def _build_recent(self) -> QGroupBox:
        """Recently opened models; double-click opens one."""
        self.recent = QListWidget()
        self.recent.setToolTip("Double-click to open")
        self.recent.itemActivated.connect(lambda it: self.open_requested.emit(it.data(Qt.ItemDataRole.UserRole)))
        self.recent.setMaximumHeight(150)
        recent_box = QGroupBox("Recent models")
        QVBoxLayout(recent_box).addWidget(self.recent)
        return recent_box

    def _build_samples(self) -> QVBoxLayout:
        """Right: a grid of samples with temperature, seed and re-roll."""
        self.samples = ImageView("Samples", placeholder="no model")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.7)
        self.temperature.setPrefix("T = ")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.reroll = QPushButton("New samples")
        self.reroll.clicked.connect(self._reroll)
        self.temperature.valueChanged.connect(self.render_samples)
        self.seed.valueChanged.connect(self.render_samples)
        controls = QHBoxLayout()
        controls.addWidget(self.temperature)
        controls.addWidget(self.seed)
        controls.addWidget(self.reroll)
        controls.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.samples, 1)
        right.addLayout(controls)
        return right

    # ---------------------------------------------------------------- state
    def _loading(self, path: str) -> None:
        """While the worker loads a model the tab says so (the window is usable meanwhile)."""
        if self.session.flow is None:
            self.header.setText("Loading model…")
            self.samples.clear("loading the model…")
        self.subheader.setText(f"Opening {path} …")

    def refresh(self) -> None:
        s = self.session
        self.default_btn.setEnabled(is_model_path(nc.default_model_path()))
        if s.flow is None:
            self.header.setText("No model open")
            self.subheader.setText(
                "Open a model with File ▸ Open model…, drop a model file or folder onto the window, "
                "or train one in the Training tab.")
            for lab in self.fields.values():
                lab.setText("—")
            self.samples.clear("no model")
            self.reroll.setEnabled(False)
            return
        self.header.setText(display_name(s.flow, s.model_path))
        self.subheader.setText(s.model_path or "")
        try:
            self._fill_card()
        except Exception as exc:  # noqa: BLE001 - odd metadata must not leave the previous model's card up
            self.fields["training"].setText(f"(part of this model's card could not be shown: "
                                            f"{exc.__class__.__name__}: {exc})")
        self.reroll.setEnabled(True)
        self.render_samples()

    def _fill_card(self) -> None:
        """The card's fields; every field is reset first so nothing of the previous model stays."""
        s = self.session
        f = self.fields
        for lab in f.values():
            lab.setText("—")
            lab.setToolTip("")
            lab.setStyleSheet("")
        info = model_summary(s.flow)
        cfg = info["config"]
        f["file"].setText(info["source"] or "(in memory)")
        f["device"].setText(info["device"].upper() if info["device"] == "cpu" else info["device"])
        f["params"].setText(f"{info['parameters']:,}")
        f["size"].setText(human_bytes(info["file_bytes"]))
        f["image"].setText(f"{cfg['image_size']}×{cfg['image_size']} × {cfg['channels']} channels "
                           f"(any size that is a multiple of {s.flow.multiple})")
        f["levels"].setText(f"L = {info['levels']}")
        f["shapes"].setText("  ".join(f"z({k + 1}): {c}×{h}×{w}" for k, (c, h, w) in enumerate(info["latent_shapes"])))
        f["arch"].setText(f"width {cfg['width']} (max {cfg['max_width']}), {cfg['blocks']} residual blocks, "
                          f"{cfg['scales']} scales, {cfg['norm']} norm, α = {cfg['alpha']}")
        meta = info["metadata"]
        text, stale = bpd_caption(meta, info["test_bpd"])
        f["bpd"].setText(text)
        f["bpd"].setStyleSheet("color: #d99a1e;" if stale else "")
        f["training"].setText(info.get("metadata_problem") or training_summary(meta))
        f["training"].setToolTip(str(meta.get("train_command") or ""))

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{model_name(p)}   —   {p}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            if not Path(p).exists():
                item.setForeground(Qt.GlobalColor.gray)
                item.setToolTip("missing")
            self.recent.addItem(item)

    # ---------------------------------------------------------------- samples
    def _reroll(self) -> None:
        self.seed.setValue(random.randrange(0, 100000))

    def render_samples(self) -> None:
        s = self.session
        if s.flow is None:
            return
        task = s.samples_task(self.N_SAMPLES, self.temperature.value(), self.seed.value())
        t, seed = self.temperature.value(), self.seed.value()
        self.hub.renderer.submit(
            "samples", task,
            on_result=lambda img: self.samples.set_image(img, f"{self.N_SAMPLES} samples, T = {t:.2f}, seed {seed}"),
            on_error=lambda m: self.hub.message.emit(f"Sampling failed: {m}", "error"))

    def current_image(self) -> np.ndarray | None:
        return self.samples.image()

    def export_name(self) -> str:
        return f"samples_T{self.temperature.value():.2f}_seed{self.seed.value()}.png"
