"""The explorer window and its Model / Encode / Information loss / Manifold tabs, driven through qtbot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from explorer.entries import default_box
from explorer.export import ExportOptions
from explorer.main_window import MainWindow, tab_key
from explorer.session import Angles

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parent.parent


def make_images(folder: Path, n: int) -> list[Path]:
    """n different smooth pictures (a gradient and a disc each), as PNG files of odd sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        h, w = 24 + 2 * i, 30
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 8 + 40 * i) % 256, yy * 9 % 256, np.full_like(xx, 30 * i % 256)], -1)
        img[(yy - h / 2) ** 2 + (xx - 10 - i) ** 2 < 30] = (250 - 20 * i, 20 * i, 120)
        p = folder / f"img{i}.png"
        Image.fromarray(img.astype(np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def window(qtbot, explorer_settings):
    w = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    yield w
    w.shutdown()
    assert w.renderer._worker.isFinished(), "the render QThread is still running"


def settle(qtbot, w: MainWindow, timeout: int = 30000) -> None:
    qtbot.waitUntil(w.settled, timeout=timeout)


@pytest.fixture
def loaded(qtbot, window, tiny_model_path, tmp_path):
    """A window with the tiny model and eight encoded images."""
    window.open_model(str(tiny_model_path))
    settle(qtbot, window)
    assert window.session.has_model
    window.encode_panel.add_paths([str(p) for p in make_images(tmp_path / "imgs", 8)])
    settle(qtbot, window)
    assert len(window.session.images) == 8
    return window


def _drop(widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(ev)


# ---------------------------------------------------------------- model
def test_starts_without_a_model_and_says_so(qtbot, window, tmp_path):
    assert window.model_panel.header.text() == "No model open"
    assert "no model" in window.model_label.text()
    window.encode_panel.add_paths([str(make_images(tmp_path, 1)[0])])
    assert "No model is open" in window.message_bar.text()
    assert window.session.images == []


def test_open_model_shows_its_card_and_samples(qtbot, window, tiny_model_path):
    window.open_model(str(tiny_model_path))
    settle(qtbot, window)
    mp = window.model_panel
    assert mp.header.text() == "random 16×16 · tiny-model"  # named from its metadata (issue 11, item 9)
    assert mp.fields["bpd"].text() == "6.500  — the step it was measured at is not recorded"
    assert mp.fields["levels"].text() == "L = 3"
    assert mp.fields["training"].text() == "data: random, 3 steps"
    assert mp.fields["params"].text() == f"{sum(p.numel() for p in window.session.flow.parameters()):,}"
    assert "cpu" in window.device_label.text()
    img = mp.samples.image()
    assert img is not None and img.shape == (4 * 16 + 5, 4 * 16 + 5, 3)
    before = img.copy()
    mp.seed.setValue(mp.seed.value() + 1)
    settle(qtbot, window)
    assert not np.array_equal(mp.samples.image(), before)
    assert window.recent_models()[0] == str(tiny_model_path)


def test_wrong_model_file_is_a_message_and_keeps_the_session(qtbot, window, tiny_model_path, tmp_path):
    window.open_model(str(tiny_model_path))
    settle(qtbot, window)
    flow = window.session.flow
    for i, content in enumerate([b"\x80\x04pickled", b"just some text", b""]):
        bad = tmp_path / f"bad{i}.safetensors"
        bad.write_bytes(content)
        window.message_bar.dismiss()
        # dropping a model file onto the window (or the Encode tab) opens it as a model
        _drop(window if i % 2 == 0 else window.encode_panel, [bad])
        settle(qtbot, window)
        assert "Could not open the model" in window.message_bar.text()
        assert window.message_bar.level == "error"
        assert window.session.flow is flow
        assert window.model_panel.header.text() == "random 16×16 · tiny-model"


# ---------------------------------------------------------------- encode
def test_drop_images_and_folders_bad_ones_reported(qtbot, window, tiny_model_path, tmp_path):
    window.open_model(str(tiny_model_path))
    settle(qtbot, window)
    good = make_images(tmp_path / "a", 2)
    folder = tmp_path / "b"
    make_images(folder, 3)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    window.tabs.setCurrentIndex(0)
    _drop(window, [*good, bad, folder])
    settle(qtbot, window)
    s = window.session
    assert len(s.images) == 5
    assert "broken.jpg" in window.message_bar.text() and window.message_bar.level == "warning"
    assert window.current_key() == "encode"  # a drop of images shows them
    ep = window.encode_panel
    assert ep.list.count() == 5
    e = s.current_image
    assert np.array_equal(ep.original.image(), e.pixels)
    assert np.array_equal(ep.recon.image(), e.recon)
    assert f"{e.bpd:.3f}" in ep.stats.text() and "(exact)" in ep.stats.text()
    assert len(ep.level_views) == 3 and all(v.has_image for v in ep.level_views)
    # the level views follow the selection
    first = ep.level_views[0].image().copy()
    ep.list.setCurrentRow(1)
    assert s.current == 1
    assert not np.array_equal(ep.level_views[0].image(), first)
    # hover read-out on a level view (the input-layout views; the true-element views: test_latent_views.py)
    view = ep.level_views[0]  # z(1): 8×8 values shown over the 16×16 input
    e = s.current_image
    expected = e.levels[0].mean(axis=0)
    ep.mode.setCurrentIndex(ep.mode.findData("mean"))
    scene = view.view.mapViewToScene(QPointF(5.5, 2.5))  # input pixel (5, 2) → level pixel (2, 1)
    view._on_mouse(scene)
    assert view.info.text().endswith(f"y=1, x=2: {expected[1, 2]:+.5f}")
    assert "values" in view._range_text
    ep.mode.setCurrentIndex(ep.mode.findData("r"))  # red channel only
    view._on_mouse(scene)
    assert view.info.text().endswith(f"y=1, x=2: {e.levels[0][0, 1, 2]:+.5f}")
    # a chosen crop instead of the centre one
    from nvp_core.images import fit_image

    dialog = ep.open_crop_dialog()
    assert dialog.box() == default_box(e.original, 16, 16)
    dialog.set_box((2, 1, 14, 13))
    dialog.accept()
    settle(qtbot, window)
    cropped = s.current_image
    assert s.current == 1 and cropped.box == (2, 1, 14, 13)
    assert np.array_equal(cropped.pixels, fit_image(e.original, 16, 16, box=(2, 1, 14, 13)))
    assert np.array_equal(ep.original.image(), cropped.pixels) and "chosen crop" in ep.original.info.text()


# ---------------------------------------------------------------- information loss
def test_information_loss_toggles_and_strip(qtbot, loaded, tmp_path):
    w = loaded
    ip = w.infoloss_panel
    w.tabs.setCurrentIndex(2)
    settle(qtbot, w)
    recon = w.session.current_image.recon
    assert np.array_equal(ip.result.image(), recon)
    assert len(ip.level_boxes) == 3
    ip.level_boxes[0].setChecked(True)
    settle(qtbot, w)
    noisy = ip.result.image().copy()
    assert not np.array_equal(noisy, recon)
    assert w.session.infoloss.levels == {1}
    ip.zero.setChecked(True)
    settle(qtbot, w)
    zero = ip.result.image().copy()
    assert not np.array_equal(zero, noisy) and not np.array_equal(zero, recon)
    ip.zero.setChecked(False)
    settle(qtbot, w)
    assert np.array_equal(ip.result.image(), noisy)  # same seed: same noise
    ip.reroll.click()
    settle(qtbot, w)
    assert not np.array_equal(ip.result.image(), noisy)
    ip.level_boxes[0].setChecked(False)
    settle(qtbot, w)
    assert np.array_equal(ip.result.image(), recon)
    # the seed's figure for this image
    ip.strip_btn.click()
    settle(qtbot, w)
    strip = ip.strip_image()
    assert strip.shape == (16, 3 * 16 + 2 * 2, 3)
    assert np.array_equal(strip[:, :16], w.session.current_image.recon)
    out = ip.save_strip(tmp_path / "strip.png")
    assert np.array_equal(np.asarray(Image.open(out)), strip)


# ---------------------------------------------------------------- manifold
def _fill_anchors(qtbot, w):
    w.hub.fill_anchors_from_images()
    settle(qtbot, w)
    return [e.recon for e in w.session.images[:8]]


def test_manifold_sliders_reach_the_anchors(qtbot, loaded):
    w = loaded
    mp = w.manifold_panel
    recons = _fill_anchors(qtbot, w)
    mp.set_angles(0, 0, 0)
    settle(qtbot, w)
    assert np.abs(mp.view.image().astype(int) - recons[0].astype(int)).max() <= 1
    mp.controls["phi"].slider.setValue(900)  # φ = 90°: z5
    settle(qtbot, w)
    assert mp.controls["phi"].spin.value() == 90.0 and w.session.angles.phi == 90.0
    assert np.abs(mp.view.image().astype(int) - recons[4].astype(int)).max() <= 1
    mp.controls["phi2"].spin.setValue(90.0)  # and φ″ = 90°: z6
    settle(qtbot, w)
    assert np.abs(mp.view.image().astype(int) - recons[5].astype(int)).max() <= 1


def test_dragging_shows_the_final_angles_without_backlog(qtbot, loaded):
    w = loaded
    mp = w.manifold_panel
    _fill_anchors(qtbot, w)
    slider = mp.controls["phi1"].slider
    runs = []
    w.renderer._worker.finished_job.connect(lambda job, status, value: runs.append(job.key))
    for v in range(0, 1201, 10):  # a 120° drag in 1° steps
        slider.setValue(v)
    settle(qtbot, w)
    assert runs.count("manifold") < 60  # most requests were replaced while pending
    angles = Angles(*w.session.angles.as_tuple())
    assert angles.phi1 == 120.0
    want = w.session.manifold_task(angles)(lambda f: None)
    assert np.array_equal(mp.view.image(), want)
    assert mp.frame_done()


def test_keyboard_and_play(qtbot, loaded):
    w = loaded
    mp = w.manifold_panel
    _fill_anchors(qtbot, w)
    slider = mp.controls["phi"].slider
    slider.setFocus()
    QTest.keyClick(slider, Qt.Key.Key_Right)
    QTest.keyClick(slider, Qt.Key.Key_Right)
    assert w.session.angles.phi == pytest.approx(2.0)
    QTest.keyClick(slider, Qt.Key.Key_PageUp)
    assert w.session.angles.phi == pytest.approx(17.0)
    mp.speed.setValue(5.0)
    mp.controls["phi2"].play.click()
    assert mp.timer.isActive()
    qtbot.waitUntil(lambda: w.session.angles.phi2 >= 15.0, timeout=20000)
    mp.controls["phi2"].play.click()
    assert not mp.timer.isActive()
    settle(qtbot, w)
    assert w.session.angles.phi2 % 5.0 == pytest.approx(0.0)
    assert mp.view.info.text().endswith(f"φ″ = {w.session.angles.phi2:.1f}°")


def test_slots_take_drops_samples_and_grid(qtbot, loaded, tmp_path):
    w = loaded
    mp = w.manifold_panel
    w.hub.sample_anchors(list(range(8)), seeds=list(range(8)))
    settle(qtbot, w)
    assert all(a.kind == "sample" for a in w.session.anchors)
    path = make_images(tmp_path / "slot", 1)[0]
    _drop(mp.slots[2], [path])  # a drop on slot z3
    settle(qtbot, w)
    a = w.session.anchors[2]
    assert a.kind == "image" and a.label == "img0.png"
    assert mp.slots[2].caption.text().startswith("z3 · img0")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    mp.drop_on_slot(4, [str(bad)])
    settle(qtbot, w)
    assert "bad.png" in w.message_bar.text() and w.session.anchors[4].kind == "sample"
    mp.grid_btn.click()
    settle(qtbot, w)
    grid = mp.grid_view.image()
    assert grid.shape == (8 * 16 + 9, 8 * 16 + 9, 3)
    assert np.abs(grid[1:17, 1:17].astype(int) - w.session.anchors[0].thumbnail.astype(int)).max() <= 1


def test_export_sweep_and_view(qtbot, loaded, tmp_path):
    w = loaded
    mp = w.manifold_panel
    _fill_anchors(qtbot, w)
    w.tabs.setCurrentIndex(3)
    opts = ExportOptions(frames=4, width=32, height=32, sequence=True, animation=".gif", fps=10,
                         folder=tmp_path / "sweep", name="sw")
    mp.export_sweep(opts, "phi2")
    settle(qtbot, w)
    pngs = sorted((tmp_path / "sweep").glob("sw_*.png"))
    assert len(pngs) == 4 and (tmp_path / "sweep" / "sw.gif").exists()
    second = np.asarray(Image.open(pngs[1]).convert("RGB"))
    assert second.shape == (32, 32, 3)
    z2 = w.session.anchors[1].thumbnail.repeat(2, 0).repeat(2, 1)  # φ″ = 90° is z2, scaled 2× nearest
    assert np.abs(second.astype(int) - z2.astype(int)).max() <= 1
    assert "Exported 5 file(s)" in w.message_bar.text()
    settle(qtbot, w)
    out = w.export_view(tmp_path / "view.png")
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), mp.view.image())
    # a full disk (or any unwritable target) is a message, not a crash
    blocker = tmp_path / "file"
    blocker.write_text("x")
    mp.export_sweep(ExportOptions(frames=2, width=16, height=16, sequence=True, animation=None, fps=10,
                                  folder=blocker / "sub", name="x"), "phi")
    settle(qtbot, w)
    assert "Export failed" in w.message_bar.text()


# ---------------------------------------------------------------- sessions
def test_save_and_reopen_a_session(qtbot, loaded, explorer_settings, tmp_path, tiny_model_path):
    w = loaded
    _fill_anchors(qtbot, w)
    w.hub.sample_anchors([6], seeds=[11])
    w.manifold_panel.set_angles(10.0, 20.0, 30.0)
    w.infoloss_panel.level_boxes[1].setChecked(True)
    settle(qtbot, w)
    path = tmp_path / "my.nvps"
    w.hub.save_session(path)
    settle(qtbot, w)
    assert path.exists()

    w2 = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w2)
    try:
        w2.open_model(str(tiny_model_path))
        settle(qtbot, w2)
        _drop(w2, [path])
        settle(qtbot, w2)
        s2 = w2.session
        assert [e.name for e in s2.images] == [e.name for e in w.session.images]
        assert s2.angles == Angles(10.0, 20.0, 30.0)
        assert s2.infoloss.levels == {2}
        assert w2.infoloss_panel.level_boxes[1].isChecked()
        assert w2.manifold_panel.controls["phi2"].value() == 30.0
        assert s2.anchors[6].kind == "sample" and s2.anchors[6].seed == 11
        assert np.array_equal(w2.manifold_panel.view.image(), w.manifold_panel.view.image())
    finally:
        w2.shutdown()


def test_settings_persist(qtbot, explorer_settings, tiny_model_path):
    w = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w)
    w.open_model(str(tiny_model_path))
    settle(qtbot, w)
    w.tabs.setCurrentIndex(3)
    w.hub.last_folder = "/some/folder"
    w.close()
    w2 = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w2)
    try:
        assert w2.tabs.currentIndex() == 3
        assert w2.hub.last_folder == "/some/folder"
        assert w2.recent_models() == [str(tiny_model_path)]
        assert w2.model_panel.recent.count() == 1
    finally:
        w2.shutdown()


def test_tab_names():
    assert tab_key("Information loss") == "infoloss" and tab_key("MANIFOLD") == "manifold"
    with pytest.raises(ValueError):
        tab_key("nope")


def test_screenshot_command(tmp_path, tiny_model_path):
    """`python main.py MODEL --tab encode --screenshot out.png` renders, saves and exits 0."""
    img = make_images(tmp_path / "imgs", 1)[0]
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NVP_TORCH_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), str(tiny_model_path), "--device", "cpu", "--tab", "encode",
         "--images", str(img), "--size", "1100x700", "--screenshot", str(out),
         "--settings", str(tmp_path / "s.ini")],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shot = np.asarray(Image.open(out).convert("RGB"))
    assert shot.shape[:2] == (700, 1100)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 100  # a rendered window, not a blank one


def test_gui_latency_benchmark_smoke(qtbot, tiny_model_path):
    """benchmarks/gui_latency.py at its smallest size, so the script cannot rot."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("gui_latency", ROOT / "benchmarks" / "gui_latency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    try:
        r = mod.run(mod.parse_args([str(tiny_model_path), "--steps", "12", "--drags", "2"]))
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)
    assert r["image"] == "16×16" and r["drags"] == 2 and 12 < r["slider_moves"] <= 24 and r["frames_shown"] >= 2
    assert len(r["release_to_exact_each_ms"]) == 2 and r["release_to_exact_ms"] == max(r["release_to_exact_each_ms"])
    assert r["heartbeats"] > 10 and 0 <= r["stall_p50_ms"] <= r["stall_max_ms"]
    assert "| event-loop stall max |" in mod.table(r)
