"""Data: image folders of every odd kind, the photo-crops set, and (seed, step)-determined batches."""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import nvp_core as nc
from nvp_core import data as D


def _rgb(seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def odd_folder(tmp_path):
    """A tree with RGB, RGBA, grayscale, palette, 16-bit PNGs, a JPEG, a corrupt file and a text file."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_rgb(0)).save(root / "rgb.png")
    rgba = np.dstack([_rgb(1), np.full((40, 48), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "sub" / "rgba.png")
    Image.fromarray(_rgb(2)[..., 0], "L").save(root / "sub" / "gray.png")
    Image.fromarray(_rgb(3)).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "sub" / "deeper" / "pal.gif")
    sixteen = (np.random.default_rng(4).integers(0, 65536, (40, 48))).astype(np.uint16)
    Image.fromarray(sixteen).save(root / "deep16.png")  # uint16 → mode I;16
    Image.fromarray(_rgb(5)).save(root / "photo.jpg", quality=90)
    Image.fromarray(_rgb(6)).save(root / "img.webp")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_center_crops_odd_modes_and_skips_corrupt(odd_folder):
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        d = D.load_folder(odd_folder, 16, crop="center", test_fraction=0.2)
    assert d.info["skipped"] == 1
    assert d.info["files"] == 7
    assert len(d) + len(d.test) == 7 and len(d.test) >= 1
    assert d.train.dtype == torch.uint8 and d.train.shape[1:] == (3, 16, 16)
    assert d.test.shape[1:] == (3, 16, 16)
    b = d.batch(0, 5, seed=0)
    assert b.shape == (5, 3, 16, 16) and b.dtype == torch.uint8


def test_folder_split_is_stable_and_disjoint(odd_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = D.load_folder(odd_folder, 16, test_fraction=0.3)
        b = D.load_folder(odd_folder, 16, test_fraction=0.3)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    train_rows = {t.numpy().tobytes() for t in a.train}
    assert not any(t.numpy().tobytes() in train_rows for t in a.test)


def test_empty_and_non_image_folders_fail_before_training(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(nc.DataError, match="no image files"):
        D.load_folder(empty, 16)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    (junk / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(nc.DataError, match="could be read"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        D.load_folder(junk, 16)
    with pytest.raises(nc.DataError, match="does not exist"):
        D.load_folder(tmp_path / "missing", 16)


def test_random_crops_come_from_disjoint_regions(tmp_path):
    """Each pixel encodes its row; train crops must stay above the held-out bottom strip."""
    h, w = 100, 64
    rows = np.repeat(np.arange(h, dtype=np.uint8)[:, None], w, axis=1)
    for i in range(2):
        Image.fromarray(np.dstack([rows, rows, np.full_like(rows, i)])).save(tmp_path / f"t{i}.png")
    d = D.load_folder(tmp_path, 16, crop="random", test_fraction=0.25, max_side=1000, n_test_crops=40)
    cut = h - 25
    assert int(d.test[:, 0].min()) >= cut
    seen = torch.cat([d.batch(s, 8, seed=3, flip=False) for s in range(20)])
    assert int(seen[:, 0].max()) < cut
    # crops are real slices: rows increase by one down each crop
    assert torch.all(seen[:, 0, 1:, 0].int() - seen[:, 0, :-1, 0].int() == 1)
    # sharding a step's global batch does not change its crops
    whole = d.batch(4, 8, seed=3)
    assert torch.equal(whole, torch.cat([d.batch(4, 4, seed=3, rank=r, world=2) for r in range(2)]))


def test_batches_are_a_function_of_seed_and_step_and_shard_exactly():
    train = torch.arange(50 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).view(50, 3, 4, 4)
    train[:, 0, 0, 0] = torch.arange(50, dtype=torch.uint8)  # identify samples
    d = D.TensorData("t", train, train[:4])
    assert torch.equal(d.batch(7, 8, seed=1), d.batch(7, 8, seed=1))
    assert not torch.equal(d.batch(7, 8, seed=1), d.batch(8, 8, seed=1))
    whole = d.batch(3, 8, seed=1, rank=0, world=1)
    halves = torch.cat([d.batch(3, 4, seed=1, rank=r, world=2) for r in range(2)])
    assert torch.equal(whole, halves)
    u_whole = D.dequantize_batch(whole, 3, seed=1)
    u_halves = torch.cat([D.dequantize_batch(halves[4 * r:4 * r + 4], 3, 1, r, 2) for r in range(2)])
    assert torch.equal(u_whole, u_halves)
    assert float(u_whole.min()) >= 0 and float(u_whole.max()) < 1
    # one epoch (5 steps × 10) visits every sample exactly once
    ids = torch.cat([d.batch(s, 10, seed=2, flip=False)[:, 0, 0, 0] for s in range(5)])
    assert sorted(ids.tolist()) == list(range(50))


def test_flips_mirror_some_samples():
    img = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    img[..., 0] = 255  # left column white
    d = D.TensorData("t", img.repeat(40, 1, 1, 1), img)
    b = d.batch(0, 40, seed=0, flip=True)
    flipped = (b[:, 0, 0, 3] == 255).sum().item()
    assert 5 < flipped < 35


needs_photos = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("skimage", "sklearn", "matplotlib")),
    reason="photo-crops needs the [data] extra",
)


@needs_photos
def test_photo_crops_deterministic_and_test_region_disjoint():
    a = D.load_photo_crops(16, n_train=48, n_test=24, seed=5)
    b = D.load_photo_crops(16, n_train=48, n_test=24, seed=5)
    assert a.train.shape == (48, 3, 16, 16) and a.test.shape == (24, 3, 16, 16)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert len(a.info["photos"]) >= 10
    assert a.info["train_crops"] == 48


@needs_photos
def test_photo_crops_never_read_the_other_split(monkeypatch, tmp_path):
    """Photos whose pixels say which split they lie in: train crops must hold only
    train pixels and test crops only test pixels, filter taps included."""
    paths = []
    for i, (h, w) in enumerate(((200, 160), (120, 300))):
        arr = np.zeros((h, w, 3), np.uint8)
        arr[h - int(round(h * 0.25)):] = 255  # the held-out bottom strip is white
        arr[..., 2] = i
        Image.fromarray(arr).save(tmp_path / f"p{i}.png")
        paths.append((f"p{i}", tmp_path / f"p{i}.png"))
    monkeypatch.setattr(D, "photo_paths", lambda: paths)
    d = D.load_photo_crops(16, n_train=200, n_test=100, seed=1)
    assert int(d.train[:, :2].max()) == 0
    assert int(d.test[:, :2].min()) == 255


def test_photo_crops_missing_packages_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(nc.DataError, match=r"pip install -e \.\[data\]"):
        D.load_photo_crops(16, n_train=10, n_test=10)


def test_png_bits_per_dim_anchor():
    flat = np.full((2, 32, 32, 3), 77, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert D.png_bits_per_dim(flat) < 0.5
    assert D.png_bits_per_dim(torch.from_numpy(noise).permute(0, 3, 1, 2)) > 8.0
    with pytest.raises(nc.DataError):
        D.png_bits_per_dim(np.zeros((2, 8, 8), np.uint8))


def test_held_out_split_is_the_one_the_model_trained_with():
    from nvp_core.data import HeldOut

    meta = {"data": "shapes", "train_config": {"data": "shapes", "seed": 3, "n_test_crops": 40}}
    held = HeldOut.of(meta)
    assert held == HeldOut("shapes", 3, 40) and "seed 3, 40 images" in held.describe()
    first = held.load(16, 8)
    assert first.shape == (8, 3, 16, 16) and first.dtype == torch.uint8
    assert torch.equal(first, D.load_data("shapes", 16, n_train=1, n_test=40, seed=3).test[:8])
    assert not torch.equal(first, HeldOut("shapes", 4, 40).load(16, 8))  # another seed, other scenes
    # a folder-trained model, or no record at all: photo-crops with the trainer's defaults
    assert HeldOut.of({"data": "/home/me/pictures", "train_config": {"seed": 1}}) == HeldOut("photo-crops", 1, 2000)
    assert HeldOut.of(None) == HeldOut.of({"train_config": {"seed": "x"}}) == HeldOut()
