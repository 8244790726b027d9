"""Hostile input (issue 13) and huge/tiny images (issue 11 item 7): every case ends in one
clear message or a sensible result, never a traceback, a hang or a memory bomb.

Bombs are real, valid files (tests/hostile.py streams them), so a reader that decoded
them would allocate gigabytes: these tests fail by error or by memory before the fix.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nvp_core as nc
from nvp_core import images
from hostile import png_bomb

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- pixel limit, before decoding
@pytest.mark.parametrize("kind", [dict(color_type=3, bit_depth=8), dict(color_type=0, bit_depth=1, transparency=False)],
                         ids=["palette+tRNS", "1-bit"])
def test_png_bomb_is_refused_from_its_header(tmp_path, kind):
    bomb = png_bomb(tmp_path / "bomb.png", 28000, 28000, **kind)
    assert bomb.stat().st_size < 1_000_000  # under a megabyte on disk, 784 megapixels inside
    before = _peak_rss_mb()
    t0 = time.monotonic()
    with pytest.raises(nc.DataError, match=r"bomb\.png: 28000×28000 pixels \(784 megapixels\) is over the limit of 100 megapixels"):
        images.load_image(bomb)
    assert time.monotonic() - t0 < 5
    assert _peak_rss_mb() - before < 200  # decoding would have taken ≥ 784 MB


def test_pixel_limit_guards_every_reader(tmp_path, monkeypatch):
    """The CLI's loader, the explorer's reader and training folders go through the same check."""
    from explorer import session as S

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)
    png_bomb(tmp_path / "big.png", 200, 101)
    Image.new("RGB", (100, 100), (9, 9, 9)).save(tmp_path / "ok.png")
    arr, ok, skipped = images.load_images([tmp_path / "big.png", tmp_path / "ok.png"], 16)
    assert len(ok) == 1 and "over the limit of" in skipped[0]
    items, errors = S.read_images([tmp_path / "big.png", tmp_path / "ok.png"])
    assert [i[0] for i in items] == ["ok.png"] and "over the limit of" in errors[0]
    from nvp_core.data import load_folder

    with pytest.warns(UserWarning) as caught:
        data = load_folder(tmp_path, 16, workers=1)
    assert data.info["skipped"] == 1 and any("over the limit" in str(w.message) for w in caught)


def test_huge_jpeg_decodes_reduced_with_its_true_size(tmp_path):
    img = Image.new("RGB", (6000, 4000), (200, 40, 40))
    img.paste((20, 200, 20), (3000, 0, 6000, 4000))
    img.save(tmp_path / "big.jpg", quality=90)
    t0 = time.monotonic()
    r = images.read_image(tmp_path / "big.jpg", 512)
    assert (r.width, r.height) == (6000, 4000) and r.reduced
    assert r.image.size == (3000, 2000)  # 1/2 scale: the largest that still covers 2×512 (1/4 would not)
    left, right = np.asarray(r.image)[:, :10].mean((0, 1)), np.asarray(r.image)[:, -10:].mean((0, 1))
    assert left[0] > 150 and right[1] > 150  # the picture, not a crop of it
    assert time.monotonic() - t0 < 5
    full = images.read_image(tmp_path / "big.jpg")  # nothing wanted: full size (under the limit)
    assert full.image.size == (6000, 4000) and not full.reduced


def test_jpeg_over_the_limit_decodes_at_a_scale_under_it(tmp_path, monkeypatch):
    Image.new("RGB", (800, 600), (1, 2, 3)).save(tmp_path / "a.jpg")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 200 * 150)
    r = images.read_image(tmp_path / "a.jpg")
    assert (r.width, r.height) == (800, 600) and r.image.size[0] * r.image.size[1] <= 200 * 150
    Image.new("RGB", (800, 600), (1, 2, 3)).save(tmp_path / "p.jpg", progressive=True)
    with pytest.raises(nc.DataError, match="over the limit"):  # progressive JPEGs buffer at full size
        images.read_image(tmp_path / "p.jpg")


def test_large_png_is_reduced_to_what_is_wanted(tmp_path):
    Image.new("P", (3000, 2000), 0).save(tmp_path / "p.png")
    r = images.read_image(tmp_path / "p.png", (256, 256))
    assert (r.width, r.height) == (3000, 2000)
    assert r.image.mode == "RGB" and 512 <= min(r.image.size) < 1024


def test_exif_rotation_reports_the_upright_size(tmp_path):
    img = Image.new("RGB", (64, 32), (10, 20, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90°
    img.save(tmp_path / "r.jpg", exif=exif)
    r = images.read_image(tmp_path / "r.jpg")
    assert r.image.size == (32, 64) and (r.width, r.height) == (32, 64)


# ---------------------------------------------------------------- odd pixel types
def test_float_tiff_in_unit_range_is_not_black(tmp_path):
    ramp = np.linspace(0, 1, 64 * 32, dtype=np.float32).reshape(32, 64)
    Image.fromarray(ramp, mode="F").save(tmp_path / "f.tif")
    a = images.load_image(tmp_path / "f.tif")
    assert a.min() == 0 and a.max() == 255 and abs(a.mean() - 127.5) < 2


def test_int32_tiff_is_scaled_by_its_range_not_white(tmp_path):
    ramp = np.linspace(0, 2e9, 64 * 32).reshape(32, 64).astype(np.int32)
    Image.fromarray(ramp, mode="I").save(tmp_path / "i.tif")
    a = images.load_image(tmp_path / "i.tif")
    assert a.min() == 0 and a.max() == 255 and abs(a.mean() - 127.5) < 2
    # 8-bit values in a 32-bit container stay as they are
    Image.fromarray(np.full((8, 8), 77, np.int32), mode="I").save(tmp_path / "i8.tif")
    assert (images.load_image(tmp_path / "i8.tif") == 77).all()


def test_float_tiff_with_nan_and_wide_range(tmp_path):
    arr = np.linspace(-5, 5, 16 * 16, dtype=np.float32).reshape(16, 16)
    arr[0, 0] = np.nan
    Image.fromarray(arr, mode="F").save(tmp_path / "w.tif")
    a = images.load_image(tmp_path / "w.tif")
    assert a.max() == 255 and a[15, 15, 0] == 255 and a[0, 1, 0] < 5
    Image.fromarray(np.full((4, 4), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(nc.DataError, match="no finite pixel"):
        images.load_image(tmp_path / "nan.tif")


# ---------------------------------------------------------------- non-regular files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_image_is_refused_without_blocking(tmp_path):
    from explorer import session as S

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    code = ("import sys; from nvp_core import images\n"
            "try:\n    images.load_image(sys.argv[1])\nexcept images.DataError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert "fifo.png: not a regular file (a FIFO)" in out.stdout
    items, errors = S.read_images([fifo])
    assert not items and "not a regular file" in errors[0]
    with pytest.raises(nc.DataError, match="not a regular file"):
        images.load_images([fifo], 16) and images.open_image(fifo)


def test_device_file_is_refused():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(nc.DataError, match="character device"):
        images.load_image("/dev/zero")


# ---------------------------------------------------------------- an image where a model is expected
def test_looks_like_image_by_extension_and_magic(tmp_path):
    (tmp_path / "vector.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path / "noext").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')
    Image.new("RGB", (4, 4)).save(tmp_path / "png_named.safetensors", format="PNG")
    (tmp_path / "weights.bin").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert images.looks_like_image(tmp_path / "vector.svg")
    assert images.looks_like_image(tmp_path / "noext")
    assert images.looks_like_image(tmp_path / "png_named.safetensors")
    assert not images.looks_like_image(tmp_path / "weights.bin")
    assert not images.looks_like_image(tmp_path / "missing")


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_flow):
    path = tmp_path / "tiny"
    nc.save(tiny_flow, path)
    return path


def test_cli_says_an_svg_is_an_image_not_a_model(tmp_path, capsys, monkeypatch, tiny_model_dir):
    from nvp_core.cli import main

    monkeypatch.setattr(nc, "DEFAULT_MODEL", tiny_model_dir)
    svg = tmp_path / "vector.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    Image.new("RGB", (20, 20), (50, 90, 200)).save(tmp_path / "a.png")
    code = main(["sample", str(svg), "--out", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and "vector.svg is an image, not a model" in err and "safetensors file" in err
    assert "truncated" not in err
    # where a model may be left out, the SVG is one of the images (skipped: unreadable), the default model encodes a.png
    code = main(["encode", str(svg), str(tmp_path / "a.png"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "a.png" in out and "vector.svg" in err and "truncated" not in err
