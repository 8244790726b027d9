"""Image reading: odd modes convert sensibly, broken files raise DataError with the name."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import nvp_core as nc
from nvp_core import images


def test_odd_modes_become_rgb(tmp_path):
    rgba = Image.new("RGBA", (10, 8), (255, 0, 0, 0))  # fully transparent red → white
    rgba.save(tmp_path / "a.png")
    Image.new("L", (10, 8), 77).save(tmp_path / "g.png")
    Image.new("P", (10, 8)).save(tmp_path / "p.gif")
    Image.new("CMYK", (10, 8), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    arr16 = np.full((8, 10), 65535, np.uint16)
    Image.fromarray(arr16).save(tmp_path / "d.png")
    out = {p.name: images.load_image(p) for p in images.find_images(tmp_path)}
    assert all(a.shape == (8, 10, 3) and a.dtype == np.uint8 for a in out.values())
    assert (out["a.png"] == 255).all()
    assert (out["g.png"] == 77).all()
    assert (out["d.png"] == 255).all()
    assert out["c.jpg"].mean() > 240


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(nc.DataError, match="broken.jpg"):
        images.load_image(bad)
    with pytest.raises(nc.DataError, match="no image at .*missing.png"):
        images.load_image(tmp_path / "missing.png")
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "ok.png")
    arr, ok, skipped = images.load_images([bad, tmp_path / "ok.png"], 16)
    assert arr.shape == (1, 16, 16, 3) and len(skipped) == 1 and "broken.jpg" in skipped[0]


def test_fit_image_centre_crops_to_aspect():
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, 20:60] = 200  # the centre square
    out = images.fit_image(arr, 16)
    assert out.shape == (16, 16, 3)
    assert out.min() >= 180  # the black sides were cropped away (Lanczos rings a little)
    wide = images.fit_image(arr, 8, 32)
    assert wide.shape == (8, 32, 3)


def test_grid_and_save(tmp_path):
    tiles = np.random.default_rng(0).integers(0, 255, (5, 4, 4, 3), dtype=np.uint8)
    g = images.grid(tiles, cols=3, pad=1)
    assert g.shape == (2 * 4 + 3, 3 * 4 + 4, 3)
    assert np.array_equal(g[1:5, 1:5], tiles[0])
    images.save_image(g, tmp_path / "g.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png")), g)
