"""The main window: tabs, menus, drag-and-drop, status bar, settings, autosave, clean shutdown.

Messages go to one fixed-height line in the status bar (:class:`MessageBar`):
nothing in the window moves when a message comes or goes. Work is remembered:
the session (images, anchors, angles, toggles) is autosaved atomically — every
30 s when it changed, and on close — and restored at the next start
(``--fresh`` or File ▸ New session start empty). Replacing unsaved work, and
closing while a run trains, ask first.
"""
from __future__ import annotations

import json
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QTabWidget, QVBoxLayout, QWidget

import nvp_core as nc

from . import dialogs, export
from .models import is_model_path
from .session import (
    N_ANCHORS, SESSION_SUFFIX, Angles, CanvasSettings, InfoLossSettings, Session, SessionDocument, is_session_path,
    read_session,
)
from .hub import Hub
from .panels.canvas import CanvasPanel
from .panels.encode import EncodePanel
from .panels.infoloss import InfoLossPanel
from .panels.manifold import ManifoldPanel
from .panels.model import ModelPanel, display_name, model_name
from .panels.training import TrainingPanel
from .render import Renderer
from .tabs import TAB_ALIASES, TAB_TITLES, TABS, tab_key  # noqa: F401 - re-exported
from .widgets import MessageBar, paths_from_mime

APP_NAME = "NVP Explorer"
SESSION_FILTER = f"NVP Explorer sessions (*{SESSION_SUFFIX});;All files (*)"
MAX_RECENT = 8
AUTOSAVE_INTERVAL_MS = 30_000
# (start of a message, the action it reports on): a success of an action clears its errors.
MESSAGE_ACTIONS = (
    ("Could not open the model", "model"), ("No model is open", "model"), ("No model found", "model"),
    ("Could not open the session", "session-open"), ("Open a model first", "session-open"),
    ("Session restored", "session-open"), ("The last session could not be restored", "session-open"),
    ("Could not save the session", "session-save"), ("Session saved", "session-save"),
    ("Export failed", "sweep"), ("Exported", "sweep"), ("Exporting sweep", "sweep"),
    ("Could not export", "export-view"), ("Saved ", "export-view"), ("This tab has no image", "export-view"),
    ("No image loaded", "images"), ("Loaded ", "images"),
    ("Sampling failed", "samples"),
)


def message_action(text: str) -> str | None:
    """Which action a message reports on (see MESSAGE_ACTIONS), or None."""
    return next((key for prefix, key in MESSAGE_ACTIONS if text.startswith(prefix)), None)


def work_fingerprint(session: Session) -> tuple:
    """What a saved session holds, by content: equal fingerprints mean nothing new to lose.

    Anchors the window fills by itself (samples whose seed is their slot number)
    count as empty, so a window that has only been opened has no work.
    """
    anchors = tuple(None if a is None or (a.kind == "sample" and a.seed == i + 1)
                    else (a.kind, a.label, a.seed, a.temperature) for i, a in enumerate(session.anchors))
    il = session.infoloss
    return (tuple((e.name, e.source, e.box) for e in session.images), anchors, session.angles.as_tuple(),
            tuple(sorted(il.levels)), il.mode, il.temperature, il.seed)


EMPTY_WORK = work_fingerprint(Session())


def session_model(path: str | Path) -> str | None:
    """The model a session file names (only its JSON is read: fast, for choosing the model at start)."""
    try:
        with zipfile.ZipFile(path) as zf:
            doc = json.loads(zf.read("session.json"))
        model = doc.get("model") if isinstance(doc, dict) else None
        return str(model) if model and is_model_path(str(model)) else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


class MainWindow(QMainWindow):
    def __init__(self, device: str = "auto", settings: QSettings | None = None,
                 autosave: str | Path | None = None) -> None:
        """``autosave``: the session file written on close and every 30 s when changed (None: none)."""
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("nvp-explorer", "NVP Explorer")
        dialogs.configure(self.settings)
        self._closed = False
        self.autosave_path = Path(autosave) if autosave is not None else None
        self._saved_work = EMPTY_WORK  # the work as last saved to (or opened from) a session file
        self._autosaved_work: tuple | None = None
        self._restoring_autosave = False  # True until the autosave is back: until then it is never overwritten
        self._after_restore = None
        self._autosave_thread: threading.Thread | None = None
        self._autosave_error = ""

        self.session = Session()
        self.renderer = Renderer(self)
        self.hub = Hub(self.session, self.renderer, device=device, parent=self)
        # Images open from the folder used last, else Pictures (never the current directory).
        self.hub.last_folder = str(self.settings.value("last_folder", dialogs.start_folder("images")))

        self._build_tabs()
        self._build_status_bar()
        self._build_menus()
        self._wire()

        self._restore_settings()
        self._update_model_labels()
        self.model_panel.set_recent(self.recent_models())
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        if self.autosave_path is not None:
            self.autosave_timer.start()

    def _build_tabs(self) -> None:
        """One panel per tab, all sharing the hub; the tabs fill the window above the status bar."""
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
        lay.addWidget(self.tabs, 1)  # messages live in the status bar: nothing above the tabs moves
        self.setCentralWidget(central)

    def _wire(self) -> None:
        """Hub, panel and renderer signals to the window (messages, status bar, opening models)."""
        h = self.hub
        h.message.connect(self.show_message)
        h.model_changed.connect(self._model_changed)
        h.model_loading.connect(lambda p: self.show_status(f"Opening {p} …", 0))
        h.model_failed.connect(lambda m: self.model_label.setText(
            "no model" if self.session.flow is None else self.model_label.text()))
        h.images_changed.connect(lambda: self.message_bar.succeeded("images") if self.session.images else None)
        h.session_restored.connect(self._session_restored)
        self.encode_panel.drop_handler = self.open_paths
        self.model_panel.open_requested.connect(self.open_model)
        self.model_panel.browse_requested.connect(self.browse_model)
        self.training_panel.open_model_requested.connect(self.open_model)
        self.canvas_panel.status_message.connect(lambda m: self.show_status(m))
        self.manifold_panel.readout.connect(self.drag_label.setText)
        self.renderer.busy_changed.connect(self._busy_changed)
        self.renderer.progress.connect(self._progress)

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
        sb.addWidget(self.message_bar, 1)
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
        self._action(file, "&New session", self.new_session, QKeySequence.StandardKey.New)
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
        """A message in the status bar's line; an error stays until dismissed or its action succeeds."""
        self.message_bar.show_message(text, level, key=message_action(text))

    def show_status(self, text: str, timeout_ms: int = 8000) -> None:
        """Plain progress text ("Opening …") in the same line; it never hides an error for long."""
        self.message_bar.show_message(text, "status", timeout_ms=timeout_ms)

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
            name = display_name(s.flow, s.model_path)
            self.model_label.setText(f"model: {name}")
            self.device_label.setText(f"device: {s.flow.device}")
            self.setWindowTitle(f"{name} — {APP_NAME}")

    def _model_changed(self) -> None:
        s = self.session
        self._update_model_labels()
        self.canvas_panel.set_flow(s.flow)
        if s.model_path:
            self._add_recent(s.model_path)
            self.settings.setValue("last_model", s.model_path)
        self.message_bar.succeeded("model")
        self.show_status(f"Opened {display_name(s.flow, s.model_path)} on {s.flow.device}")

    # ---------------------------------------------------------------- models
    def open_model(self, path: str) -> None:
        if not path:
            return
        self.hub.open_model(path)

    def browse_model(self) -> None:
        if not self.settings.value("dialog_folders/model", ""):
            dialogs.remember_folder("model", nc.default_model_path().parent, is_file=False)
        path = dialogs.get_open_file(self, "model", "Open model", dialogs.MODEL_FILTER)
        if path:
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

    def startup_model(self, explicit: str | None = None, session: str | Path | None = None) -> str | None:
        """What opens at start: the path given, else the model of the session being restored,
        else the default model, else the last one used."""
        if explicit:
            return explicit
        if session is not None:
            model = session_model(session)
            if model:
                return model
        default = nc.default_model_path()
        if is_model_path(default):
            return str(default)
        last = self.settings.value("last_model", "")
        if last and Path(str(last)).exists():
            return str(last)
        return None

    # ---------------------------------------------------------------- sessions and export
    def browse_open_session(self) -> None:
        if not self.confirm_replace_work("Open a session"):
            return
        path = dialogs.get_open_file(self, "session-open", "Open session", SESSION_FILTER)
        if path:
            self.open_session(path, confirmed=True)

    def browse_save_session(self, then=None) -> None:  # noqa: ANN001 - callable(Path) or None
        path = dialogs.get_save_file(self, "session-save", "Save session", f"session{SESSION_SUFFIX}",
                                     SESSION_FILTER)
        if path:
            self.save_session(path, then)

    def save_session(self, path: str | Path, then=None) -> None:  # noqa: ANN001 - callable(Path) or None
        """Save to a file the user chose; the work counts as saved once it is written."""
        work = work_fingerprint(self.session)

        def saved(written: Path) -> None:
            self._saved_work = work
            if then is not None:
                then(written)

        self.hub.save_session(path, then=saved)

    def open_session(self, path: str | Path, confirmed: bool = False) -> bool:
        """Open a session file, asking first when it would replace unsaved work. False if not opened."""
        if not confirmed and not self.confirm_replace_work("Open a session"):
            return False
        self.hub.open_session(path)
        return True

    # ---------------------------------------------------------------- unsaved work
    def has_unsaved_work(self) -> bool:
        """Images, anchors, angles or toggles that no session file holds yet."""
        work = work_fingerprint(self.session)
        return work != EMPTY_WORK and work != self._saved_work

    def confirm_replace_work(self, doing: str) -> bool:
        """Before replacing the work: ask to save it when it is unsaved. True: go on."""
        if not self.has_unsaved_work():
            return True
        n = len(self.session.images)
        answer = dialogs.ask(
            self, doing,
            f"{doing} replaces the current work ({n} image(s), the anchors, angles and toggles), "
            "which is not saved in a session file.", ["Save…", "Discard", "Cancel"], default="Save…")
        if answer == "Discard":
            return True
        if answer == "Save…":
            path = dialogs.get_save_file(self, "session-save", "Save session", f"session{SESSION_SUFFIX}",
                                         SESSION_FILTER)
            if not path:
                return False
            # Written on the worker from a snapshot taken now, before anything is replaced.
            self.save_session(path)
            return True
        return False

    def new_session(self) -> bool:
        """File ▸ New session: no images, default anchors, angles and toggles (asks if unsaved)."""
        if not self.confirm_replace_work("New session"):
            return False
        s = self.session
        s.clear_images()
        s.anchors = [None] * N_ANCHORS
        s.angles = Angles()
        s.infoloss = InfoLossSettings()
        s.canvas = CanvasSettings()
        h = self.hub
        h.images_changed.emit()
        h.current_changed.emit(-1)
        h.anchors_changed.emit()
        h.session_restored.emit()
        h.fill_empty_anchors()
        self._saved_work = EMPTY_WORK
        self.show_message("New session: no images; anchors are model samples", "info")
        return True

    def _session_restored(self) -> None:
        if self._restoring_autosave:  # the autosave is not a file the user saved: its work stays "unsaved"
            self._restoring_autosave = False
            self._autosaved_work = work_fingerprint(self.session)
            self._run_after_restore()
        else:
            self._saved_work = work_fingerprint(self.session)

    def _run_after_restore(self) -> None:
        then, self._after_restore = self._after_restore, None
        if then is not None:
            then()

    # ---------------------------------------------------------------- autosave
    def restore_autosave(self, then=None) -> None:  # noqa: ANN001 - callable() or None
        """Bring back the autosaved session with the model that is open (or opening): read on the worker.

        ``then`` runs once it is back (images given on the command line are added
        after it, so the restore does not replace them). Until the restore is
        done the autosave file is not overwritten: closing early loses nothing.
        """
        path = self.autosave_path
        self._after_restore = then
        if path is None or not path.is_file():
            self._run_after_restore()
            return
        self._restoring_autosave = True

        def got(doc: SessionDocument) -> None:
            def apply() -> None:
                self._restoring_autosave = True
                self.hub._restore(doc)  # the open model stays; the work is re-encoded with it

            if self.hub._need_model(apply):
                apply()
            elif not self.hub.loading:  # no model at all: keep the file for a start that has one
                self._run_after_restore()

        def failed(msg: str) -> None:  # a damaged autosave: say so, and let new work replace it
            self._restoring_autosave = False
            self.show_message(f"The last session could not be restored: {msg}", "warning")
            self._run_after_restore()

        self.renderer.submit("read-autosave", lambda job: read_session(path), on_result=got, on_error=failed,
                             replace=False)

    def _snapshot(self) -> Session:
        """A copy of the session's saved parts (the GUI may go on changing the session)."""
        return self.session.snapshot()

    def autosave(self, now: bool = False) -> None:
        """Write the autosave when the work changed since the last one (atomic: Session.save).

        The snapshot is written on a thread of its own, not on the render worker:
        PNG-encoding a few hundred kilobytes per image takes a second or more and
        must not hold up the manifold while the user drags. One write at a time;
        ``now`` (at close) waits for a write in flight, then writes what is left.
        """
        if self._autosave_error:
            self.show_message(self._autosave_error, "warning")
            self._autosave_error = ""
        if self.autosave_path is None or self._restoring_autosave:
            return
        pending = self._autosave_thread
        if pending is not None and pending.is_alive():
            if not now:
                return  # the next tick writes what changed meanwhile
            pending.join(timeout=120)
        work = work_fingerprint(self.session)
        if work == self._autosaved_work:
            return
        snap, path = self._snapshot(), self.autosave_path

        def write() -> None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                snap.save(path)
                self._autosaved_work = work
            except (OSError, ValueError, nc.NVPError) as exc:
                self._autosave_error = f"Autosave failed: could not write {path}: {exc}"

        if now:
            write()
            if self._autosave_error:
                print(self._autosave_error, file=sys.stderr)
            return
        self._autosave_thread = threading.Thread(target=write, name="autosave", daemon=True)
        self._autosave_thread.start()

    def autosave_busy(self) -> bool:
        return self._autosave_thread is not None and self._autosave_thread.is_alive()

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
        path = dialogs.get_save_file(self, "export-view", "Export view", name, "PNG image (*.png)")
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
        models = [p for p in paths if is_model_path(p)]
        sessions = [p for p in paths if is_session_path(p)]
        images = [p for p in paths if p not in models and p not in sessions]
        if models:
            self.open_model(models[0])
            if len(models) > 1:
                self.show_message(f"Opened {Path(models[0]).name}; one model at a time "
                                  f"({len(models) - 1} other model file(s) ignored)", "warning")
        if sessions:
            self.open_session(sessions[0])
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
        if not self._closed and self.training_panel.running:
            answer = dialogs.ask(self, "Training is running",
                                 "A training run is going on. Stop it (a checkpoint and the model are saved, "
                                 "so it can be resumed) and close?", ["Stop and save", "Cancel"], default="Cancel")
            if answer != "Stop and save":
                ev.ignore()
                return
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop every thread the window started (animation, training with a checkpoint, canvas,
        renderer) and autosave the session."""
        if self._closed:
            return
        self._closed = True
        self.autosave_timer.stop()
        self.save_settings()
        self.autosave(now=True)
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

