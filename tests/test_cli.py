"""The inference subcommands of `nvp`, run through the real dispatcher on a tiny model."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

import nvp_core as nc
from nvp_core import pipeline as P
from nvp_core.cli import main
from nvp_core.images import fit_image, open_image

SIZE = 16  # tiny_config(): 16×16, L = 3



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from conftest import randomize, tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    nc.save(randomize(nc.RealNVP(tiny_config())), path)
    return path


@pytest.fixture(scope="module")
def flow(model_dir):
    return nc.load(model_dir)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Nine readable images of assorted sizes and modes, and one corrupt file."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(8):
        h, w = 20 + 3 * i, 30 - 2 * i
        yy, xx = np.mgrid[0:h, 0:w]
        base = (np.sin(xx / (2 + i)) + np.cos(yy / (3 + i)) + 2) * 60
        arr = np.clip(base[..., None] + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        if i == 1:
            img = img.convert("L")
        if i == 2:
            img = img.convert("RGBA")
        img.save(d / f"img{i}.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(d / "extra.jpg")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return d


def images(image_dir, n=8):
    return [str(image_dir / f"img{i}.png") for i in range(n)]


def fitted(paths):
    return np.stack([fit_image(open_image(p), SIZE, SIZE) for p in paths])


def nvp(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tiles(grid: np.ndarray, rows: int, cols: int, side: int, pad: int = 2) -> np.ndarray:
    """Cut a grid made by nvp_core.images.grid back into (rows, cols, side, side, 3)."""
    assert grid.shape == (rows * side + (rows + 1) * pad, cols * side + (cols + 1) * pad, 3)
    return np.stack([np.stack([grid[pad + r * (side + pad):pad + r * (side + pad) + side,
                                    pad + c * (side + pad):pad + c * (side + pad) + side]
                               for c in range(cols)]) for r in range(rows)])


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ---------------------------------------------------------------- help and model errors
@pytest.mark.parametrize("command", ["sample", "encode", "infoloss", "sphere", "extrapolate", "figures"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: nvp {command}" in capsys.readouterr().out


def test_missing_default_model_is_a_clear_error(tmp_path, capsys, monkeypatch, image_dir):
    monkeypatch.setattr(nc, "DEFAULT_MODEL", tmp_path / "nowhere")
    code, _, err = nvp(capsys, "sample", "--out", tmp_path / "s.png")
    assert code == 2
    assert "default model is missing" in err and "nowhere" in err and len(err.strip().splitlines()) == 1
    code, _, err = nvp(capsys, "encode", image_dir / "img0.png")  # images only: the default model
    assert code == 2 and "default model is missing" in err
    assert not (tmp_path / "s.png").exists()


def test_default_model_is_used_when_none_is_given(tmp_path, capsys, monkeypatch, model_dir):
    monkeypatch.setattr(nc, "DEFAULT_MODEL", model_dir)
    code, out, _ = nvp(capsys, "sample", "--n", 2, "--out", tmp_path / "s.png")
    assert code == 0 and read(tmp_path / "s.png").shape == (SIZE + 4, 2 * SIZE + 6, 3)


def test_bad_model_paths(tmp_path, capsys):
    code, _, err = nvp(capsys, "sample", tmp_path / "missing", "--out", tmp_path / "s.png")
    assert code == 2 and "no model at" in err
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x80\x04 a pickle, not weights")
    code, _, err = nvp(capsys, "sample", bogus, "--out", tmp_path / "s.png")
    assert code == 2 and "pickle" in err


def test_bad_device_and_out_of_memory_are_one_line(tmp_path, capsys, model_dir, monkeypatch):
    code, _, err = nvp(capsys, "sample", model_dir, "--device", "gpu", "--out", tmp_path / "s.png")
    assert code == 2 and "unknown device 'gpu'" in err

    def exhausted(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: not enough memory")

    monkeypatch.setattr("nvp_core.figures.extrapolation_images", exhausted)
    code, _, err = nvp(capsys, "extrapolate", model_dir, "--scale", 50, "--out", tmp_path / "x.png")
    assert code == 2 and "out of memory" in err and "--scale" in err and len(err.strip().splitlines()) == 1


def test_a_training_run_folder_opens_its_model(tmp_path, capsys, model_dir, flow):
    nc.save(flow, tmp_path / "run" / "model")
    code, _, err = nvp(capsys, "sample", tmp_path / "run", "--n", 1, "--out", tmp_path / "s.png")
    assert code == 0, err


# ---------------------------------------------------------------- sample
def test_sample_grid_files_and_determinism(tmp_path, capsys, model_dir, flow):
    code, out, _ = nvp(capsys, "sample", model_dir, "--n", 6, "--seed", 3, "--out", tmp_path / "a.png",
                       "--each", tmp_path / "each")
    assert code == 0 and "6 samples" in out
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    grid = read(tmp_path / "a.png")
    t = tiles(grid, 2, 3, SIZE)
    expected = P.sample_images(flow, 6, temperature=0.7, seed=3)
    assert np.array_equal(t.reshape(6, SIZE, SIZE, 3), expected)
    each = sorted((tmp_path / "each").glob("sample_*.png"))
    assert len(each) == 6 and np.array_equal(read(each[5]), expected[5])

    nvp(capsys, "sample", model_dir, "--n", 6, "--seed", 3, "--out", tmp_path / "b.png")
    nvp(capsys, "sample", model_dir, "--n", 6, "--seed", 4, "--out", tmp_path / "c.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()


def test_sample_other_sizes_cols_and_zoom(tmp_path, capsys, model_dir):
    code, _, _ = nvp(capsys, "sample", model_dir, "--n", 3, "--height", 8, "--width", 24, "--cols", 3,
                     "--zoom", 2, "--out", tmp_path / "s.png")
    assert code == 0 and read(tmp_path / "s.png").shape == (16 + 4, 3 * 48 + 8, 3)
    code, _, err = nvp(capsys, "sample", model_dir, "--size", 18, "--out", tmp_path / "t.png")
    assert code == 2 and "multiple" in err and not (tmp_path / "t.png").exists()


def test_unwritable_output_is_one_clear_line(tmp_path, capsys, model_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 1, "--out", blocker / "s.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "file.txt" in err
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 1, "--out", tmp_path)  # a folder
    assert code == 2 and "folder" in err


# ---------------------------------------------------------------- encode
def test_encode_table_skips_corrupt_images(capsys, model_dir, image_dir, flow):
    paths = [image_dir / "img0.png", image_dir / "broken.png", image_dir / "img1.png"]
    code, out, err = nvp(capsys, "encode", model_dir, *paths)
    assert code == 0
    assert "broken.png" in err and "skipped" in err
    bpd = flow.bits_per_dim(nc.from_numpy_image(fitted(paths[::2]))).numpy()
    rows = [line.split() for line in out.splitlines() if line.startswith(str(image_dir))]
    assert [r[0] for r in rows] == [str(paths[0]), str(paths[2])]
    assert [float(r[1]) for r in rows] == pytest.approx(bpd.tolist(), abs=1e-4)


def test_encode_json_noise_and_latents(tmp_path, capsys, model_dir, image_dir, flow):
    paths = images(image_dir, 3)
    code, out, _ = nvp(capsys, "encode", model_dir, *paths, "--noise", 4, "--json",
                       "--latents", tmp_path / "z.npz")
    assert code == 0
    doc = json.loads(out)
    assert [r["image"] for r in doc["images"]] == paths
    for r in doc["images"]:
        assert math.isfinite(r["bits_per_dim"]) and math.isfinite(r["bits_per_dim_noise"])
        assert r["bits_per_dim_noise"] != r["bits_per_dim"]
    with np.load(tmp_path / "z.npz") as z:
        assert list(z["names"]) == paths
        shapes = flow.latent_shapes(SIZE, SIZE)
        assert [z[f"z{k}"].shape for k in (1, 2, 3)] == [(3, *s) for s in shapes]
        decoded = P.decode_images(flow, [torch.from_numpy(z[f"z{k}"]) for k in (1, 2, 3)])
    assert np.abs(decoded.astype(int) - fitted(paths)).max() <= 1


def test_encode_a_folder_and_nothing_readable(capsys, model_dir, image_dir, tmp_path):
    code, out, err = nvp(capsys, "encode", model_dir, image_dir)
    assert code == 0 and "extra.jpg" in out and "img7.png" in out and "broken.png" in err
    (tmp_path / "junk.png").write_bytes(b"junk")
    code, _, err = nvp(capsys, "encode", model_dir, tmp_path / "junk.png", tmp_path / "absent.png")
    assert code == 2 and "none of the given images could be read" in err
    assert "junk.png" in err and "absent.png" in err


# ---------------------------------------------------------------- infoloss
def test_infoloss_grid(tmp_path, capsys, model_dir, image_dir, flow):
    paths = images(image_dir, 3)
    code, out, _ = nvp(capsys, "infoloss", model_dir, *paths, "--out", tmp_path / "a.png")
    assert code == 0 and "3 rows × 3 columns" in out
    t = tiles(read(tmp_path / "a.png"), 3, 3, SIZE)
    x = fitted(paths)
    recon = P.decode_images(flow, P.encode_images(flow, x))
    assert np.array_equal(t[:, 0], recon)
    assert np.abs(t[:, 0].astype(int) - x).max() <= 1
    assert np.abs(t[:, 2].astype(int) - recon).mean() > 1.0  # resampling shows

    # Same seed → same figure; another seed changes only the resampled columns.
    nvp(capsys, "infoloss", model_dir, *paths, "--out", tmp_path / "b.png")
    nvp(capsys, "infoloss", model_dir, *paths, "--out", tmp_path / "c.png", "--seed", 1)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    c = tiles(read(tmp_path / "c.png"), 3, 3, SIZE)
    assert np.array_equal(c[:, 0], t[:, 0]) and not np.array_equal(c[:, 1], t[:, 1])


def test_infoloss_zero_mode_all_levels_labels(tmp_path, capsys, model_dir, image_dir):
    paths = images(image_dir, 2) + [str(image_dir / "broken.png")]
    for seed in (0, 7):
        code, _, err = nvp(capsys, "infoloss", model_dir, *paths, "--mode", "zero", "--seed", seed,
                           "--all-levels", "--out", tmp_path / f"z{seed}.png")
        assert code == 0 and "broken.png" in err
    assert (tmp_path / "z0.png").read_bytes() == (tmp_path / "z7.png").read_bytes()
    t = tiles(read(tmp_path / "z0.png"), 2, 4, SIZE)
    assert np.array_equal(t[0, 3], t[1, 3])  # every level zeroed: the same image for every row
    code, _, _ = nvp(capsys, "infoloss", model_dir, *paths[:2], "--labels", "--zoom", 3,
                     "--out", tmp_path / "l.png")
    plain_h = 2 * 48 + 3 * 2
    labelled = read(tmp_path / "l.png")
    assert code == 0 and labelled.shape[1] == 3 * 48 + 4 * 2 and labelled.shape[0] > plain_h


# ---------------------------------------------------------------- sphere
def test_sphere_frames_animations_and_grid(tmp_path, capsys, model_dir, image_dir, flow):
    out_dir = tmp_path / "sphere"
    code, out, _ = nvp(capsys, "sphere", model_dir, *images(image_dir), "--frames", 6, "--out", out_dir,
                       "--grid", "--zoom", 2, "--batch-size", 4)
    assert code == 0, out
    frames = sorted(out_dir.glob("frame_*.png"))
    assert [f.name for f in frames] == [f"frame_{i:03d}.png" for i in range(6)]
    for name in ("sweep.gif", "sweep.webp"):
        with Image.open(out_dir / name) as anim:
            assert anim.n_frames == 6 and anim.size == (32, 32)
    # Frame 0 sits at (0, 0, 0): the first image; a quarter turn of φ'' reaches the second.
    recon = P.decode_images(flow, P.encode_images(flow, fitted(images(image_dir))))
    f0 = read(frames[0])[::2, ::2]
    assert np.abs(f0.astype(int) - recon[0]).max() <= 1
    grid = read(out_dir / "grid.png")
    t = tiles(grid, 8, 8, 2 * SIZE)
    assert np.array_equal(t[0, 0], read(frames[0]))


def test_sphere_quarter_turn_of_phi2_reaches_z2(tmp_path, capsys, model_dir, image_dir, flow):
    code, _, _ = nvp(capsys, "sphere", model_dir, *images(image_dir), "--frames", 4, "--out", tmp_path)
    assert code == 0
    recon = P.decode_images(flow, P.encode_images(flow, fitted(images(image_dir))))
    assert np.abs(read(tmp_path / "frame_001.png").astype(int) - recon[1]).max() <= 1
    code, _, _ = nvp(capsys, "sphere", model_dir, *images(image_dir), "--frames", 4, "--angle", "phi",
                     "--out", tmp_path / "phi")
    assert np.abs(read(tmp_path / "phi" / "frame_001.png").astype(int) - recon[4]).max() <= 1


def test_sphere_needs_exactly_eight_readable_images(tmp_path, capsys, model_dir, image_dir):
    code, _, err = nvp(capsys, "sphere", model_dir, *images(image_dir, 7), "--out", tmp_path / "s")
    assert code == 2 and "exactly 8 images" in err and "got 7" in err
    eight = images(image_dir, 7) + [str(image_dir / "broken.png")]
    code, _, err = nvp(capsys, "sphere", model_dir, *eight, "--out", tmp_path / "s")
    assert code == 2 and "broken.png" in err and "7 of 8" in err
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- extrapolate
def test_extrapolate_sizes(tmp_path, capsys, model_dir):
    code, out, _ = nvp(capsys, "extrapolate", model_dir, "--scale", 4, "--out", tmp_path / "big.png")
    assert code == 0 and "64×64" in out and read(tmp_path / "big.png").shape == (64, 64, 3)
    code, _, _ = nvp(capsys, "extrapolate", model_dir, "--scale", 2, "--n", 3, "--out", tmp_path / "row.png")
    assert code == 0 and read(tmp_path / "row.png").shape == (32 + 4, 3 * 32 + 8, 3)


# ---------------------------------------------------------------- figures
def test_figures_writes_every_docs_figure(tmp_path, capsys, model_dir, image_dir):
    out_dir = tmp_path / "figs"
    args = ("figures", model_dir, "--out", out_dir, "--images", image_dir, "--n", 4, "--frames", 2,
            "--rows", 3)
    code, out, err = nvp(capsys, *args)
    assert code == 0, err
    assert "broken.png" in err  # the corrupt file in --images is reported, not fatal
    z = 8  # 16 px tiles → 128 px
    for t in ("0.5", "0.7", "1"):
        assert read(out_dir / f"samples_temp{t}.png").shape == (SIZE * z + 4, 4 * SIZE * z + 10, 3)
    s = 4  # the size figures and the manifold show 16 px tiles at 64 px
    assert read(out_dir / "samples_1x.png").shape == (SIZE * s + 4, 8 * SIZE * s + 18, 3)
    assert read(out_dir / "samples_2x.png").shape == (2 * SIZE * s + 4, 4 * 2 * SIZE * s + 10, 3)
    assert read(out_dir / "samples_10x.png").shape == (10 * SIZE * s + 4, 10 * SIZE * s + 4, 3)
    info = read(out_dir / "infoloss.png")
    assert info.shape[1] == 3 * SIZE * z + 8 and info.shape[0] > 3 * SIZE * z + 8  # + titles
    assert read(out_dir / "manifold_grid.png").shape == (8 * SIZE * s + 18, 8 * SIZE * s + 18, 3)
    with Image.open(out_dir / "manifold_sweep.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (8 * SIZE * s // 2 + 18,) * 2
    assert (out_dir / "samples_temp0.5.png").read_bytes() != (out_dir / "samples_temp1.png").read_bytes()

    again = tmp_path / "again"
    code, _, _ = nvp(capsys, "figures", model_dir, "--out", again, "--images", image_dir, "--n", 4,
                     "--frames", 2, "--rows", 3)
    assert code == 0
    for f in out_dir.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name


def test_figures_needs_eight_images(tmp_path, capsys, model_dir, image_dir):
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        (few / f"{i}.png").write_bytes((image_dir / f"img{i}.png").read_bytes())
    code, _, err = nvp(capsys, "figures", model_dir, "--out", tmp_path / "f", "--images", few)
    assert code == 2 and "at least 8" in err
