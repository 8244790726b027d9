"""explorer.session: the explorer's state and tasks, without Qt."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import nvp_core as nc
from conftest import randomize, tiny_config
from explorer.entries import ImageEntry, check_box, default_box
from explorer.image_files import cap_original, read_images
from explorer.models import find_test_bpd, is_model_path, load_model, model_summary
from explorer.session import Angles, InfoLossSettings, Session, image_anchor, read_session, sample_anchor


def _photo(seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    """A smooth random picture (not noise): a gradient plus a few blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx * 200 + 20, yy * 180 + 30, (xx + yy) * 90 + 40], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1, 3)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.1 + 0.2 * r) ** 2
        img[mask] = rng.uniform(0, 255, 3)
    return img.clip(0, 255).astype(np.uint8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def session(tiny_flow: nc.RealNVP) -> Session:
    s = Session()
    s.set_model(tiny_flow, "tiny")
    return s


def _run(task):
    return task(lambda f: None)


def _encoded(session: Session, n: int = 8) -> list[ImageEntry]:
    entries = _run(session.encode_task([(f"img{i}", _photo(i), None) for i in range(n)]))
    session.add_images(entries)
    return entries


def test_encode_fits_reconstructs_and_scores(session, tiny_flow):
    entries = _encoded(session, 3)
    for e in entries:
        assert e.pixels.shape == (16, 16, 3) and e.pixels.dtype == np.uint8
        assert e.original.shape == (40, 56, 3)
        np.testing.assert_array_equal(e.recon, e.pixels)  # uint8 round trip is exact
        want = float(tiny_flow.bits_per_dim(nc.from_numpy_image(e.pixels), noise=False)[0])
        assert e.bpd == pytest.approx(want, rel=1e-5)
        assert [lv.shape for lv in e.levels] == [(3, 8, 8), (3, 4, 4), (3, 4, 4)]
        assert e.z_norm > 0
    # distinct images, distinct latents
    assert not torch.equal(entries[0].latents[-1], entries[1].latents[-1])


def test_read_images_skips_bad_files_with_a_message(tmp_path):
    Image.fromarray(_photo(1)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "notes.txt").write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    items, errors = read_images([tmp_path / "good.png", tmp_path / "broken.png", tmp_path / "notes.txt", empty])
    assert [item[0] for item in items] == ["good.png"]
    assert len(errors) == 3
    assert any("broken.png" in e for e in errors)
    assert any("notes.txt" in e for e in errors)
    assert any("no images" in e for e in errors)
    # a folder is searched
    items, errors = read_images([tmp_path])
    assert [item[0] for item in items] == ["good.png"] and any("broken.png" in e for e in errors)


def test_crop_boxes_are_checked():
    img = np.zeros((40, 56, 3), np.uint8)
    assert check_box((-5, 2, 100, 30), img) == (0, 2, 56, 30)
    with pytest.raises(nc.DataError, match="does not overlap"):
        check_box((60, 0, 80, 10), img)
    assert default_box(img, 16, 16) == (8, 0, 48, 40)


def test_large_originals_are_capped():
    big = np.zeros((2000, 1000, 3), np.uint8)
    assert cap_original(big).shape == (512, 256, 3)


def test_manifold_reaches_each_anchor(session):
    entries = _encoded(session)
    for i, e in enumerate(entries):
        session.set_anchor(i, image_anchor(e))
    for angles, k in (((0, 0, 0), 0), ((0, 0, 90), 1), ((0, 90, 0), 2), ((90, 0, 0), 4), ((90, 90, 90), 7)):
        img = _run(session.manifold_task(Angles(*angles)))
        diff = np.abs(img.astype(int) - entries[k].recon.astype(int)).max()
        assert diff <= 1, (angles, k, diff)
    mid = _run(session.manifold_task(Angles(30, 20, 10)))
    assert all(np.abs(mid.astype(int) - e.recon.astype(int)).max() > 2 for e in entries)


def test_manifold_needs_all_anchors(session):
    entries = _encoded(session, 2)
    session.set_anchor(0, image_anchor(entries[0]))
    with pytest.raises(nc.DataError, match="z2, z3"):
        session.manifold_task()


def test_grid_and_sweep(session):
    entries = _encoded(session)
    for i, e in enumerate(entries):
        session.set_anchor(i, image_anchor(e))
    grid = _run(session.manifold_grid_task(n=3))
    assert grid.shape == (3 * 16 + 4, 3 * 16 + 4, 3)
    top_left = grid[1:17, 1:17]
    assert np.abs(top_left.astype(int) - entries[0].recon.astype(int)).max() <= 1
    bottom_right = grid[-17:-1, -17:-1]  # φ = φ′ = 90°, φ″ = 0: z7
    assert np.abs(bottom_right.astype(int) - entries[6].recon.astype(int)).max() <= 1
    frames = _run(session.manifold_sweep_task("phi2", 4))
    assert len(frames) == 4
    assert np.abs(frames[1].astype(int) - entries[1].recon.astype(int)).max() <= 1  # φ″ = 90° → z2
    np.testing.assert_allclose(nc.sweep_angles("phi", 4, Angles(10, 0, 0).radians()),
                               np.radians([(10.0, 0, 0), (100.0, 0, 0), (190.0, 0, 0), (280.0, 0, 0)]))


def test_information_loss(session):
    e = _encoded(session, 1)[0]
    il = session.infoloss
    assert np.array_equal(_run(session.infoloss_task()), e.recon)  # nothing resampled
    il.levels = {1}
    noisy = _run(session.infoloss_task())
    assert not np.array_equal(noisy, e.recon)
    assert np.array_equal(noisy, _run(session.infoloss_task()))  # same seed, same picture
    il.seed = 1
    assert not np.array_equal(noisy, _run(session.infoloss_task()))
    il.mode = "zero"
    zero = _run(session.infoloss_task())
    assert not np.array_equal(zero, noisy)
    assert not np.array_equal(zero, e.recon)
    il.mode, il.levels = "noise", {1, 2, 3}
    assert not np.array_equal(_run(session.infoloss_task()), noisy)


def test_infoloss_strip_matches_single_frames(session):
    e = _encoded(session, 1)[0]
    il = session.infoloss
    il.seed, il.temperature = 3, 0.9
    strip = _run(session.infoloss_strip_task())
    assert len(strip) == session.levels
    assert np.array_equal(strip[0], e.recon)
    for k in range(1, session.levels):
        il.levels = set(range(1, k + 1))
        assert np.abs(strip[k].astype(int) - _run(session.infoloss_task()).astype(int)).max() <= 1


def test_sample_anchor_is_reproducible(tiny_flow):
    a = sample_anchor(tiny_flow, seed=5, temperature=0.7)
    b = sample_anchor(tiny_flow, seed=5, temperature=0.7)
    c = sample_anchor(tiny_flow, seed=6, temperature=0.7)
    assert np.array_equal(a.thumbnail, b.thumbnail) and not np.array_equal(a.thumbnail, c.thumbnail)
    assert a.kind == "sample" and a.seed == 5


def test_session_round_trip(session, tmp_path):
    entries = _encoded(session, 3)
    session.set_anchor(0, image_anchor(entries[1]))
    session.set_anchor(3, sample_anchor(session.flow, seed=9, temperature=0.6))
    session.angles = Angles(12.5, 200.0, 33.0)
    session.infoloss = InfoLossSettings(levels={1, 3}, temperature=0.5, seed=42, mode="zero")
    session.canvas.width, session.canvas.seed = 64, 7
    session.current = 2
    index, cropped = _run(session.recrop_task(0, (5, 3, 35, 33)))
    session.images[index] = cropped
    entries[0] = cropped
    assert cropped.box == (5, 3, 35, 33) and not np.array_equal(cropped.pixels, session.images[1].pixels)
    path = session.save(tmp_path / "s")
    assert path.name == "s.nvps"
    with zipfile.ZipFile(path) as zf:
        doc = json.loads(zf.read("session.json"))
        assert sorted(n for n in zf.namelist() if n.endswith(".png")) == [
            "anchors/1.png", "images/000.png", "images/001.png", "images/002.png"]
    assert doc["infoloss"]["levels"] == [1, 3]

    doc = read_session(path)
    fresh = Session()
    fresh.set_model(session.flow, "tiny")
    fresh.apply_document(doc)
    entries2, anchors2, current = _run(fresh.restore_task(doc))
    assert fresh.angles == Angles(12.5, 200.0, 33.0)
    assert fresh.infoloss == session.infoloss
    assert fresh.canvas.width == 64 and fresh.canvas.seed == 7
    assert current == 2 and [e.name for e in entries2] == ["img0", "img1", "img2"]
    assert entries2[0].box == (5, 3, 35, 33) and entries2[1].box is None
    for a, b in zip(entries, entries2):
        assert np.array_equal(a.pixels, b.pixels)
        assert all(torch.allclose(x, y, atol=1e-4) for x, y in zip(a.latents, b.latents))
    assert anchors2[0].kind == "image" and np.array_equal(anchors2[0].thumbnail, entries[1].recon)
    assert anchors2[3].kind == "sample" and np.array_equal(anchors2[3].thumbnail, session.anchors[3].thumbnail)
    assert [a is None for a in anchors2] == [False, True, True, False, True, True, True, True]


@pytest.mark.parametrize("content, match", [
    (b"not a zip", "not a zip"),
    (None, "no session.json"),
])
def test_bad_session_files(tmp_path, content, match):
    p = tmp_path / "bad.nvps"
    if content is None:
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("other.txt", "x")
    else:
        p.write_bytes(content)
    with pytest.raises(nc.DataError, match=match):
        read_session(p)
    with pytest.raises(nc.DataError, match="no session file at .*missing.nvps"):
        read_session(tmp_path / "missing.nvps")


def test_model_change_reencodes_at_the_new_size(session):
    _encoded(session, 2)
    session.set_anchor(0, image_anchor(session.images[0]))
    session.set_anchor(1, sample_anchor(session.flow, 3, 1.0))
    torch.manual_seed(1)
    bigger = randomize(nc.RealNVP(tiny_config(image_size=32)), seed=1)
    gen = session.model_generation
    session.set_model(bigger, "bigger")
    assert session.model_generation == gen + 1
    entries, anchors = _run(session.reencode_task())
    assert entries[0].pixels.shape == (32, 32, 3)
    assert anchors[0].thumbnail.shape == (32, 32, 3) and anchors[1].latents[0].shape[-1] == 16


def test_model_loading_and_summary(tmp_path, tiny_flow):
    nc.save(tiny_flow, tmp_path / "m", metadata={"test_bpd": 5.25, "step": 10})
    flow = load_model(tmp_path / "m", device="cpu")
    info = model_summary(flow)
    assert info["test_bpd"] == 5.25 and info["levels"] == 3 and info["parameters"] > 0
    assert info["file_bytes"] > 0 and info["device"] == "cpu"
    assert load_model(tmp_path / "m" / "config.json", device="cpu").config == flow.config
    assert is_model_path(tmp_path / "m") and not is_model_path(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(nc.ModelFileError, match="pickle"):
        load_model(bad, device="cpu")
    assert find_test_bpd({"eval": {"bpd": 3.5}}) == 3.5
    assert find_test_bpd({"train_bpd": 3.0}) is None
