"""Training tab: a real 3-step run on a tiny folder, pause/stop/resume, shutdown, errors."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt

import nvp_core as nc
from explorer.panels.training import ERROR_COLOR, TrainingPanel, format_duration
from nvp_core.checkpoint import CHECKPOINT_NAME


@pytest.fixture
def one_thread():
    """The trainer's thread plus the GUI thread on a 2-core box: one torch thread
    avoids OpenMP oversubscription, which makes tiny steps 10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.fixture
def panel(qtbot, one_thread, image_folder, tmp_path):
    widget = TrainingPanel(SimpleNamespace(flow=None, device=torch.device("cpu")))
    qtbot.addWidget(widget)
    widget.use_folder.setChecked(True)
    widget.folder.setText(str(image_folder))
    for box, value in ((widget.size_box, 8), (widget.width_box, 4), (widget.blocks, 1), (widget.scales, 2),
                       (widget.max_width, 16), (widget.batch, 4), (widget.steps, 3), (widget.eval_every, 2),
                       (widget.eval_images, 8), (widget.sample_every, 3), (widget.n_samples, 4),
                       (widget.checkpoint_every, 1000)):
        box.setValue(value)
    widget.device.setCurrentIndex(widget.device.findData("cpu"))
    widget.out.setText(str(tmp_path / "run"))
    yield widget
    widget.shutdown()
    assert not widget.running


def _wait_ended(qtbot, panel, timeout=60000):
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)


def test_three_step_run_draws_curves_and_writes_a_model(qtbot, panel, tmp_path):
    assert panel.start_button.isEnabled(), panel.problem.text()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.running and not panel.start_button.isEnabled()
    _wait_ended(qtbot, panel)
    assert panel.events[0] == "start" and panel.events[-1] == "done", panel.events
    tx, ty = panel.train_curve.getData()
    assert list(tx)[0] == 1 and list(tx)[-1] == 3 and np.all(np.isfinite(ty)) and np.all(ty > 0)
    sx, sy = panel.test_curve.getData()
    assert list(sx) == [0, 2, 3] and np.all((sy > 0) & (sy < 20))  # step 0 anchors the test curve
    value, at = panel.test_label.text().split(" @ ")  # the test score says its step (issue 11, item 1)
    assert float(value) == pytest.approx(sy[-1], abs=1e-3) and int(at) == int(sx[-1])
    assert float(panel.speed_label.text().replace(",", "")) > 0
    assert panel.progress.value() == 3
    assert panel.sample_item.image.shape == (2 * 8 + 1, 2 * 8 + 1, 3)  # 4 samples: a 2×2 grid
    model = Path(panel.model_path)
    assert model.is_file() and (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    assert nc.load(model).config.image_size == 8
    assert panel.open_button.isEnabled()
    with qtbot.waitSignal(panel.open_model_requested) as sig:
        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert sig.args == [str(model)]
    # The folder now holds a run: starting afresh there is refused, resuming is offered.
    assert not panel.start_button.isEnabled() and "Resume" in panel.problem.text()


def test_pause_stop_leaves_a_checkpoint_and_resume_continues(qtbot, panel, tmp_path):
    panel.steps.setValue(100000)
    panel.start()
    qtbot.waitUntil(lambda: len(panel.train_points) >= 1, timeout=60000)
    panel.pause()
    assert panel.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: "Paused at step" in panel.state_label.text(), timeout=30000)
    paused_at = panel.last_event.step
    qtbot.wait(300)
    assert panel.last_event.step == paused_at  # no steps while paused
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    _wait_ended(qtbot, panel)
    assert panel.events[-1] == "stopped" and "checkpoint" in panel.events
    assert panel.train_thread is None and panel.worker is None
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file() and Path(panel.model_path).is_file()
    stopped_at = nc.load_metadata(panel.model_path)["step"]
    assert paused_at <= stopped_at <= paused_at + 1 < 100000

    # Resume: the form fills from the checkpoint and the run continues from there.
    panel.size_box.setValue(16)
    panel.resume_box.setChecked(True)
    assert panel.size_box.value() == 8 and not panel.size_box.isEnabled()  # the run's own settings
    panel.steps.setValue(stopped_at + 1)
    assert panel.start_button.text() == "Resume run" and panel.start_button.isEnabled(), panel.problem.text()
    panel.start()
    _wait_ended(qtbot, panel)
    assert panel.events[-1] == "done", panel.events
    assert nc.load_metadata(panel.model_path)["step"] == stopped_at + 1


def test_shutdown_stops_and_checkpoints(qtbot, panel, tmp_path):
    panel.steps.setValue(100000)
    panel.start()
    qtbot.waitUntil(lambda: len(panel.train_points) >= 1, timeout=60000)
    assert panel.shutdown() is True
    assert not panel.running and panel.worker is None
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    assert panel.events[-1] == "stopped"


def test_a_run_can_start_from_a_trained_model(qtbot, panel, tmp_path):
    torch.manual_seed(0)
    small = nc.RealNVP(nc.FlowConfig(channels=3, scales=2, width=4, blocks=1, max_width=16, image_size=4))
    nc.save(small, tmp_path / "small")
    panel.size_box.setValue(16)
    panel.scales.setValue(3)
    panel.init_from.setText(str(tmp_path / "small"))
    assert panel.config().init_from == str(tmp_path / "small")
    panel.start()
    _wait_ended(qtbot, panel)
    assert panel.events[-1] == "done", panel.events
    assert "started scale 1 from" in panel.log.toPlainText()
    # the model card says where its first scales came from
    from explorer.panels.model import training_summary

    assert "first scales from small" in training_summary(nc.load(panel.model_path).metadata)
    panel.resume_box.setChecked(True)  # resuming keeps the run's own start: not editable then
    assert not panel.init_from.isEnabled()


def test_bad_settings_and_data_are_clear_messages(qtbot, panel, tmp_path):
    panel.size_box.setValue(12)  # 12 is not a multiple of 2^(4-1)
    panel.scales.setValue(4)
    assert not panel.start_button.isEnabled() and "image_size" in panel.problem.text()
    panel.scales.setValue(2)
    panel.folder.setText(str(tmp_path / "missing"))
    assert "does not exist" in panel.problem.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    panel.folder.setText(str(empty))
    panel.start()
    _wait_ended(qtbot, panel)
    assert panel.events == ["error"]
    assert "no image files" in panel.state_label.text()
    assert ERROR_COLOR in panel.state_label.styleSheet()
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()
    assert panel.start_button.isEnabled()  # nothing was broken; fix the folder and go again


def test_format_duration():
    assert format_duration(None) == "—"
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"


def test_learning_rate_box_reads_scientific_and_steps_by_halving(qtbot):
    from explorer.panels.training import LearningRateBox

    box = LearningRateBox()
    qtbot.addWidget(box)
    box.lineEdit().setText("2e-4")
    box.interpretText()
    assert box.value() == pytest.approx(2e-4) and box.text() == "0.0002"
    box.stepBy(1)
    assert box.value() == pytest.approx(4e-4)
    box.stepBy(-2)
    assert box.value() == pytest.approx(1e-4)
