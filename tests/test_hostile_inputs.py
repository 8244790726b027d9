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
    from explorer.image_files import read_images

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)
    png_bomb(tmp_path / "big.png", 200, 101)
    Image.new("RGB", (100, 100), (9, 9, 9)).save(tmp_path / "ok.png")
    arr, ok, skipped = images.load_images([tmp_path / "big.png", tmp_path / "ok.png"], 16)
    assert len(ok) == 1 and "over the limit of" in skipped[0]
    items, errors = read_images([tmp_path / "big.png", tmp_path / "ok.png"])
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
    from explorer.image_files import read_images

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    code = ("import sys; from nvp_core import images\n"
            "try:\n    images.load_image(sys.argv[1])\nexcept images.DataError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert "fifo.png is a FIFO (named pipe), not an image; it was not read" in out.stdout
    items, errors = read_images([fifo])
    assert not items and "fifo.png is a FIFO" in errors[0]
    arr, ok, skipped = images.load_images([fifo], 16)  # the CLI's reader
    assert not ok and "fifo.png is a FIFO (named pipe), not an image; it was not read" in skipped[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_encode_of_a_fifo_image_is_one_line(tmp_path, tiny_model_dir):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "nvp_core", "encode", str(tiny_model_dir), str(fifo)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "fifo.png is a FIFO (named pipe), not an image; it was not read" in out.stderr


def test_device_file_and_folder_are_refused(tmp_path):
    with pytest.raises(nc.DataError, match=r"is a folder, not an image; it was not read$"):
        images.load_image(tmp_path)
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(nc.DataError, match="/dev/zero is a character device, not an image; it was not read"):
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


# ---------------------------------------------------------------- session files (.nvps)
def _session_zip(path: Path, doc: dict | str | bytes, members: dict[str, bytes] | None = None) -> Path:
    import json
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if isinstance(doc, dict):
            doc = json.dumps({"format": "nvp-explorer/session", "version": 1, **doc})
        zf.writestr("session.json", doc)
        for name, data in (members or {}).items():
            zf.writestr(name, data)
    return path


def _png(color=(10, 200, 30), size=(12, 10)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("doc, match", [
    ({"anchors": [5]}, r"anchors\[0\] should be an object, not the number 5"),
    ({"anchors": [{"kind": "sample", "seed": 3, "temperature": float("nan")}]}, r"anchors\[0\]\.temperature is nan"),
    ({"anchors": [{"kind": "sample", "seed": 3, "temperature": float("inf")}]}, r"anchors\[0\]\.temperature is inf"),
    ({"anchors": [{"kind": "sample", "seed": 2**80}]}, r"anchors\[0\]\.seed is 1208925819614629174706176"),
    ({"anchors": [{"kind": "wormhole"}]}, r"anchors\[0\]\.kind is 'wormhole'"),
    ({"anchors": "all"}, "anchors should be a list, not text"),
    ({"angles": [1, 2, 3]}, "angles should be an object, not a list"),
    ({"angles": {"phi": float("nan")}}, r"angles\.phi is nan"),
    ({"angles": {"phi1": "90"}}, r"angles\.phi1 should be a number, not text"),
    ({"angles": {"phi2": float("-inf")}}, r"angles\.phi2 is -inf"),
    ({"infoloss": {"temperature": float("nan")}}, r"infoloss\.temperature is nan"),
    ({"infoloss": {"levels": [1, "x"]}}, r"infoloss\.levels should be a whole number"),
    ({"infoloss": {"levels": 7}}, r"infoloss\.levels should be a list"),
    ({"canvas": {"width": 1e308}}, r"canvas\.width is 1e\+308; expected 0 … 4096"),
    ({"canvas": {"width": 12.5}}, r"canvas\.width should be a whole number, not the number 12.5"),
    ({"canvas": {"width": 10**9}}, r"canvas\.width is 1000000000; expected 0 … 4096"),
    ({"canvas": {"temperature": 1e308}}, r"canvas\.temperature is 1e\+308"),
    ({"current": "first"}, "current should be a whole number"),
    ({"images": [{"name": "a", "file": "images/000.png"}]}, r"images\[0\] names 'images/000.png', which is not in the file"),
    ({"images": [7]}, r"images\[0\] should be an object"),
    ({"images": [{"name": "a", "file": "x.png", "box": [1, 2]}]}, r"images\[0\]\.box should be \[left, top, right, bottom\]"),
    ({"version": [1]}, "version should be a whole number"),
    ({"model": {"path": "x"}}, "model should be text"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_bad_session_values_are_one_clear_error(tmp_path, doc, match):
    from explorer.session_file import read_session

    p = _session_zip(tmp_path / "bad.nvps", doc, {"x.png": _png()})
    with pytest.raises(nc.DataError, match=r"bad\.nvps: damaged session file: " + match):
        read_session(p)


def test_deeply_nested_session_json_is_one_clear_error(tmp_path):
    from explorer.session_file import read_session

    p = _session_zip(tmp_path / "deep.nvps", '{"format": "nvp-explorer/session", "angles": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(nc.DataError, match="nested too deeply"):
        read_session(p)


def test_session_embedding_a_png_bomb_is_refused_from_the_header(tmp_path):
    from explorer.session_file import read_session
    from hostile import png_bomb_bytes

    bomb = png_bomb_bytes(28000, 28000)
    doc = {"images": [{"name": "bomb", "file": "images/000.png"}]}
    p = _session_zip(tmp_path / "bomb.nvps", doc, {"images/000.png": bomb})
    assert p.stat().st_size < 10_000  # a few KB compressed: the was 824 bytes
    before = _peak_rss_mb()
    with pytest.raises(nc.DataError, match=r"bomb\.nvps: damaged session file: images/000\.png: 28000×28000 pixels .* over the limit of 17 megapixels"):
        read_session(p)
    assert _peak_rss_mb() - before < 200
    p = _session_zip(tmp_path / "anchor.nvps", {"anchors": [{"kind": "image", "file": "a.png"}]}, {"a.png": bomb})
    with pytest.raises(nc.DataError, match="28000×28000 pixels"):
        read_session(p)


def test_session_zip_bomb_member_is_refused(tmp_path):
    from explorer.session_file import read_session
    from explorer import session_file as F

    p = _session_zip(tmp_path / "zb.nvps", {"images": [{"name": "a", "file": "big.png"}]},
                     {"big.png": b"\0" * (F.MAX_MEMBER_BYTES + 1)})
    with pytest.raises(nc.DataError, match="big.png unpacks to 64.0 MB"):
        read_session(p)
    p = _session_zip(tmp_path / "js.nvps", " " * (F.MAX_JSON_BYTES + 1))
    with pytest.raises(nc.DataError, match="session.json unpacks to"):
        read_session(p)


def test_huge_session_file_is_refused_before_reading(tmp_path, monkeypatch):
    from explorer.session_file import read_session
    from explorer import session_file as F

    p = tmp_path / "huge.nvps"
    with open(p, "wb") as f:
        f.truncate(F.MAX_SESSION_BYTES + 1)  # sparse: no disk used
    with pytest.raises(nc.DataError, match=r"huge\.nvps: 1,073,741,825 bytes is over the 1,024 MB limit for session files"):
        read_session(p)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_session_fifo_and_a_session_naming_a_fifo_model(tmp_path):
    from explorer.session_file import read_session

    fifo = tmp_path / "s.nvps"
    os.mkfifo(fifo)
    with pytest.raises(nc.DataError, match=r"s\.nvps is a FIFO \(named pipe\), not a session file"):
        read_session(fifo)
    model_fifo = tmp_path / "model.safetensors"
    os.mkfifo(model_fifo)
    for model, kind in ((str(model_fifo), "FIFO"), ("/dev/zero", "device")):
        if not Path(model).exists():
            continue
        p = _session_zip(tmp_path / "m.nvps", {"model": model, "images": [{"name": "a", "file": "a.png"}]},
                         {"a.png": _png()})
        doc = read_session(p)
        assert doc.model is None and len(doc.images) == 1
        assert doc.warnings and model in doc.warnings[0] and "not a regular file" in doc.warnings[0]


def test_session_angles_wrap_and_true_sizes_survive(tmp_path, tiny_flow):
    from explorer.entries import encode_items, fit_caption
    from explorer.session_file import read_session

    p = _session_zip(tmp_path / "ok.nvps", {"angles": {"phi": 720.0, "phi1": -90}, "model": str(tmp_path / "gone"),
                                           "images": [{"name": "a", "file": "a.png", "size": [4000, 3000]}]},
                     {"a.png": _png(size=(40, 30))})
    doc = read_session(p)
    assert doc.angles == (0.0, 270.0, 0.0) and doc.model == str(tmp_path / "gone") and not doc.warnings
    entries = encode_items(tiny_flow, doc.images)
    assert entries[0].true_size == (4000, 3000) and "centre crop of 4000×3000 (kept at 40×30)" in fit_caption(entries[0])


# ---------------------------------------------------------------- the explorer (pytest-qt, offscreen)
def _gui_images(folder: Path, sizes) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.stack([(xx * 7 + 40 * i) % 256, (yy * 5) % 256, np.full_like(xx, 60 + 30 * i)], -1).astype(np.uint8)
        p = folder / f"pic{i}.png"
        Image.fromarray(arr).save(p)
        out.append(str(p))
    return out


@pytest.fixture
def gui(qtbot, explorer_settings, one_torch_thread):
    from explorer.main_window import MainWindow

    w = MainWindow(device="cpu", settings=explorer_settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    yield w
    w.shutdown()


def _settle(qtbot, w, timeout: int = 60000) -> None:
    qtbot.waitUntil(w.settled, timeout=timeout)


def _errors(w) -> list[str]:
    return [text for level, text in w.message_bar.history if level == "error"]


def _saved_model(tmp_path: Path, name: str, seed: int, metadata=None, **cfg) -> Path:
    import torch

    from conftest import randomize, tiny_config

    torch.manual_seed(seed)
    folder = tmp_path / name
    nc.save(randomize(nc.RealNVP(tiny_config(**cfg)), seed=seed), folder, metadata=metadata or {"step": seed})
    return folder


@pytest.mark.parametrize("metadata", [[1, 2, 3], float("nan"), "just text"], ids=["list", "nan", "string"])
def test_model_tab_shows_a_model_whose_metadata_is_not_an_object(qtbot, gui, tiny_model_path, tiny_flow, metadata):
    from explorer.panels.model import display_name

    gui.open_model(str(tiny_model_path))
    _settle(qtbot, gui)
    assert gui.model_panel.header.text() == display_name(gui.session.flow, str(tiny_model_path))
    odd = randomize_copy(tiny_flow)
    odd.metadata = metadata
    gui.hub.set_flow(odd, "/models/odd-metadata.safetensors")  # what nc.load gives for such a file
    _settle(qtbot, gui)
    panel = gui.model_panel
    assert panel.header.text() == "odd-metadata"  # the new model's card, not the previous one's
    assert "not an object; ignored" in panel.fields["training"].text()
    assert panel.fields["bpd"].text().startswith("not recorded")  # not the previous model's 6.500
    assert panel.fields["levels"].text() == "L = 3"


def randomize_copy(flow):
    import copy

    return copy.deepcopy(flow)


def test_switching_to_a_model_with_other_levels_shows_no_spurious_error(qtbot, gui, tmp_path):
    four = _saved_model(tmp_path, "four-levels", 1, scales=4)
    two = _saved_model(tmp_path, "two-levels", 2, scales=2)
    gui.open_model(str(four))
    _settle(qtbot, gui)
    gui.encode_panel.add_paths(_gui_images(tmp_path / "imgs", [(30, 24), (20, 28)]))
    _settle(qtbot, gui)
    gui.hub.fill_anchors_from_images()
    gui.infoloss_panel.set_levels({1})
    _settle(qtbot, gui)
    assert len(gui.session.images[0].latents) == 4 and not _errors(gui)
    for target, levels in ((two, 2), (four, 4), (two, 2)):
        gui.open_model(str(target))
        _settle(qtbot, gui)
        assert not [e for e in _errors(gui) if "latent levels" in e], _errors(gui)
        s = gui.session
        assert len(s.images) == 2 and all(len(e.latents) == levels for e in s.images)
        assert all(len(a.latents) == levels for a in s.anchors if a is not None)
    img = gui.infoloss_panel.result.image()
    assert img is not None and img.shape == (16, 16, 3)  # rendered again for the new model


def test_session_with_wrong_types_keeps_the_current_work(qtbot, gui, tiny_model_path, tmp_path):
    gui.open_model(str(tiny_model_path))
    _settle(qtbot, gui)
    gui.encode_panel.add_paths(_gui_images(tmp_path / "imgs", [(30, 24)]))
    _settle(qtbot, gui)
    before = [e.name for e in gui.session.images]
    bad = _session_zip(tmp_path / "bad.nvps", {"anchors": [5], "angles": [1, 2, 3]})
    gui.hub.open_session(str(bad))
    _settle(qtbot, gui)
    assert [e.name for e in gui.session.images] == before
    assert any("bad.nvps: damaged session file" in e for e in _errors(gui))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_session_naming_a_fifo_model_restores_without_blocking(qtbot, gui, tiny_model_path, tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    gui.open_model(str(tiny_model_path))
    _settle(qtbot, gui)
    p = _session_zip(tmp_path / "f.nvps", {"model": str(fifo), "images": [{"name": "a", "file": "a.png"}]},
                     {"a.png": _png()})
    gui.hub.open_session(str(p))
    _settle(qtbot, gui, timeout=30000)  # a worker blocked on the FIFO would never settle
    assert [e.name for e in gui.session.images] == ["a"]
    assert gui.session.model_path == str(tiny_model_path)
    assert any("not a regular file" in t for _, t in gui.message_bar.history)


def test_huge_and_tiny_images_are_captioned_with_their_true_size(qtbot, gui, tiny_model_path, tmp_path):
    gui.open_model(str(tiny_model_path))
    _settle(qtbot, gui)
    big = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4500), (200, 120, 40)).save(big, quality=85)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4), (10, 20, 200)).save(tiny)
    gui.encode_panel.add_paths([str(big), str(tiny)])
    _settle(qtbot, gui)
    s = gui.session
    assert [e.true_size for e in s.images] == [(6000, 4500), (4, 4)]
    assert max(s.images[0].original.shape[:2]) == 512
    items = [gui.encode_panel.list.item(i).text() for i in range(gui.encode_panel.list.count())]
    assert "6000×4500" in items[0] and "4×4" in items[1]
    gui.hub.set_current(0)
    assert gui.encode_panel.original.info.text() == "16×16, centre crop of 6000×4500 (kept at 512×384)"
    gui.hub.set_current(1)
    assert gui.encode_panel.original.info.text() == \
        "16×16, centre crop of 4×4; enlarged 4× (smaller than the model's 16×16 input)"


_STARTUP_PROBE = """
import json, os, sys
from pathlib import Path
import nvp_core as nc
nc.DEFAULT_MODEL = Path(sys.argv[1])
from explorer import app as app_mod, main_window
seen = {}
class Recording(main_window.MainWindow):
    def shutdown(self):  # what the window held when main() finished
        seen.update(images=[e.name for e in self.session.images], model=self.session.model_path,
                    shown=self.message_bar.text())
        super().shutdown()
main_window.MainWindow = Recording  # app.main() imports it from there when it runs
code = app_mod.main(sys.argv[2:])
print("RESULT " + json.dumps({"code": code, **seen}), flush=True)
os._exit(0)
"""


def test_mistyped_model_path_falls_back_and_keeps_the_images(tmp_path, tiny_model_path):
    """`python main.py /nonexistent/model.safetensors --images a.png b.png`, through main() in its own
    process (main() runs its own event loop and would leave this one's application closing)."""
    import json

    imgs = _gui_images(tmp_path / "imgs", [(30, 24), (20, 28)])
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NVP_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _STARTUP_PROBE, str(tiny_model_path), "/nonexistent/model.safetensors",
         "--images", *imgs, "--tab", "encode", "--screenshot", str(tmp_path / "shot.png"),
         "--settings", str(tmp_path / "s.ini"), "--timeout", "200"],
        capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = json.loads(lines[-1][len("RESULT "):])
    assert seen["code"] == 0
    assert seen["images"] == ["pic0.png", "pic1.png"]
    assert seen["model"] == str(tiny_model_path)
    assert "/nonexistent/model.safetensors" in seen["shown"] and "default model" in seen["shown"]
