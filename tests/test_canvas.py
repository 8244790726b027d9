"""Canvas panel: sizes and presets, determinism by seed, cancel, errors, saving."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt

import nvp_core as nc
from explorer.panels.canvas import CanvasJob, CanvasPanel


@pytest.fixture
def panel(qtbot, tiny_flow):
    session = SimpleNamespace(flow=tiny_flow, device=torch.device("cpu"))
    widget = CanvasPanel(session, renderer=None)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    assert not widget.busy


def _generate(qtbot, panel, timeout=20000):
    panel.generate()
    assert panel.busy
    qtbot.waitUntil(lambda: not panel.busy, timeout=timeout)


def test_presets_follow_the_training_size(panel):
    labels = [panel.preset.itemText(i) for i in range(panel.preset.count())]
    assert labels[0].startswith("1×") and "16×16" in labels[0]
    assert "160×160" in labels[2] and labels[-1] == "Custom"
    panel.preset.setCurrentIndex(1)
    assert panel.canvas_size() == (32, 32)
    panel.width_box.setValue(40)  # a hand edit → Custom
    assert panel.preset.currentText() == "Custom"


def test_sides_snap_to_the_model_multiple(panel):
    assert panel.width_box.multiple == 4
    panel.width_box.setValue(19)
    panel.width_box.snap()
    assert panel.width_box.value() == 20
    panel.height_box.setValue(panel.height_box.minimum())
    panel.height_box.stepBy(3)
    assert panel.height_box.value() == 16


@pytest.mark.parametrize("preset, side", [(0, 16), (1, 32)])
def test_generate_at_1x_and_2x(qtbot, panel, preset, side):
    panel.preset.setCurrentIndex(preset)
    panel.seed.setValue(7)
    _generate(qtbot, panel)
    assert panel.shown.shape == (side, side, 3) and panel.shown.dtype == np.uint8
    assert panel.shown.std() > 0  # a real picture, not a constant
    # Same seed, same picture; the image is what flow.sample gives for that seed.
    first = panel.shown.copy()
    _generate(qtbot, panel)
    np.testing.assert_array_equal(panel.shown, first)
    expected = nc.to_numpy_image(panel.flow.sample(1, side, side, temperature=0.7, generator=7)[0])
    np.testing.assert_array_equal(first, expected)
    panel.seed.setValue(8)
    _generate(qtbot, panel)
    assert not np.array_equal(panel.shown, first)


def test_count_gives_a_grid_and_seed_offsets(qtbot, panel):
    panel.seed.setValue(3)
    _generate(qtbot, panel)
    single = panel.shown.copy()
    panel.count.setValue(3)
    _generate(qtbot, panel)
    assert len(panel.images) == 3
    np.testing.assert_array_equal(panel.images[0], single)  # image i uses seed + i
    assert panel.shown.shape == (16 + 2 + 16, 16 + 2 + 16, 3)  # 3 images: a 2×2 grid, 2 px gaps
    panel.show_combo.setCurrentIndex(2)  # "Image 2"
    np.testing.assert_array_equal(panel.shown, panel.images[1])


def test_cancel_drops_the_result_and_keeps_the_previous_one(qtbot, panel):
    _generate(qtbot, panel)
    before = panel.shown.copy()
    panel.count.setValue(4)
    panel.preset.setCurrentIndex(1)
    panel.generate()
    job = panel._job
    seen = []

    def cancel_mid_image(done, total):  # runs on the worker thread, inside the flow
        seen.append(done)
        if done == 3:
            job.cancel()

    job.progress.connect(cancel_mid_image, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(job.cancelled, timeout=20000):
        pass
    qtbot.waitUntil(lambda: not panel.busy, timeout=10000)
    assert max(seen) == 3  # stopped inside the first image, not after it
    assert "Cancelled" in panel.status.text()
    np.testing.assert_array_equal(panel.shown, before)
    assert panel.generate_button.isEnabled()


def test_cancel_button_stops_a_long_job(qtbot, panel):
    panel.count.setValue(64)
    panel.width_box.setValue(512)
    panel.height_box.setValue(512)
    panel.generate()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=20000)
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=10000)
    assert panel.images == [] and panel.shown is None
    assert panel.progress.format() == "cancelled"


def test_a_cancelled_job_leaves_other_users_of_the_flow_alone(tiny_flow):
    """The explorer's renderer may decode with the same flow while a canvas runs: a
    cancel belongs to its job (a flag nvp_core asks), never to the flow."""
    job = CanvasJob(tiny_flow, 16, 16, 1.0, 0, 1)
    ends = []
    job.cancelled.connect(lambda: ends.append("cancelled"))
    job.finished.connect(lambda images: ends.append("finished"))
    job.cancel()
    job.run()  # synchronously, on this thread
    assert ends == ["cancelled"]
    out = tiny_flow.sample(1, 16, 16, generator=0)  # the same thread and flow: unaffected
    assert out.shape == (1, 3, 16, 16)
    other = CanvasJob(tiny_flow, 16, 16, 1.0, 0, 1)
    other.finished.connect(lambda images: ends.append(images))
    other.run()
    np.testing.assert_array_equal(ends[-1][0], nc.to_numpy_image(out)[0])


def test_cancelling_the_first_canvas_claims_no_previous_result(qtbot, panel):
    panel.count.setValue(8)
    panel.preset.setCurrentIndex(2)  # 10×
    panel.generate()
    job = panel._job
    job.progress.connect(lambda done, total: job.cancel(), Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: not panel.busy, timeout=20000)
    assert panel.shown is None  # nothing was ever generated
    assert "Cancelled" in panel.status.text() and "previous result" not in panel.status.text()
    panel.count.setValue(1)
    panel.preset.setCurrentIndex(0)
    _generate(qtbot, panel)
    panel.count.setValue(8)
    panel.preset.setCurrentIndex(2)
    panel.generate()
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.busy, timeout=20000)
    assert "the previous result is kept" in panel.status.text() and panel.shown.shape == (16, 16, 3)


def test_errors_are_messages_and_the_panel_survives(qtbot, panel, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 40.00 GiB")

    monkeypatch.setattr(panel.flow, "sample_latents", boom)
    _generate(qtbot, panel)
    assert "Out of memory" in panel.status.text() and "160" not in panel.status.text()
    assert panel.shown is None and panel.generate_button.isEnabled()
    monkeypatch.undo()
    _generate(qtbot, panel)
    assert panel.shown.shape == (16, 16, 3)


def test_save_writes_the_shown_png(qtbot, panel, tmp_path):
    with pytest.raises(nc.NVPError, match="generate"):
        panel.save_image(tmp_path / "none.png")
    panel.count.setValue(2)
    _generate(qtbot, panel)
    path = panel.save_image(tmp_path / "canvas.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), panel.shown)
    paths = panel.save_all(tmp_path / "all")
    assert len(paths) == 2
    np.testing.assert_array_equal(np.asarray(Image.open(paths[1])), panel.images[1])


def test_no_model_and_model_swap(qtbot, panel):
    panel.set_flow(None)
    assert not panel.generate_button.isEnabled()
    panel.generate()
    assert "Load a model" in panel.status.text() and not panel.busy
    torch.manual_seed(1)
    other = nc.RealNVP(nc.FlowConfig(channels=3, scales=2, width=4, blocks=1, image_size=8)).eval()
    panel.set_flow(other)
    assert panel.width_box.multiple == 2 and panel.canvas_size() == (8, 8)
    _generate(qtbot, panel)
    assert panel.shown.shape == (8, 8, 3)


def test_settings_follow_the_session(qtbot, tiny_flow):
    """A session with canvas settings (a reopened session file) drives the controls, and back."""
    settings = SimpleNamespace(width=24, height=40, temperature=0.5, seed=11, count=2)
    session = SimpleNamespace(flow=tiny_flow, device="cpu", canvas=settings)
    widget = CanvasPanel(session)
    qtbot.addWidget(widget)
    assert widget.canvas_size() == (24, 40) and widget.preset.currentText() == "Custom"
    assert (widget.temperature.value(), widget.seed.value(), widget.count.value()) == (0.5, 11, 2)
    widget.preset.setCurrentIndex(1)
    widget.seed.setValue(5)
    assert (settings.width, settings.height, settings.seed) == (32, 32, 5)
    widget.preset.setCurrentIndex(0)
    assert (settings.width, settings.height) == (0, 0)  # 0 = "the training size"
    settings.width, settings.height, settings.count = 20, 20, 3
    widget.apply_settings()
    assert widget.canvas_size() == (20, 20) and widget.count.value() == 3
