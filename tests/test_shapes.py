"""The procedural ``shapes`` scenes: determinism, the held-out split, and that the
pictures show what their factors say (hues, silhouettes, size, position, light)."""
from __future__ import annotations

import colorsys
import time

import numpy as np
import pytest
import torch

import nvp_core as nc
import nvp_core.data as D
from nvp_core import shapes as S


def hue_of(rgb: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 1) of uint8 (..., 3) pixels, via the standard library (independent
    of the generator's own HSV code)."""
    flat = rgb.reshape(-1, 3) / 255.0
    return np.array([colorsys.rgb_to_hsv(*px)[0] for px in flat]).reshape(rgb.shape[:-1])


def circular_mean(h: np.ndarray) -> float:
    a = 2 * np.pi * np.asarray(h)
    return float((np.arctan2(np.sin(a).mean(), np.cos(a).mean()) / (2 * np.pi)) % 1.0)


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def with_factors(base: np.ndarray, **values) -> np.ndarray:
    """One scene's factors repeated, with one field set to each of the given values."""
    (name, vals), = values.items()
    out = np.repeat(base[:1], len(vals))
    out[name] = vals
    return out


# --------------------------------------------------------------------------- determinism and splits
def test_scene_is_a_pure_function_of_seed_split_and_index():
    a = S.generate_scenes(3, "train", [5, 7, 11], 32)
    b = S.generate_scenes(3, "train", [5, 7, 11], 32)
    alone = S.generate_scenes(3, "train", [7], 32)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.factors, b.factors)
    # Scene 7 does not depend on the batch it is rendered in.
    assert np.array_equal(a.images[1], alone.images[0])
    assert np.array_equal(a.factors[1:2], alone.factors)
    other_seed = S.generate_scenes(4, "train", [5, 7, 11], 32)
    assert not np.array_equal(a.factors, other_seed.factors)
    assert not np.array_equal(a.images, other_seed.images)


def test_train_and_test_splits_are_disjoint_streams():
    idx = np.arange(400)
    train = S.scene_factors(0, "train", idx)
    test = S.scene_factors(0, "test", idx)
    cont = [k for k in S.FACTOR_RANGES]
    tr = np.stack([train[k] for k in cont], 1)
    te = np.stack([test[k] for k in cont], 1)
    # No test scene repeats any training scene's factors (not even one hue).
    for k in range(len(cont)):
        assert not np.intersect1d(tr[:, k], te[:, k]).size, cont[k]
    with pytest.raises(D.DataError, match="split"):
        S.scene_factors(0, "validation", idx)


def test_factors_cover_their_ranges_and_all_shapes():
    f = S.scene_factors(1, "train", np.arange(2000))
    assert f.dtype == S.FACTOR_DTYPE
    counts = np.bincount(f["shape"], minlength=len(S.SHAPE_NAMES))
    assert len(counts) == len(S.SHAPE_NAMES) and counts.min() > 300
    for name, (lo, hi) in S.FACTOR_RANGES.items():
        v = f[name]
        assert v.min() >= lo and v.max() <= hi, name
        # uniform: the draws spread over the range
        assert v.min() < lo + 0.05 * (hi - lo) and v.max() > hi - 0.05 * (hi - lo), name


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_dtypes_and_masks(size):
    sc = S.generate_scenes(0, "test", np.arange(6), size)
    assert sc.images.shape == (6, size, size, 3) and sc.images.dtype == np.uint8
    for m in (sc.object_mask, sc.floor_mask):
        assert m.shape == (6, size, size) and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() <= 1.0
    assert (sc.object_mask + sc.floor_mask).max() <= 1.0 + 1e-6
    # Every scene shows all three things: object, floor and wall.
    for i in range(6):
        obj, floor = sc.object_mask[i], sc.floor_mask[i]
        wall = 1.0 - obj - floor
        assert (obj == 1).sum() >= 4 and (floor == 1).sum() >= size * 4 and (wall > 0.99).sum() >= size * 4
        # the wall is above the floor
        rows = np.arange(size)
        assert (rows * wall.mean(1)).sum() / wall.mean(1).sum() < (rows * floor.mean(1)).sum() / floor.mean(1).sum()
    assert sc.chw().shape == (6, 3, size, size) and sc.chw().dtype == torch.uint8


def test_bad_arguments_give_clear_errors():
    f = S.scene_factors(0, "train", [0])
    with pytest.raises(D.DataError, match="size"):
        S.render_scenes(f, 2)
    with pytest.raises(D.DataError, match="FACTOR_DTYPE"):
        S.render_scenes(np.zeros(3), 32)
    with pytest.raises(D.DataError, match="non-negative"):
        S.scene_factors(0, "train", [-1])


# --------------------------------------------------------------------------- the pictures match the factors
def test_object_floor_and_wall_pixels_have_their_factor_hues():
    sc = S.generate_scenes(2, "train", np.arange(24), 32)
    for i in range(24):
        img, f = sc.images[i], sc.factors[i]
        bright = img.max(-1) >= 60  # hue is ill-defined on near-black pixels
        obj = (sc.object_mask[i] == 1) & bright
        floor = (sc.floor_mask[i] == 1) & bright
        wall = (sc.object_mask[i] + sc.floor_mask[i] == 0) & bright
        assert obj.sum() >= 3 and floor.sum() >= 50 and wall.sum() >= 50
        for mask, key in ((obj, "object_hue"), (floor, "floor_hue"), (wall, "wall_hue")):
            got = circular_mean(hue_of(img[mask]))
            assert hue_distance(got, float(f[key])) < 0.02, (i, key, got, float(f[key]))


def test_each_shape_has_its_own_silhouette():
    base = S.scene_factors(0, "train", [0])
    base["yaw"], base["x"], base["z"], base["scale"] = 0.4, 0.0, 0.2, 1.0
    sc = S.render_scenes(with_factors(base, shape=np.arange(len(S.SHAPE_NAMES))), 64)
    masks = sc.object_mask > 0.5
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.85, (S.SHAPE_NAMES[a], S.SHAPE_NAMES[b], iou)


def test_yaw_turns_the_cube_but_not_the_sphere():
    base = S.scene_factors(0, "train", [0])
    base["x"], base["z"] = 0.0, 0.2
    for shape, changes in ((1, True), (0, False)):
        base["shape"] = shape
        sc = S.render_scenes(with_factors(base, yaw=np.array([0.0, 0.6], np.float32)), 64)
        diff = np.abs(sc.object_mask[0] - sc.object_mask[1]).sum()
        assert (diff > 20) == changes, (S.SHAPE_NAMES[shape], diff)


def test_scale_grows_and_x_moves_the_object():
    base = S.scene_factors(0, "train", [0])
    base["shape"], base["z"] = 0, 0.3
    sc = S.render_scenes(with_factors(base, scale=np.array([0.75, 1.0, 1.25], np.float32)), 32)
    area = sc.object_mask.sum((1, 2))
    assert area[0] < area[1] < area[2]
    sc = S.render_scenes(with_factors(base, x=np.array([-1.0, 0.0, 1.0], np.float32)), 32)
    cols = np.arange(32)
    centroid = (sc.object_mask.sum(1) * cols).sum(1) / sc.object_mask.sum((1, 2))
    assert centroid[0] < 12 < centroid[1] < 20 < centroid[2]


@pytest.mark.parametrize("size", [32, 64])
def test_objects_stay_whole_inside_the_picture(size):
    """x = ±1 is as far as an object goes: every shape, largest, nearest and farthest, any yaw."""
    base = S.scene_factors(0, "train", [0])
    rows = []
    for shape in range(len(S.SHAPE_NAMES)):
        for x in (-1.0, 1.0):
            for z in S.FACTOR_RANGES["z"]:
                for yaw in (0.0, 0.8, -1.3):
                    f = base.copy()
                    f["shape"], f["x"], f["z"], f["yaw"], f["scale"] = shape, x, z, yaw, S.FACTOR_RANGES["scale"][1]
                    rows.append(f)
    m = S.render_scenes(np.concatenate(rows), size).object_mask
    assert m[:, :, 0].max() == 0 and m[:, :, -1].max() == 0 and m[:, 0, :].max() == 0
    assert m.sum((1, 2)).min() > 0


def test_light_from_the_right_casts_the_shadow_to_the_left():
    base = S.scene_factors(0, "train", [0])
    base["shape"], base["x"], base["z"], base["light_elevation"] = 0, 0.0, 0.0, np.pi / 6
    sc = S.render_scenes(with_factors(base, light_azimuth=np.array([-1.0, 1.0], np.float32)), 64)
    cols = np.arange(64)
    for i, side in ((0, +1), (1, -1)):
        lum = sc.images[i].astype(float).mean(-1)
        floor = sc.floor_mask[i] == 1
        # darkness of floor pixels relative to the floor's median
        dark = np.where(floor, np.maximum(np.median(lum[floor]) - lum, 0), 0)
        obj_c = (sc.object_mask[i].sum(0) * cols).sum() / sc.object_mask[i].sum()
        shadow_c = (dark.sum(0) * cols).sum() / dark.sum()
        assert side * (shadow_c - obj_c) > 2, (i, shadow_c, obj_c)


# --------------------------------------------------------------------------- as training data
def test_load_data_shapes_gives_train_data():
    data = D.load_data(D.SHAPES, 32, seed=1, n_train=40, n_test=12)
    assert "shapes" in D.BUILTIN_DATASETS and D.PHOTO_CROPS in D.BUILTIN_DATASETS
    assert isinstance(data, D.TrainData) and data.name == "shapes" and len(data) == 40 and data.size == 32
    assert data.test.shape == (12, 3, 32, 32) and data.test.dtype == torch.uint8
    assert torch.equal(data.test, S.generate_scenes(1, "test", np.arange(12), 32).chw())
    b = data.batch(3, 8, seed=5, flip=False)
    assert b.shape == (8, 3, 32, 32) and b.dtype == torch.uint8
    # the batch holds exactly the scenes its (seed, step) order names
    idx = D._Order(40, 5).indices(3 * 8, 8)
    assert torch.equal(b, S.generate_scenes(1, "train", idx.numpy(), 32).chw())
    # a fresh load (no cache) gives the same batch; sharding over 2 ranks gives its halves
    again = D.load_data("shapes", 32, seed=1, n_train=40, n_test=12)
    assert torch.equal(again.batch(3, 8, seed=5), data.batch(3, 8, seed=5))
    halves = torch.cat([again.batch(7, 4, seed=5, rank=r, world=2) for r in (0, 1)])
    assert torch.equal(halves, data.batch(7, 8, seed=5))
    # threads render the same scenes
    threaded = S.ShapesData(32, n_train=40, n_test=40, seed=1, workers=3)
    assert torch.equal(threaded.test[:12], data.test)
    assert torch.equal(threaded.batch(3, 40, seed=5), D.load_data("shapes", 32, seed=1, n_train=40,
                                                                   n_test=12, workers=1).batch(3, 40, seed=5))


def test_generation_speed_is_printed(capsys):
    """Not a timed assertion (the machine is shared): prints images/s for the record."""
    for size in (32, 64):
        t = time.perf_counter()
        S.generate_scenes(0, "train", np.arange(64), size)
        rate = 64 / (time.perf_counter() - t)
        with capsys.disabled():
            print(f"\nshapes: {rate:.0f} images/s at {size}x{size} (64-image batch)")


# --------------------------------------------------------------------------- the Training tab offers it
def test_training_tab_offers_shapes_and_trains_on_it(qtbot, tmp_path):
    from types import SimpleNamespace

    from explorer.panels.training import TrainingPanel
    from nvp_core.train import TrainConfig

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    panel = TrainingPanel(SimpleNamespace(flow=None, device=torch.device("cpu")))
    qtbot.addWidget(panel)
    try:
        names = [panel.builtin.itemData(i) for i in range(panel.builtin.count())]
        assert names == list(D.BUILTIN_DATASETS)
        panel.use_folder.setChecked(True)
        panel.builtin.setCurrentIndex(names.index("shapes"))  # choosing a set selects "Built-in"
        assert panel.use_photos.isChecked() and panel.data_source() == "shapes"
        panel.set_config(TrainConfig(data=D.PHOTO_CROPS))
        assert panel.data_source() == D.PHOTO_CROPS
        panel.set_config(TrainConfig(data="shapes"))
        assert panel.data_source() == "shapes"
        for box, value in ((panel.size_box, 8), (panel.width_box, 4), (panel.blocks, 1), (panel.scales, 2),
                           (panel.max_width, 16), (panel.batch, 4), (panel.steps, 2), (panel.eval_every, 2),
                           (panel.eval_images, 8), (panel.sample_every, 2), (panel.n_samples, 4),
                           (panel.checkpoint_every, 1000)):
            box.setValue(value)
        panel.device.setCurrentIndex(panel.device.findData("cpu"))
        panel.out.setText(str(tmp_path / "run"))
        assert panel.config().data == "shapes" and panel.start_button.isEnabled(), panel.problem.text()
        panel.start()
        qtbot.waitUntil(lambda: not panel.running, timeout=120000)
        assert panel.events[-1] == "done", (panel.events, panel.log.toPlainText())
        assert nc.load_metadata(panel.model_path)["data"] == "shapes"
    finally:
        panel.shutdown()
        torch.set_num_threads(torch_threads)



def test_depth_raises_and_shrinks_the_object_and_elevation_brightens_the_floor():
    base = S.scene_factors(0, "train", [0])
    base["shape"], base["x"] = 1, 0.0
    sc = S.render_scenes(with_factors(base, z=np.array([-0.6, 0.2, 0.9], np.float32)), 64)
    rows = np.arange(64)
    bottom = [rows[m.sum(1) > 0].max() for m in sc.object_mask]
    area = sc.object_mask.sum((1, 2))
    assert bottom[0] > bottom[1] > bottom[2] and area[0] > area[1] > area[2]
    base["z"], base["x"] = 0.9, -1.0  # object far left, away from the floor patch measured
    lo, hi = S.FACTOR_RANGES["light_elevation"]
    sc = S.render_scenes(with_factors(base, light_elevation=np.array([lo, hi], np.float32)), 32)
    patch = sc.images[:, -6:, 20:].astype(float).mean((1, 2, 3))
    assert patch[1] > 1.15 * patch[0]


def test_descriptions_and_factor_dicts():
    f = S.scene_factors(0, "train", np.arange(50))
    for r in f:
        d = S.factor_dict(r)
        assert d["shape"] in S.SHAPE_NAMES and set(d) == set(S.FACTOR_NAMES)
        text = S.describe(r)
        assert d["shape"] in text and S.hue_name(d["object_hue"]) in text
    assert [S.hue_name(h) for h in (0.0, 1 / 3, 2 / 3, 0.99)] == ["red", "green", "blue", "red"]
    base = f[:1].copy()
    base["shape"], base["scale"], base["x"], base["light_azimuth"] = 1, 1.2, -0.9, 0.9
    assert S.describe(base[0]).startswith("large ") and "left" in S.describe(base[0])
    assert "light from the right" in S.describe(base[0]) and "turned" in S.describe(base[0])
    with pytest.raises(D.DataError, match="supersample"):
        S.render_scenes(f[:1], 16, supersample=0)


def test_nvp_train_shapes_from_the_command_line(tmp_path, capsys):
    from nvp_core.cli import main

    out = tmp_path / "run"
    code = main(["train", "shapes", "--out", str(out), "--size", "8", "--steps", "2", "--batch-size", "4",
                 "--width", "4", "--blocks", "1", "--scales", "2", "--max-width", "8", "--eval-every", "2",
                 "--eval-images", "8", "--train-crops", "16", "--test-crops", "8", "--device", "cpu",
                 "--threads", "1", "--quiet", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "training on shapes: 16 train / 8 test images at 8×8" in err
    meta = nc.load_metadata(out / "model")
    # the model file records which scenes it saw, and the factor ranges
    assert meta["data"] == "shapes" and meta["data_info"]["train_scenes"] == 16
    assert meta["data_info"]["factor_ranges"]["scale"] == list(S.FACTOR_RANGES["scale"])
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "shapes" in capsys.readouterr().out
