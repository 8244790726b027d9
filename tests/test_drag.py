"""Dragging at screen rate: the frame cache, the speculative renderer, the pad, grid clicks, keys, undo."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from explorer import session as session_mod
from explorer.panels.manifold import _grid_degrees
from explorer.frame_cache import Frame, FrameCache, angle_distance
from explorer.main_window import MainWindow
from explorer.render import Renderer
from explorer.speculative import SpeculativeRenderer, chunk_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def img(value: float, size: int = 4) -> np.ndarray:
    return np.full((size, size, 3), int(value) % 256, np.uint8)


# ---------------------------------------------------------------- the cache
def test_exact_frame_wins_over_speculative():
    c = FrameCache(quantum=0.25)
    assert c.put(Frame((10.0, 0.0, 0.0), img(1)))  # asked for
    # a speculative frame falling in the same 0.25° bin does not replace it
    assert not c.put(Frame((10.1, 0.0, 0.0), img(2), speculative=True))
    assert c.exact((10.0, 0.0, 0.0)).rgb[0, 0, 0] == 1
    assert c.nearest((10.1, 0.0, 0.0), tol=0.5).angles == (10.0, 0.0, 0.0)
    # the other way round: an exact frame replaces a speculative one
    assert c.put(Frame((20.1, 0.0, 0.0), img(3), speculative=True))
    assert c.exact((20.0, 0.0, 0.0)) is None
    assert c.put(Frame((20.0, 0.0, 0.0), img(4)))
    assert c.exact((20.0, 0.0, 0.0)).rgb[0, 0, 0] == 4 and len(c) == 2


def test_memory_bound_holds_and_drops_least_recently_used():
    one = img(0).nbytes
    c = FrameCache(max_bytes=10 * one)
    for i in range(10):
        c.put(Frame((float(i), 0.0, 0.0), img(i)))
    assert c.exact((0.0, 0.0, 0.0)) is not None  # touched: now the most recent
    for i in range(10, 50):
        c.put(Frame((float(i), 0.0, 0.0), img(i)))
        assert c.nbytes <= c.max_bytes
    assert len(c) == 10 and c.nbytes == 10 * one
    assert c.exact((49.0, 0.0, 0.0)) is not None and c.exact((1.0, 0.0, 0.0)) is None
    assert not c.put(Frame((1.0, 2.0, 3.0), np.zeros((100, 100, 3), np.uint8)))  # larger than the bound


def test_stale_epoch_is_dropped_and_nearest_wraps_round():
    c = FrameCache()
    epoch = c.epoch
    c.clear()  # new anchors
    assert not c.put(Frame((1.0, 0.0, 0.0), img(1)), epoch)
    assert len(c) == 0
    assert c.put(Frame((359.9, 0.0, 0.0), img(2)), c.epoch)
    assert c.nearest((0.2, 0.0, 0.0), tol=0.5).angles == (359.9, 0.0, 0.0)
    assert c.nearest((1.0, 0.0, 0.0), tol=0.5) is None
    assert angle_distance((359.9, 0.0, 0.0), (0.2, 0.0, 0.0)) == pytest.approx(0.3)


def test_chunk_size_follows_the_image_size():
    assert chunk_for(32, 32) == 4 and chunk_for(64, 64) == 2 and chunk_for(256, 256) == 1


# ---------------------------------------------------------------- the speculative renderer
class FakeSource:
    """Decodes an angle triple to a flat picture of its φ; records every batch; may be gated."""

    def __init__(self, tag: int = 0) -> None:
        self.batches: list[list[tuple]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.tag = tag

    def __call__(self, angles, progress):
        self.gate.wait(10)
        self.batches.append(list(angles))
        return np.stack([np.full((4, 4, 3), (self.tag + int(round(a[0] * 10))) % 256, np.uint8) for a in angles])


@pytest.fixture
def planner(qtbot):
    r = Renderer()
    p = SpeculativeRenderer(r)
    yield p
    r.shutdown()


def wait_done(qtbot, p: SpeculativeRenderer) -> None:
    qtbot.waitUntil(lambda: p.done() and not p.renderer.busy, timeout=10000)


def test_a_drag_decodes_ahead_and_shows_cached_frames_at_once(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    shown = []
    planner.shown.connect(lambda f: shown.append(f))
    for i in range(4):  # a steady drag, 2° per move
        planner.target((10.0 + 2 * i, 0.0, 0.0))
        qtbot.wait(5)
    wait_done(qtbot, planner)
    decoded = [a[0] for b in src.batches for a in b]
    assert max(decoded) > 16.0  # positions ahead of the last move were decoded
    assert all(len(b) <= planner.chunk * 4 for b in src.batches)
    assert any(len(b) > 1 for b in src.batches)  # in batches
    # the next move lands on a decoded frame: shown at once, before any event loop turn
    n = len(shown)
    planner.target((18.0, 0.0, 0.0))
    assert len(shown) == n + 1 and shown[-1].angles == (18.0, 0.0, 0.0) and planner.done()


def test_exact_frame_is_not_replaced_by_a_speculative_one(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    planner.target((10.0, 0.0, 0.0))
    wait_done(qtbot, planner)
    exact = planner.shown_frame
    assert exact.angles == (10.0, 0.0, 0.0) and not exact.speculative
    # a speculative batch arriving late with a frame in the same bin
    planner._arrived(-1, None, (planner.cache.epoch, [(10.1, 0.0, 0.0)], np.zeros((1, 4, 4, 3), np.uint8)))
    assert planner.shown_frame is exact
    assert planner.cache.exact((10.0, 0.0, 0.0)) is exact


def test_nearest_frame_first_then_the_exact_one(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    planner.target((10.0, 0.0, 0.0))
    wait_done(qtbot, planner)
    src.gate.clear()  # the worker will be slow for the next frame
    shown = []
    planner.shown.connect(lambda f: shown.append(f.angles))
    planner.target((10.5, 0.0, 0.0))
    assert shown == [] or shown[-1] == (10.0, 0.0, 0.0)  # nothing nearer than what is on screen
    assert not planner.done()
    src.gate.set()
    wait_done(qtbot, planner)
    assert shown[-1] == (10.5, 0.0, 0.0) and planner.done()


def test_stale_batches_are_dropped(qtbot, planner):
    old = FakeSource(tag=100)
    planner.set_source(old, (4, 4))
    old.gate.clear()
    planner.target((30.0, 0.0, 0.0))
    qtbot.waitUntil(lambda: planner.renderer.busy, timeout=5000)
    new = FakeSource(tag=0)
    planner.set_source(new, (4, 4))  # the anchors changed while a batch was decoding
    old.gate.set()
    planner.target((30.0, 0.0, 0.0))
    wait_done(qtbot, planner)
    assert planner.shown_frame.rgb[0, 0, 0] == 300 % 256  # the new source's frame, not tag 100's
    assert all(f.rgb[0, 0, 0] == round(f.angles[0] * 10) % 256 for f in planner.cache._frames.values())
    # and a batch of an old epoch that still arrives is dropped, counted
    before = planner.dropped_stale
    planner._arrived(-1, None, (planner.cache.epoch - 1, [(45.0, 0.0, 0.0)], np.zeros((1, 4, 4, 3), np.uint8)))
    assert planner.dropped_stale == before + 1 and planner.cache.exact((45.0, 0.0, 0.0)) is None


def test_waiting_batches_are_replaced_not_queued(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    src.gate.clear()
    for i in range(30):  # the worker is stuck while the user drags on
        planner.target((50.0 + i, 0.0, 0.0))
    planner.settle()  # and lets go (the slider's release)
    src.gate.set()
    wait_done(qtbot, planner)
    # not 30: the one running, then the exact frame that replaced the rest — asked for alone, or
    # already inside a speculative batch planned ahead of the drag on a slow worker — then, at
    # rest, the frames around it
    assert any((79.0, 0.0, 0.0) in batch for batch in src.batches[:3])
    assert sum(len(batch) == 1 for batch in src.batches) <= 2  # no queue of single stale targets
    assert planner.shown_frame.angles == (79.0, 0.0, 0.0)


class ScaledSource(FakeSource):
    """Reports progress after each of four "scales", the first of a batch held at a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.aborted: list[list[tuple]] = []

    def __call__(self, angles, progress):
        self.started.set()
        try:
            for k in range(4):
                if k == 1:
                    self.gate.wait(10)
                progress((k + 1) / 4)
        except Exception:
            self.aborted.append(list(angles))
            raise
        return super().__call__(angles, progress)


def test_release_preempts_a_running_speculative_batch(qtbot, planner):
    src = ScaledSource()
    planner.set_source(src, (4, 4))
    src.gate.clear()
    for i in range(4):  # a drag: a speculative batch ahead of it starts and is held mid-decode
        planner.target((60.0 + 2 * i, 0.0, 0.0))
        qtbot.wait(5)
    assert src.started.wait(5)
    qtbot.waitUntil(lambda: any(i["started"] and not i["path"] for i in planner._inflight.values()), timeout=5000)
    running = [set(i["exact"]) for i in planner._inflight.values() if i["started"]]
    planner.settle()  # released: the exact frame must not wait for the guesses
    assert planner.preempted == 1
    src.gate.set()
    wait_done(qtbot, planner)
    assert planner.shown_frame.angles == (66.0, 0.0, 0.0) and not planner.shown_frame.speculative
    assert [set(b) for b in src.aborted] == running  # the held batch stopped at its next scale
    assert all(set(b) != running[0] for b in src.batches)  # and never finished


def test_at_rest_the_positions_around_are_decoded(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    planner.target((100.0, 0.0, 0.0))
    wait_done(qtbot, planner)
    qtbot.waitUntil(lambda: not planner.busy() and not planner.renderer.busy, timeout=10000)
    for k in range(1, 7):  # φ ± 1°…6°: the first moves of the next drag find a frame at once
        assert planner.cache.exact((100.0 + k, 0.0, 0.0)) is not None
        assert planner.cache.exact((100.0 - k, 0.0, 0.0)) is not None
    assert planner.shown_frame.angles == (100.0, 0.0, 0.0)  # and the exact frame stays on screen


def test_grid_frames_reuse_and_fill_the_cache(qtbot, planner):
    src = FakeSource()
    planner.set_source(src, (4, 4))
    planner.target((0.0, 0.0, 0.0))
    wait_done(qtbot, planner)
    got = []
    angles = _grid_degrees(0.0, 3)
    planner.frames(angles, "grid", on_result=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert got[0].shape == (9, 4, 4, 3)
    assert (0.0, 0.0, 0.0) not in src.batches[-1]  # already decoded: reused
    assert all(planner.cache.exact(a) is not None for a in angles)


# ---------------------------------------------------------------- the window
@pytest.fixture
def window(qtbot, explorer_settings, tiny_model_path):
    w = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.tabs.setCurrentIndex(3)
    w.open_model(str(tiny_model_path))
    qtbot.waitUntil(lambda: w.settled() and w.session.anchors_complete, timeout=30000)
    qtbot.waitUntil(lambda: w.manifold_panel.frame_done() and w.settled(), timeout=30000)
    yield w
    w.shutdown()


def settle(qtbot, w) -> None:
    qtbot.waitUntil(lambda: w.settled() and w.manifold_panel.frame_done(), timeout=30000)


def test_pad_drag_moves_phi_and_phi1(qtbot, window):
    mp = window.manifold_panel
    pad = mp.pad
    r = pad.square()
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, pos=pad.to_pos(0.0, 0.0).toPoint() + QPointF(1, 1).toPoint())
    for phi, phi1 in ((10.0, 20.0), (45.0, 90.0), (90.0, 180.0)):
        QTest.mouseMove(pad, pad.to_pos(phi, phi1).toPoint())
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=pad.to_pos(90.0, 180.0).toPoint())
    a = window.session.angles
    step = 360.0 / r.width()  # one pixel of the pad
    assert a.phi == pytest.approx(90.0, abs=step + 0.1) and a.phi1 == pytest.approx(180.0, abs=step + 0.1)
    assert mp.controls["phi"].value() == pytest.approx(a.phi) and mp.controls["phi1"].value() == pytest.approx(a.phi1)
    settle(qtbot, window)
    want = window.session.manifold_task(session_mod.Angles(*a.as_tuple()))(lambda f: None)
    assert np.abs(mp.view.image().astype(int) - want.astype(int)).max() <= 1
    # the pad follows the sliders too
    mp.controls["phi"].setValue(30.0)
    assert pad.value()[0] == pytest.approx(30.0)
    # and steps with the arrow keys when focused
    before = window.session.angles.phi1
    pad.setFocus()
    QTest.keyClick(pad, Qt.Key.Key_Right)
    assert window.session.angles.phi1 == pytest.approx((before + 1.0) % 360)


def test_grid_click_jumps_to_the_cell(qtbot, window):
    mp = window.manifold_panel
    mp.controls["phi2"].setValue(30.0)
    mp.grid_btn.click()
    qtbot.waitUntil(lambda: mp.grid_view.has_image and window.settled(), timeout=30000)
    h = window.session.image_size[0]
    # cell (row 2, col 5): image pixel in the middle of it (cells are h pixels with a 1-pixel gap)
    x, y = 1 + 5 * (h + 1) + h / 2, 1 + 2 * (h + 1) + h / 2
    assert mp.click_grid(x, y)
    a = window.session.angles.as_tuple()
    assert a == pytest.approx((90.0 * 2 / 7, 90.0 * 5 / 7, 30.0))
    settle(qtbot, window)
    grid = mp.grid_view.image()
    cell = grid[1 + 2 * (h + 1): 1 + 2 * (h + 1) + h, 1 + 5 * (h + 1): 1 + 5 * (h + 1) + h]
    assert np.array_equal(mp.view.image(), cell)  # the same frame: from the shared cache
    assert not mp.click_grid(0.2, 0.2)  # the padding is not a cell
    # a real click through the scene
    scene_pos = mp.grid_view.view.mapViewToScene(QPointF(1 + h / 2, 1 + h / 2))
    view_pos = mp.grid_view.glw.mapFromScene(scene_pos)
    QTest.mouseClick(mp.grid_view.glw.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert window.session.angles.as_tuple() == pytest.approx((0.0, 0.0, 30.0))


def test_keys_space_home_arrows(qtbot, window):
    mp = window.manifold_panel
    mp.controls["phi1"].setValue(40.0)
    mp.controls["phi1"].slider.sliderPressed.emit()  # φ′ is the angle in use
    mp.pad.setFocus()  # shortcuts work with the focus anywhere in the tab
    QTest.keyClick(mp.view, Qt.Key.Key_Right)
    assert window.session.angles.phi1 == pytest.approx(41.0)
    QTest.keyClick(mp.view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert window.session.angles.phi1 == pytest.approx(31.0)
    QTest.keyClick(mp.view, Qt.Key.Key_Space)
    assert mp.controls["phi1"].play.isChecked() and mp.timer.isActive()
    qtbot.waitUntil(lambda: window.session.angles.phi1 >= 40.0, timeout=20000)
    QTest.keyClick(mp.view, Qt.Key.Key_Space)
    assert not mp.timer.isActive() and not any(c.play.isChecked() for c in mp.controls.values())
    QTest.keyClick(mp.view, Qt.Key.Key_Home)
    assert window.session.angles.as_tuple() == (0.0, 0.0, 0.0)
    settle(qtbot, window)
    assert mp.view.info.text().startswith("φ = 0.0°")


def test_undo_redo_angles_and_anchors(qtbot, window):
    mp = window.manifold_panel
    mp.undo_stack.clear()
    mp.set_angles(10.0, 20.0, 30.0)
    mp._commit_angles()
    slider = mp.controls["phi"].slider
    for v in range(100, 501, 10):  # one drag, 10° → 50°: one undo step
        slider.setValue(v)
    mp._commit_angles()
    assert mp.undo_stack.count() == 2
    mp.pad.setFocus()
    QTest.keyClick(mp.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.session.angles.as_tuple() == (10.0, 20.0, 30.0)
    QTest.keyClick(mp.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.session.angles.as_tuple() == (50.0, 20.0, 30.0)
    # anchors: a new sample in slot z2, then undo brings the old one back
    old = window.session.anchors[1]
    window.hub.sample_anchors([1], seeds=[1234])
    qtbot.waitUntil(lambda: window.session.anchors[1] is not old and window.settled(), timeout=30000)
    new = window.session.anchors[1]
    mp.undo()
    assert window.session.anchors[1] is old
    settle(qtbot, window)
    want = window.session.manifold_task(session_mod.Angles(*window.session.angles.as_tuple()))(lambda f: None)
    assert np.abs(mp.view.image().astype(int) - want.astype(int)).max() <= 1  # the view follows the undo
    mp.redo()
    assert window.session.anchors[1] is new
    mp.undo()
    mp.undo()
    assert window.session.angles.as_tuple() == (10.0, 20.0, 30.0)


def test_status_bar_reads_out_frames_per_second_while_dragging(qtbot, window):
    mp = window.manifold_panel
    slider = mp.controls["phi"].slider
    for v in range(0, 300, 10):
        slider.setValue(v)
        qtbot.wait(16)
    qtbot.waitUntil(lambda: "frames/s" in window.drag_label.text(), timeout=5000)
    assert window.drag_label.text().startswith("Manifold: ")
    qtbot.waitUntil(lambda: window.drag_label.text() == "", timeout=5000)  # and goes away when idle


def test_play_decodes_its_path_in_batches(qtbot, window):
    mp = window.manifold_panel
    planner = mp.planner
    sizes = []
    window.renderer._worker.finished_job.connect(
        lambda job, status, value: sizes.append(len(value[1])) if job.key == "manifold" and status == "ok" else None)
    mp.speed.setValue(2.0)
    mp.controls["phi2"].play.click()
    qtbot.waitUntil(lambda: window.session.angles.phi2 >= 40.0, timeout=30000)
    mp.controls["phi2"].play.click()
    settle(qtbot, window)
    assert max(sizes) >= planner.chunk * 2  # the known path is decoded many frames at a time
    assert window.session.angles.phi2 % 2.0 == pytest.approx(0.0, abs=1e-6) or \
        window.session.angles.phi2 % 2.0 == pytest.approx(2.0, abs=1e-6)


# ---------------------------------------------------------------- information loss: one batch, then lookups
def test_all_level_subsets_and_strip_sets():
    from explorer.infoloss_cache import all_level_sets, strip_sets

    sets = all_level_sets(3)
    assert len(sets) == 8 and len(set(sets)) == 8 and sets[0] == frozenset()
    assert strip_sets(3) == [frozenset(), frozenset({1}), frozenset({1, 2})]


def test_infoloss_toggles_are_lookups_after_one_batch(qtbot, window, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    window.encode_panel.add_paths([str(path)])
    qtbot.waitUntil(lambda: window.settled() and window.session.current_image is not None, timeout=30000)
    window.tabs.setCurrentIndex(2)
    ip = window.infoloss_panel
    ip.level_boxes[1].setChecked(True)  # z(2): decoded alone first, then every other subset in one batch
    qtbot.waitUntil(window.settled, timeout=30000)
    jobs = []
    window.renderer._worker.finished_job.connect(lambda job, status, value: jobs.append(job.key))
    s, e = window.session, window.session.current_image
    for levels in ({1}, {1, 3}, {3}, set(), {1, 2, 3}):
        ip.set_levels(levels)
        # on screen at once, before any event-loop turn, and the same picture a single decode gives
        want = session_mod.infoloss_image(s.flow, e.latents, levels, s.infoloss.temperature, s.infoloss.seed, s.infoloss.mode)
        assert np.abs(ip.result.image().astype(int) - want.astype(int)).max() <= 1
    ip.strip_btn.click()
    assert ip.strip_image() is not None  # the strip's subsets were in the batch too
    qtbot.wait(50)
    assert [k for k in jobs if k.startswith("infoloss")] == []
