"""Issue 11, the explorer's side: what the window saves and shows is true, and it stays calm.

Items: 2 (exports never mix), 3 (training form locked during a run), 4 (messages move
nothing; errors stay until dismissed or their action succeeds), 5 (opening a session
asks before replacing unsaved work), 8 (file dialogs start in standard places and
remember), 9 (model names from metadata, dated test bits/dim, close during training
asks), 10 (fast --help, startup benchmark), 11 (work autosaved and restored; --fresh).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

import nvp_core as nc
from explorer import dialogs
from explorer.models import load_model
from explorer.session import Angles, Session, encode_items, read_images, read_session
from explorer.main_window import MainWindow
from explorer.panels.model import display_name, bpd_caption
from explorer.widgets import MessageBar

from test_gui import make_images, settle  # tests/ is on sys.path (rootdir conftest)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def scratch_places():
    """Standard places in Qt's test mode (~/.qttest) and dialog folders in memory:
    nothing here reads or writes the user's settings."""
    QStandardPaths.setTestModeEnabled(True)
    dialogs.configure(None)
    dialogs._memory.clear()
    yield
    dialogs.configure(None)
    dialogs._memory.clear()
    QStandardPaths.setTestModeEnabled(False)


@pytest.fixture
def make_window(qtbot, explorer_settings):
    made = []

    def make(**kw) -> MainWindow:
        w = MainWindow(device="cpu", settings=explorer_settings, **kw)
        qtbot.addWidget(w)
        w.resize(1200, 800)
        made.append(w)
        return w

    yield make
    for w in made:
        w.shutdown()


@pytest.fixture
def loaded(qtbot, make_window, tiny_model_path, tmp_path):
    w = make_window(autosave=tmp_path / "auto" / "autosave.nvps")
    w.open_model(str(tiny_model_path))
    settle(qtbot, w)
    w.encode_panel.add_paths([str(p) for p in make_images(tmp_path / "imgs", 3)])
    settle(qtbot, w)
    assert len(w.session.images) == 3
    return w


class Asked:
    """Stands in for dialogs.ask: records the questions, gives a fixed answer."""

    def __init__(self, answer: str | None) -> None:
        self.answer, self.questions = answer, []

    def __call__(self, parent, title, text, choices, default=None):  # noqa: ANN001
        self.questions.append((title, text, list(choices)))
        return self.answer


# ---------------------------------------------------------------- item 2: exports never mix
def test_sweep_exports_go_into_fresh_folders_and_never_mix(qtbot, loaded, tmp_path):
    w = loaded
    w.hub.fill_anchors_from_images()
    w.hub.sample_anchors(list(range(3, 8)), seeds=list(range(3, 8)))
    settle(qtbot, w)
    out = tmp_path / "exports"
    out.mkdir()
    (out / "sweep_phi_0001.png").write_bytes(b"the user's own file")
    from explorer.dialogs import ExportDialog

    dialog = ExportDialog(None, default_frames=6, default_size=(16, 16), default_folder=out, default_name="sweep_phi")
    qtbot.addWidget(dialog)
    assert dialog.fresh.isChecked() and "a new folder" in dialog.summary.text()
    dialog.animation.setCurrentIndex(0)  # PNGs only
    first = dialog.options()
    w.manifold_panel.export_sweep(first, "phi")
    settle(qtbot, w)
    w.manifold_panel.set_angles(40.0, 0.0, 0.0)  # "change an anchor/angle", then a shorter export
    dialog.frames.setValue(2)
    w.manifold_panel.export_sweep(dialog.options(), "phi")
    settle(qtbot, w)
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2
    assert sorted(len(list(r.glob("*.png"))) for r in runs) == [2, 6]  # each run complete, nothing mixed
    assert (out / "sweep_phi_0001.png").read_bytes() == b"the user's own file"  # nothing touched
    assert str(runs[1]) in w.message_bar.text() or str(runs[0]) in w.message_bar.text()


def test_export_into_the_same_folder_asks_before_replacing(qtbot, tmp_path, monkeypatch):
    from explorer.dialogs import ExportDialog

    folder = tmp_path / "same"
    folder.mkdir()
    for i in range(6):
        (folder / f"sw_{i:04d}.png").write_bytes(b"old")
    dialog = ExportDialog(None, default_frames=2, default_size=(16, 16), default_folder=folder, default_name="sw")
    qtbot.addWidget(dialog)
    dialog.animation.setCurrentIndex(0)
    dialog.fresh.setChecked(False)
    assert "Overwrites 2 existing file(s)" in dialog.summary.text()
    assert "4 older frame(s)" in dialog.summary.text()
    asked = Asked("Cancel")
    monkeypatch.setattr(dialogs, "ask", asked)
    dialog.accept()
    assert asked.questions and dialog.result() != dialog.DialogCode.Accepted
    asked.answer = "Replace"
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert len(list(folder.glob("sw_*.png"))) == 6  # asking never deleted anything
    again = ExportDialog(None)  # the next sweep export starts where this one went (item 8)
    qtbot.addWidget(again)
    assert Path(again.folder.text()) == folder


# ---------------------------------------------------------------- item 3: training form locked
def test_training_form_is_locked_while_a_run_goes_on(qtbot, tmp_path):
    from explorer.panels.training import TrainingPanel

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    p = TrainingPanel(SimpleNamespace(flow=None, device=torch.device("cpu")))
    qtbot.addWidget(p)
    p.use_folder.setChecked(True)
    p.folder.setText(str(folder))
    for box, v in ((p.size_box, 8), (p.width_box, 4), (p.blocks, 1), (p.scales, 2), (p.batch, 4), (p.steps, 3),
                   (p.eval_every, 2), (p.eval_images, 8), (p.sample_every, 3), (p.n_samples, 4)):
        box.setValue(v)
    p.device.setCurrentIndex(p.device.findData("cpu"))
    p.out.setText(str(tmp_path / "run"))
    p.show()
    try:
        assert p.width_box.isEnabled() and p.steps.isEnabled()
        p.start()
        assert p.running
        for w in (p.width_box, p.steps, p.size_box, p.lr, p.out, p.use_photos, p.resume_box):
            assert not w.isEnabled(), w
        assert p.locked_note.isVisible()
        qtbot.waitUntil(lambda: not p.running, timeout=60000)
        assert p.width_box.isEnabled() and p.steps.isEnabled() and not p.locked_note.isVisible()
    finally:
        p.shutdown()


# ---------------------------------------------------------------- item 4: messages move nothing
def test_messages_never_move_the_tabs(qtbot, make_window):
    w = make_window()
    w.show()
    qtbot.waitExposed(w)
    before = (w.tabs.mapTo(w, w.tabs.rect().topLeft()), w.tabs.size())
    for level in ("info", "warning", "error"):
        w.show_message(f"a {level} message that is rather long " * 4, level)
        qtbot.wait(30)
        assert (w.tabs.mapTo(w, w.tabs.rect().topLeft()), w.tabs.size()) == before, level
    assert w.message_bar.height() == w.message_bar.minimumHeight() == w.message_bar.maximumHeight()


def test_errors_stay_until_dismissed_or_their_action_succeeds(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(MessageBar, "TIMEOUTS", {"info": 50, "warning": 50, "status": 50})
    w = make_window()
    bar = w.message_bar
    w.show_message("Export failed: the disk is full", "error")
    w.show_message("Session saved to /x.nvps", "info")  # another action: shown for a moment...
    assert bar.text().startswith("Session saved")
    qtbot.waitUntil(lambda: bar.level == "error", timeout=2000)  # ...then the error is back
    assert bar.text() == "Export failed: the disk is full"
    w.show_message("Exported 4 file(s) to /y", "info")  # the same action succeeded
    qtbot.waitUntil(lambda: bar.text() == "", timeout=2000)
    assert bar.errors == []
    w.show_message("Could not open the session: bad.nvps: not a zip", "error")
    assert bar.close_button.isVisibleTo(bar)
    bar.close_button.click()
    assert bar.text() == "" and bar.errors == []


# ---------------------------------------------------------------- item 5: opening a session asks
def test_opening_a_session_asks_before_replacing_unsaved_work(qtbot, loaded, tmp_path, monkeypatch):
    w = loaded
    saved = tmp_path / "two.nvps"
    w.hub.remove_image(2)
    w.save_session(saved)
    settle(qtbot, w)
    assert saved.exists() and not w.has_unsaved_work()
    w.encode_panel.add_paths([str(make_images(tmp_path / "more", 1)[0])])
    settle(qtbot, w)
    assert len(w.session.images) == 3 and w.has_unsaved_work()
    asked = Asked("Cancel")
    monkeypatch.setattr(dialogs, "ask", asked)
    assert not w.open_session(saved)
    settle(qtbot, w)
    assert len(asked.questions) == 1 and "not saved" in asked.questions[0][1]
    assert len(w.session.images) == 3  # nothing replaced
    asked.answer = "Discard"
    assert w.open_session(saved)
    settle(qtbot, w)
    assert len(w.session.images) == 2 and not w.has_unsaved_work()
    n = len(asked.questions)
    w.open_session(saved)  # saved work: no question
    settle(qtbot, w)
    assert len(asked.questions) == n


# ---------------------------------------------------------------- item 8: where files go
def test_dialogs_start_in_standard_places_and_remember(qtbot, make_window, tmp_path, monkeypatch):
    pictures = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation))
    appdata = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    w = make_window()
    monkeypatch.chdir(tmp_path)
    assert Path(w.training_panel.out.text()).parent == appdata / "runs"
    assert not w.training_panel.out.text().startswith(str(tmp_path))
    from explorer.dialogs import ExportDialog

    d = ExportDialog(None)
    qtbot.addWidget(d)
    assert Path(d.folder.text()) == pictures  # sweeps: Pictures, not the current directory
    starts = []
    chosen = tmp_path / "mine" / "canvas.png"
    chosen.parent.mkdir()

    def fake_save(parent, title, start, filters):  # noqa: ANN001
        starts.append(start)
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    cp = w.canvas_panel
    monkeypatch.setattr(cp, "save_image", lambda path: Path(path))
    cp._save_dialog()
    cp._save_dialog()
    assert not starts[0].startswith(str(tmp_path))  # not the CWD
    first = Path(starts[0]).parent
    assert first in (pictures, *pictures.parents)  # Pictures (or, missing, its nearest existing folder)
    assert Path(starts[1]).parent == chosen.parent  # remembered
    path = dialogs.get_save_file(w, "session-save", "Save session", "s.nvps", "*")
    documents = dialogs.standard_folder("documents")
    assert Path(starts[2]).parent in (documents, *documents.parents)
    assert path == str(chosen) and dialogs.folder_for("session-save") == chosen.parent
    # kept in the window's settings (a scratch file here), so the next start remembers too
    assert w.settings.value("dialog_folders/canvas-save") == str(chosen.parent)


# ---------------------------------------------------------------- item 9: names, test score, close
def test_model_name_comes_from_metadata(tiny_flow):
    tiny_flow.metadata = {"data": "photo-crops", "size": 32, "run_name": "sunday-run"}
    assert display_name(tiny_flow, "/x/runs/train-1/model") == "photo-crops 32×32 · sunday-run"
    tiny_flow.metadata = {"data": "/home/me/textures", "step": 5}
    assert display_name(tiny_flow, "/x/runs/train-1/model") == "textures 16×16 · train-1"  # not "model"
    tiny_flow.metadata = {"data": "photo-crops", "size": 32}
    assert display_name(tiny_flow, "/assets/models/photo-crops-32") == "photo-crops 32×32"
    tiny_flow.metadata = {}
    assert display_name(tiny_flow, "/x/runs/train-1/model/model.safetensors") == "train-1"


def test_test_score_says_when_it_was_measured():
    stale = {"step": 23, "test_bpd": 8.51, "test_bpd_step": 0, "test_images": 64}
    text, old = bpd_caption(stale, 8.51)
    assert text.startswith("8.510 at step 0") and "saved at step 23" in text and old
    text, old = bpd_caption({"step": 300, "test_bpd_step": 300}, 3.69)
    assert text == "3.690 at step 300" and not old
    # older metadata: the step is found in the run's history
    hist = {"step": 23, "history": {"test": [[0, 8.51]]}}
    assert bpd_caption(hist, 8.51)[1]


def test_stale_test_score_on_the_model_card(qtbot, make_window, tiny_flow, tmp_path):
    folder = tmp_path / "runs" / "train-7" / "model"
    nc.save(tiny_flow, folder, metadata={"test_bpd": 8.51, "test_bpd_step": 0, "step": 23, "data": "photo-crops",
                                         "size": 16, "train_bpd": 7.56})
    w = make_window()
    w.open_model(str(folder))
    settle(qtbot, w)
    card = w.model_panel.fields["bpd"].text()
    assert card.startswith("8.510 at step 0") and "saved at step 23" in card
    assert w.model_panel.header.text() == "photo-crops 16×16 · train-7"
    assert "photo-crops 16×16 · train-7" in w.windowTitle()


def test_window_says_a_model_is_loading(qtbot, make_window, tiny_model_path):
    w = make_window()
    w.open_model(str(tiny_model_path))  # loads on the worker: the window is there meanwhile
    assert w.model_panel.header.text() == "Loading model…"
    assert w.message_bar.text().startswith("Opening ")
    settle(qtbot, w)
    assert w.model_panel.header.text() == "random 16×16 · tiny-model"
    assert w.message_bar.text().startswith("Opened random 16×16")


def test_closing_during_training_asks(qtbot, make_window, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    make_images(folder, 8)
    w = make_window()
    p = w.training_panel
    p.use_folder.setChecked(True)
    p.folder.setText(str(folder))
    for box, v in ((p.size_box, 8), (p.width_box, 4), (p.blocks, 1), (p.scales, 2), (p.batch, 4), (p.steps, 100000),
                   (p.eval_every, 100000), (p.eval_images, 4), (p.sample_every, 100000), (p.n_samples, 4)):
        box.setValue(v)
    p.device.setCurrentIndex(p.device.findData("cpu"))
    p.out.setText(str(tmp_path / "run"))
    p.start()
    qtbot.waitUntil(lambda: "start" in p.events, timeout=60000)
    asked = Asked("Cancel")
    monkeypatch.setattr(dialogs, "ask", asked)
    assert not w.close()
    assert p.running and len(asked.questions) == 1 and "Stop and save" in asked.questions[0][2]
    asked.answer = "Stop and save"
    assert w.close()
    assert not p.running and (tmp_path / "run" / "model").is_dir()


# ---------------------------------------------------------------- item 10: fast --help, startup benchmark
def test_arguments_are_parsed_before_torch_and_qt_load():
    code = ("import sys; from explorer.app import parse_args; a = parse_args(['--tab', 'Manifold', '--fresh']); "
            "print(a.tab, a.fresh, 'torch' in sys.modules, 'PySide6.QtWidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["manifold", "True", "False", "False"], out.stderr
    help_ = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True,
                           timeout=60)
    assert help_.returncode == 0 and "--fresh" in help_.stdout


def test_startup_benchmark_measures_a_start(tiny_model_path, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("startup", ROOT / "benchmarks" / "startup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    env = mod._env(tmp_path)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["NVP_TORCH_THREADS"] = "1"
    marks = mod.time_start(ROOT, env, str(tiny_model_path), "cpu", 180)
    assert 0 < marks["first_window"] <= marks["main_window"] <= marks["usable"] < 180
    assert not (tmp_path / "no-autosave.nvps").exists()
    r = {"root": "x", "runs": 1, "help_s": 0.3, "first_window_s": marks["first_window"],
         "main_window_s": marks["main_window"], "usable_s": marks["usable"], "platform": "offscreen",
         "load_average": [0.0]}
    assert "| model loaded (usable) |" in mod.table(r)


# ---------------------------------------------------------------- item 11: work remembered
def test_work_is_autosaved_and_comes_back(qtbot, loaded, make_window, tiny_model_path, tmp_path):
    w = loaded
    w.hub.fill_anchors_from_images()
    w.hub.sample_anchors([5], seeds=[77])
    w.manifold_panel.set_angles(10.0, 20.0, 30.0)
    w.infoloss_panel.level_boxes[1].setChecked(True)
    settle(qtbot, w)
    auto = w.autosave_path
    w.autosave()  # the periodic save: on a thread of its own, atomic
    qtbot.waitUntil(lambda: not w.autosave_busy(), timeout=30000)
    assert auto.is_file() and len(read_session(auto).images) == 3
    names = [e.name for e in w.session.images]
    w.close()  # and on close
    assert auto.is_file()

    w2 = make_window(autosave=auto)
    assert w2.startup_model(None, session=auto) == str(tiny_model_path)
    w2.open_model(str(tiny_model_path))
    w2.restore_autosave()
    settle(qtbot, w2)
    s2 = w2.session
    assert [e.name for e in s2.images] == names
    assert s2.angles == Angles(10.0, 20.0, 30.0) and s2.infoloss.levels == {2}
    assert w2.infoloss_panel.level_boxes[1].isChecked()
    assert s2.anchors[5].kind == "sample" and s2.anchors[5].seed == 77
    assert s2.anchors[0].kind == "image"
    assert w2.has_unsaved_work()  # an autosave is not a file the user saved

    # File ▸ New session: a clean start (asks first: the work is unsaved)
    w2_ask = Asked("Discard")
    import explorer.dialogs as d

    orig, d.ask = d.ask, w2_ask
    try:
        assert w2.new_session()
    finally:
        d.ask = orig
    settle(qtbot, w2)
    assert w2_ask.questions and s2.images == [] and s2.angles == Angles()
    assert all(a is not None and a.kind == "sample" for a in s2.anchors)
    assert not w2.has_unsaved_work()


_DRIVER = textwrap.dedent("""
    import os, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])
    state = {"quiet": 0}
    def poll():
        ws = [w for w in QApplication.topLevelWidgets() if hasattr(w, "session") and hasattr(w, "hub")]
        if ws and ws[0].session.has_model and ws[0].settled():
            state["quiet"] += 1
            if state["quiet"] > 20:
                print("IMAGES", len(ws[0].session.images), flush=True)
                os._exit(0)
        else:
            state["quiet"] = 0
    t = QTimer(); t.timeout.connect(poll); t.start(50)
    from explorer.app import main
    main(sys.argv[1:])
""")


@pytest.mark.parametrize("extra, expected", [([], 2), (["--fresh"], 0), (["--images", "IMG"], 3)])
def test_start_restores_the_autosave_unless_fresh(tiny_model_path, tmp_path, extra, expected):
    """The last session comes back at start; --fresh starts empty; --images add to the restored ones."""
    snap = Session()
    snap.model_path = str(tiny_model_path)
    items, _ = read_images(make_images(tmp_path / "imgs", 2))
    flow = load_model(tiny_model_path, "cpu")
    snap.images = encode_items(flow, items)
    auto = tmp_path / "autosave.nvps"
    snap.save(auto)
    extra = [str(make_images(tmp_path / "more", 1)[0]) if a == "IMG" else a for a in extra]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NVP_TORCH_THREADS": "1",
           "NVP_EXPLORER_AUTOSAVE": str(auto), "NVP_EXPLORER_SETTINGS": str(tmp_path / "s.ini")}
    out = subprocess.run([sys.executable, "-c", _DRIVER, "--device", "cpu", *extra], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("IMAGES")), None)
    assert line is not None, out.stderr[-2000:]
    assert line == f"IMAGES {expected}"


def test_screenshot_runs_never_touch_the_autosave(tiny_model_path, tmp_path):
    auto = tmp_path / "autosave.nvps"
    auto.write_bytes(b"not even a session")
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NVP_TORCH_THREADS": "1", "NVP_EXPLORER_AUTOSAVE": str(auto)}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), str(tiny_model_path), "--device", "cpu",
                           "--tab", "model", "--size", "800x600", "--screenshot", str(out)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and auto.read_bytes() == b"not even a session"
    assert "could not be restored" not in proc.stdout + proc.stderr


def test_closing_before_the_restore_is_done_keeps_the_autosave(qtbot, make_window, tiny_model_path, tmp_path):
    snap = Session()
    items, _ = read_images(make_images(tmp_path / "imgs", 2))
    snap.images = encode_items(load_model(tiny_model_path, "cpu"), items)
    auto = snap.save(tmp_path / "autosave.nvps")
    before = auto.read_bytes()
    w = make_window(autosave=auto)
    w.open_model(str(tiny_model_path))
    w.restore_autosave()
    w.shutdown()  # closed while the model still loads: the empty window must not overwrite the file
    assert auto.read_bytes() == before


def test_an_autosave_that_cannot_be_written_is_a_message(qtbot, make_window, tiny_model_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    w = make_window(autosave=blocker / "autosave.nvps")  # a folder that cannot exist
    w.open_model(str(tiny_model_path))
    settle(qtbot, w)
    w.encode_panel.add_paths([str(make_images(tmp_path / "imgs", 1)[0])])
    settle(qtbot, w)
    w.autosave()
    qtbot.waitUntil(lambda: not w.autosave_busy(), timeout=30000)
    w.autosave()  # the next tick reports it (the GUI thread shows messages)
    assert w.message_bar.text().startswith("Autosave failed") and w.message_bar.level == "warning"
    assert blocker.read_text() == "x"
