"""The Encode tab's latent views: true elements per channel, one shared scale, hover = the tensor element."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from explorer.latent_view import SIGMA_RANGE, level_map, shared_scale
from explorer.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def encoded(qtbot, explorer_settings, tiny_model_path, tmp_path):
    w = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.tabs.setCurrentIndex(1)
    w.open_model(str(tiny_model_path))
    qtbot.waitUntil(w.settled, timeout=30000)
    rng = np.random.default_rng(3)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
    w.encode_panel.add_paths([str(path)])
    qtbot.waitUntil(lambda: w.settled() and w.session.current_image is not None, timeout=30000)
    yield w
    w.shutdown()


def hover(view, level_x: float, level_y: float, shape: tuple[int, int], extent: tuple[int, int]) -> str:
    """Hover the centre of level element (x, y) of a view whose map covers ``extent`` = (W, H) pixels."""
    rows, cols = shape
    w, h = extent
    view._on_mouse(view.view.mapViewToScene(QPointF((level_x + 0.5) * w / cols, (level_y + 0.5) * h / rows)))
    return view.info.text()


def test_default_shows_true_elements_on_one_shared_scale(encoded):
    ep = encoded.encode_panel
    e = encoded.session.current_image
    raws = [z[0].float().numpy() for z in e.latents]
    assert ep.mode.currentData() == "channel" and ep.scale.currentData() == "shared"
    top = max(float(np.abs(r).max()) for r in raws)
    for k, (v, raw) in enumerate(zip(ep.level_views, raws)):
        assert np.array_equal(v._data, raw[0])  # channel 0 of z(k+1), element for element
        assert v.item.getLevels() == pytest.approx((-top, top))  # nothing clipped, same for every level
    assert ep.colorbar.scale() == pytest.approx((-top, top)) and ep.colorbar.isVisibleTo(ep)
    # the default no longer understates: the coarse levels' colours reach their true size
    mean_range = max(float(np.abs(lv.mean(axis=0)).max()) for lv in e.levels)
    assert top > mean_range


def test_channel_stepper_walks_the_channels(encoded):
    ep = encoded.encode_panel
    e = encoded.session.current_image
    raws = [z[0].float().numpy() for z in e.latents]
    assert ep.channel_step.maximum() == max(r.shape[0] for r in raws) - 1
    ep.channel_step.setValue(2)
    for v, raw in zip(ep.level_views, raws):
        c = min(2, raw.shape[0] - 1)
        assert np.array_equal(v._data, raw[c])
        assert f"channel {c}/{raw.shape[0] - 1}" in v.title.text()
    ep.channel_step.setValue(ep.channel_step.maximum())  # beyond the small levels: their last channel
    assert np.array_equal(ep.level_views[0]._data, raws[0][-1])


@pytest.mark.parametrize("channel", [0, 3])
def test_hover_shows_the_true_element(encoded, channel):
    ep = encoded.encode_panel
    e = encoded.session.current_image
    h, w = e.pixels.shape[:2]
    ep.channel_step.setValue(channel)
    for k, v in enumerate(ep.level_views):
        z = e.latents[k][0]  # the tensor itself
        c = min(channel, z.shape[0] - 1)
        y, x = z.shape[1] - 1, z.shape[2] // 2
        text = hover(v, x, y, tuple(z.shape[1:]), (w, h))
        assert text == f"z({k + 1})[c={c}, y={y}, x={x}] = {float(z[c, y, x]):+.5f}"


def test_rms_view_and_per_level_scale(encoded):
    ep = encoded.encode_panel
    e = encoded.session.current_image
    h, w = e.pixels.shape[:2]
    ep.mode.setCurrentIndex(ep.mode.findData("rms"))
    assert not ep.channel_step.isEnabled()
    for k, v in enumerate(ep.level_views):
        z = e.latents[k][0].double().numpy()
        rms = np.sqrt((z ** 2).mean(axis=0))
        assert np.allclose(v._data, rms, atol=1e-6)
        lo, hi = v.item.getLevels()
        assert lo == 0.0
        text = hover(v, 0, 0, rms.shape, (w, h))
        assert text.endswith(f"y=0, x=0: {rms[0, 0]:+.5f}")
    shared = {tuple(v.item.getLevels()) for v in ep.level_views}
    assert len(shared) == 1
    ep.scale.setCurrentIndex(ep.scale.findData("level"))
    per_level = [v.item.getLevels()[1] for v in ep.level_views]
    assert per_level == pytest.approx([float(v._data.max()) for v in ep.level_views])
    ep.scale.setCurrentIndex(ep.scale.findData("sigma"))
    assert all(v.item.getLevels() == pytest.approx((0.0, SIGMA_RANGE)) for v in ep.level_views)


def test_level_map_and_shared_scale_functions():
    rng = np.random.default_rng(0)
    raws = [rng.normal(size=(6, 4, 4)).astype(np.float32), 3 * rng.normal(size=(12, 2, 2)).astype(np.float32)]
    pooled = [r[:3] for r in raws]
    maps = [level_map(r, p, k + 1, "channel", 5) for k, (r, p) in enumerate(zip(raws, pooled))]
    assert np.array_equal(maps[0].values, raws[0][5]) and np.array_equal(maps[1].values, raws[1][5])
    lo, hi = shared_scale(maps, raws, "channel")
    assert hi == pytest.approx(max(np.abs(r).max() for r in raws)) and lo == -hi
    assert shared_scale(maps, raws, "channel", "sigma") == (-SIGMA_RANGE, SIGMA_RANGE)
    m = level_map(raws[1], pooled[1], 2, "mean")
    assert np.allclose(m.values, pooled[1].mean(axis=0))
