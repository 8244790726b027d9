"""The main window: tabs, menus, drag-and-drop, status bar, settings, clean shutdown."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QLabel, QMainWindow, QProgressBar, QTabWidget, QVBoxLayout, QWidget,
)

import nvp_core as nc

from . import export
from . import session as S
from .hub import Hub
from .panels.canvas import CanvasPanel
from .panels.encode import EncodePanel
from .panels.infoloss import InfoLossPanel
from .panels.manifold import ManifoldPanel
from .panels.model import ModelPanel, model_name
from .panels.training import TrainingPanel
from .render import Renderer
from .widgets import MessageBar, paths_from_mime

APP_NAME = "NVP Explorer"
MODEL_FILTER = "NVP models (*.safetensors config.json);;All files (*)"
SESSION_FILTER = f"NVP Explorer sessions (*{S.SESSION_SUFFIX});;All files (*)"
MAX_RECENT = 8
TABS = ("model", "encode", "infoloss", "manifold", "canvas", "training")
TAB_TITLES = ("Model", "Encode && latents", "Information loss", "Manifold", "Canvas", "Training")
TAB_ALIASES = {"information loss": "infoloss", "info": "infoloss", "latents": "encode", "encode & latents": "encode",
               "sphere": "manifold", "train": "training", "samples": "model"}


def tab_key(name: str) -> str:
    """Normalise a --tab argument ("Manifold", "information loss", "info") to a key of TABS."""
    n = name.strip().lower()
    n = TAB_ALIASES.get(n, n.replace("-", "").replace("_", "").replace(" ", ""))
    if n not in TABS:
        raise ValueError(f"unknown tab {name!r}; choose one of {', '.join(TABS)}")
    return n


class MainWindow(QMainWindow):
    def __init__(self, device: str = "auto", settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("nvp-explorer", "NVP Explorer")
        self._closed = False

        self.session = S.Session()
        self.renderer = Renderer(self)
        self.hub = Hub(self.session, self.renderer, device=device, parent=self)
        self.hub.last_folder = str(self.settings.value("last_folder", str(Path.home())))

        self.message_bar = MessageBar()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.model_panel = ModelPanel(self.hub)
        self.encode_panel = EncodePanel(self.hub)
        self.infoloss_panel = InfoLossPanel(self.hub)
        self.manifold_panel = ManifoldPanel(self.hub)
        self.canvas_panel = CanvasPanel(self.session, self.renderer)
        self.training_panel = TrainingPanel(self.session)
        self.panels = dict(zip(TABS, (self.model_panel, self.encode_panel, self.infoloss_panel, self.manifold_panel,
                                      self.canvas_panel, self.training_panel)))
        for key, title in zip(TABS, TAB_TITLES):
            self.tabs.addTab(self.panels[key], title)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 4, 6, 0)
        lay.setSpacing(4)
        lay.addWidget(self.message_bar)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._build_status_bar()
        self._build_menus()

        h = self.hub
        h.message.connect(self.show_message)
        h.model_changed.connect(self._model_changed)
        h.model_loading.connect(lambda p: self.statusBar().showMessage(f"Opening {p} …"))
        h.model_failed.connect(lambda m: self.statusBar().showMessage("The model could not be opened", 8000))
        self.encode_panel.drop_handler = self.open_paths
        self.model_panel.open_requested.connect(self.open_model)
        self.model_panel.browse_requested.connect(self.browse_model)
        self.training_panel.open_model_requested.connect(self.open_model)
        self.canvas_panel.status_message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.manifold_panel.readout.connect(self.drag_label.setText)
        self.renderer.busy_changed.connect(self._busy_changed)
        self.renderer.progress.connect(self._progress)

        self._restore_settings()
        self._update_model_labels()
        self.model_panel.set_recent(self.recent_models())

    # ---------------------------------------------------------------- building
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy_bar = QProgressBar()
        self.busy_bar.setFixedWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.hide()
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.drag_label = QLabel()  # the Manifold tab's frames/s and latency while dragging
        self.drag_label.setStyleSheet("color: #9aa0a6;")
        for w in (self.drag_label, self.busy_bar, self.model_label, self.device_label):
            sb.addPermanentWidget(w)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self._action(file, "&Open model…", self.browse_model, QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent model")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action(file, "Open &default model", lambda: self.open_model(str(nc.default_model_path())))
        file.addSeparator()
        self._action(file, "Open &images…", self.encode_panel.browse_images, "Ctrl+I")
        self._action(file, "Open image &folder…", self.encode_panel.browse_folder, "Ctrl+Shift+I")
        file.addSeparator()
        self._action(file, "Open &session…", self.browse_open_session, "Ctrl+Shift+O")
        self._action(file, "Save s&ession…", self.browse_save_session, QKeySequence.StandardKey.Save)
        file.addSeparator()
        self._action(file, "&Export view…", self.browse_export_view, "Ctrl+E")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view = mb.addMenu("&View")
        for i, title in enumerate(TAB_TITLES):
            self._action(view, title.replace("&&", "&"), lambda i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")

        dev = mb.addMenu("&Device")
        group = QActionGroup(self)
        import torch

        self.device_actions: dict[str, QAction] = {}
        for key, label in (("auto", "Automatic (CUDA when available)"), ("cpu", "CPU"), ("cuda", "CUDA")):
            act = QAction(label, self, checkable=True)
            act.setEnabled(key != "cuda" or torch.cuda.is_available())
            act.setChecked(key == self.hub.device)
            act.triggered.connect(lambda _=False, key=key: self.set_device(key))
            group.addAction(act)
            dev.addAction(act)
            self.device_actions[key] = act

        helpm = mb.addMenu("&Help")
        self._action(helpm, "&About", self._about)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:  # noqa: ANN001
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

    # ---------------------------------------------------------------- messages and status
    def show_message(self, text: str, level: str = "error") -> None:
        self.message_bar.show_message(text, level)
        self.statusBar().showMessage(text.splitlines()[0][:200], 10000)

    def _busy_changed(self, busy: bool) -> None:
        self.busy_bar.setRange(0, 0)  # indeterminate until a task reports progress
        self.busy_bar.setVisible(busy)

    def _progress(self, key: str, stamp: int, fraction: float, text: str) -> None:
        self.busy_bar.setRange(0, 100)
        self.busy_bar.setValue(int(100 * fraction))

    def _update_model_labels(self) -> None:
        s = self.session
        if s.flow is None:
            self.model_label.setText("no model")
            self.device_label.setText(f"device: {self.hub.device}")
            self.setWindowTitle(APP_NAME)
        else:
            self.model_label.setText(f"model: {model_name(s.model_path)}")
            self.device_label.setText(f"device: {s.flow.device}")
            self.setWindowTitle(f"{model_name(s.model_path)} — {APP_NAME}")

    def _model_changed(self) -> None:
        s = self.session
        self._update_model_labels()
        self.canvas_panel.set_flow(s.flow)
        if s.model_path:
            self._add_recent(s.model_path)
            self.settings.setValue("last_model", s.model_path)
        self.statusBar().showMessage(f"Opened {model_name(s.model_path)} on {s.flow.device}", 8000)
        if self.message_bar.level == "error" and "model" in self.message_bar.text().lower():
            self.message_bar.dismiss()

    # ---------------------------------------------------------------- models
    def open_model(self, path: str) -> None:
        if not path:
            return
        self.hub.open_model(path)

    def browse_model(self) -> None:
        start = str(self.settings.value("last_model_folder", str(nc.default_model_path().parent)))
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, MODEL_FILTER)
        if path:
            self.settings.setValue("last_model_folder", str(Path(path).parent))
            self.open_model(path)

    def set_device(self, device: str) -> None:
        """Reopen the current model on another device."""
        self.hub.device = device
        self.device_actions[device].setChecked(True)
        if self.session.model_path:
            self.open_model(self.session.model_path)
        else:
            self._update_model_labels()

    def recent_models(self) -> list[str]:
        value = self.settings.value("recent_models", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self.recent_models() if p != path]
        recent.insert(0, path)
        self.settings.setValue("recent_models", recent[:MAX_RECENT])
        self.model_panel.set_recent(recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_models()
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for p in recent:
            act = self.recent_menu.addAction(f"{model_name(p)} — {p}")
            act.setEnabled(Path(p).exists())
            act.triggered.connect(lambda _=False, p=p: self.open_model(p))

    def startup_model(self, explicit: str | None = None) -> str | None:
        """What opens at start: the path given, else the default model, else the last one used."""
        if explicit:
            return explicit
        default = nc.default_model_path()
        if S.is_model_path(default):
            return str(default)
        last = self.settings.value("last_model", "")
        if last and Path(str(last)).exists():
            return str(last)
        return None

    # ---------------------------------------------------------------- sessions and export
    def browse_open_session(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self.hub.last_folder, SESSION_FILTER)
        if path:
            self.hub.open_session(path)

    def browse_save_session(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", str(Path(self.hub.last_folder) / f"session{S.SESSION_SUFFIX}"),
                                              SESSION_FILTER)
        if path:
            self.hub.save_session(path)

    def current_key(self) -> str:
        return TABS[self.tabs.currentIndex()]

    def current_view_image(self) -> np.ndarray | None:
        key = self.current_key()
        panel = self.panels[key]
        if key == "canvas":
            return getattr(panel, "shown", None)
        getter = getattr(panel, "current_image", None)
        return getter() if getter is not None else None

    def export_view(self, path: str | Path) -> Path:
        """Write the current tab's main image as a PNG (raises if there is none)."""
        img = self.current_view_image()
        if img is None:
            raise nc.NVPError("this tab has no image to export yet")
        return export.save_png(img, path)

    def browse_export_view(self) -> None:
        key = self.current_key()
        if self.current_view_image() is None:
            self.show_message("This tab has no image to export yet", "warning")
            return
        panel = self.panels[key]
        name = panel.export_name() if hasattr(panel, "export_name") else f"{key}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export view", str(Path(self.hub.last_folder) / name),
                                              "PNG image (*.png)")
        if not path:
            return
        try:
            self.show_message(f"Saved {self.export_view(path)}", "info")
        except (nc.NVPError, OSError) as exc:
            self.show_message(f"Could not export: {exc}", "error")

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()

    def dropEvent(self, ev: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = paths_from_mime(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.open_paths(paths)

    def open_paths(self, paths: list[str]) -> None:
        """A drop onto the window: models open, sessions restore, images (files or folders) are encoded."""
        models = [p for p in paths if S.is_model_path(p)]
        sessions = [p for p in paths if S.is_session_path(p)]
        images = [p for p in paths if p not in models and p not in sessions]
        if models:
            self.open_model(models[0])
            if len(models) > 1:
                self.show_message(f"Opened {Path(models[0]).name}; one model at a time "
                                  f"({len(models) - 1} other model file(s) ignored)", "warning")
        if sessions:
            self.hub.open_session(sessions[0])
        if images:
            if self.current_key() == "manifold":
                empty = self.session.empty_slots()
                self.hub.set_anchor_from_paths(empty[0] if empty else 0, images)
            else:
                self.encode_panel.add_paths(images)
                if self.current_key() not in ("encode", "infoloss"):
                    self.tabs.setCurrentIndex(TABS.index("encode"))

    # ---------------------------------------------------------------- settings and shutdown
    def _restore_settings(self) -> None:
        geo = self.settings.value("geometry")
        if isinstance(geo, (QByteArray, bytes)):
            self.restoreGeometry(geo)
        else:
            self.resize(1440, 900)
        state = self.settings.value("window_state")
        if isinstance(state, (QByteArray, bytes)):
            self.restoreState(state)
        try:
            self.tabs.setCurrentIndex(max(0, min(len(TABS) - 1, int(self.settings.value("tab", 0)))))
        except (TypeError, ValueError):
            pass

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("tab", self.tabs.currentIndex())
        self.settings.setValue("last_folder", self.hub.last_folder)
        self.settings.sync()

    def closeEvent(self, ev: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop every thread the window started: animation, training (checkpoint), canvas, renderer."""
        if self._closed:
            return
        self._closed = True
        self.save_settings()
        self.manifold_panel.stop_animation()
        self.training_panel.shutdown()
        self.canvas_panel.shutdown()
        self.renderer.shutdown()

    def _about(self) -> None:
        self.show_message(
            f"{APP_NAME} {nc.__version__}: a latent-space explorer for Real NVP (Dinh, Sohl-Dickstein & Bengio, "
            "2016). Drop images, models or sessions onto the window; Ctrl+1…6 switch tabs.", "info")

    def settled(self) -> bool:
        """No model loading, no render work, no canvas job: the window shows its final state."""
        return self.hub.loading is None and not self.renderer.busy and not getattr(self.canvas_panel, "busy", False)


def focus_tab(window: MainWindow, name: str) -> None:
    window.tabs.setCurrentIndex(TABS.index(tab_key(name)))

