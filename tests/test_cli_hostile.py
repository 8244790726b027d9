"""`nvp` under hostile arguments (issue 13): outputs that would destroy an input, ranges,
requests too large to fit, non-UTF-8 names, Ctrl-C, and a --help that imports no torch.
Everything through the real dispatcher ``nvp_core.cli.main`` (or the real process)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nvp_core as nc
from nvp_core import limits
from nvp_core.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from conftest import randomize, tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    nc.save(randomize(nc.RealNVP(tiny_config())), path, metadata={"step": 1})
    return path


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / f"p{i}.png")
    return sorted(d.glob("*.png"))


@pytest.fixture(autouse=True)
def keep_sigint_handler():
    """main() ignores SIGINT after an interruption (the process is ending); restore it here."""
    old = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, old)


def nvp(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage + one error line
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    """Exit 2 and exactly one line on stderr, containing ``words``."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ---------------------------------------------------------------- nothing destroyed
@pytest.mark.parametrize("target", ["model.safetensors", "config.json", "metadata.json"])
def test_sample_refuses_to_write_over_the_model(tmp_path, capsys, model_dir, target):
    before = snapshot(model_dir)
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 1, "--out", model_dir / target)
    one_line_error(code, err, "refusing to write", "input")
    assert snapshot(model_dir) == before
    assert nc.load(model_dir) is not None


def test_symlinked_output_to_the_weights_is_refused(tmp_path, capsys, model_dir):
    link = tmp_path / "innocent.png"
    link.symlink_to(model_dir / "model.safetensors")
    before = snapshot(model_dir)
    code, _, err = nvp(capsys, "extrapolate", model_dir, "--scale", 1, "--out", link)
    one_line_error(code, err, "refusing to write", "innocent.png")
    code, _, err = nvp(capsys, "sample", model_dir / "model.safetensors", "--n", 1, "--out", link)
    one_line_error(code, err, "refusing to write")
    assert snapshot(model_dir) == before


def test_infoloss_refuses_to_overwrite_its_input_photo(tmp_path, capsys, model_dir, photos):
    photo = photos[0]
    before = photo.read_bytes()
    code, _, err = nvp(capsys, "infoloss", model_dir, photo, "--out", photo)
    one_line_error(code, err, "refusing to write")
    # the same file reached through another spelling, and a hard link
    code, _, err = nvp(capsys, "infoloss", model_dir, photo, "--out", photo.parent / ".." / "photos" / photo.name)
    one_line_error(code, err, "refusing to write")
    hard = tmp_path / "hard.png"
    os.link(photo, hard)
    code, _, err = nvp(capsys, "infoloss", model_dir, photos[0].parent, "--out", hard)
    one_line_error(code, err, "refusing to write")
    assert photo.read_bytes() == before


def test_encode_latents_over_an_input_is_refused(tmp_path, capsys, model_dir, photos):
    before = photos[1].read_bytes()
    code, _, err = nvp(capsys, "encode", model_dir, *photos[:2], "--latents", photos[1])
    one_line_error(code, err, "refusing to write")
    assert photos[1].read_bytes() == before


def test_sphere_and_figures_refuse_folders_whose_files_are_inputs(tmp_path, capsys, model_dir, photos):
    # sphere writes frame_000.png … into OUT: an input named frame_000.png there would be lost
    d = photos[0].parent
    victim = d / "frame_000.png"
    photos[0].rename(victim)
    eight = [victim, *photos[1:]]
    before = victim.read_bytes()
    code, _, err = nvp(capsys, "sphere", model_dir, *eight, "--frames", 2, "--out", d)
    one_line_error(code, err, "refusing to write", "frame_000.png")
    assert victim.read_bytes() == before
    (d / "infoloss.png").write_bytes(before)
    code, _, err = nvp(capsys, "figures", model_dir, "--images", d, "--out", d, "--n", 1, "--frames", 1)
    one_line_error(code, err, "refusing to write", "infoloss.png")
    assert (d / "infoloss.png").read_bytes() == before


def test_sample_each_into_the_model_folder_cannot_hit_its_files(tmp_path, capsys, model_dir):
    """--each writes sample_000.png…: harmless beside the model, so it is not refused."""
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 1, "--out", tmp_path / "g.png", "--each", tmp_path / "e")
    assert code == 0, err


# ---------------------------------------------------------------- ranges
@pytest.mark.parametrize("seed", [str(2**80), str(10**23), "-1", "1e30", "nan"])
@pytest.mark.parametrize("command", ["sample", "extrapolate"])
def test_seed_out_of_range_is_one_error(tmp_path, capsys, model_dir, seed, command):
    code, _, err = nvp(capsys, command, model_dir, "--seed", seed, "--out", tmp_path / "x.png")
    assert code == 2 and "--seed" in err and "Traceback" not in err
    assert "63-bit" in err or "whole number" in err
    assert not (tmp_path / "x.png").exists()


def test_largest_seed_works(tmp_path, capsys, model_dir):
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 1, "--seed", limits.MAX_SEED, "--out", tmp_path / "x.png")
    assert code == 0, err


@pytest.mark.parametrize("value", ["1e308", "nan", "inf", "-1", "101"])
def test_temperature_range(tmp_path, capsys, model_dir, value):
    code, _, err = nvp(capsys, "sample", model_dir, "--temperature", value, "--out", tmp_path / "x.png")
    assert code == 2 and "--temperature" in err and "[0, 100]" in err


@pytest.mark.parametrize("argv, flag", [
    (["sample", "--size", "1000000000"], "--size"),
    (["sample", "--width", "99999999999999999999"], "--width"),
    (["sample", "--n", "200000"], "--n"),
    (["sample", "--zoom", "100000"], "--zoom"),
    (["sample", "--batch-size", "10000000"], "--batch-size"),
    (["encode", "IMG", "--noise", "1e9"], "--noise"),
    (["encode", "IMG", "--noise", "-3"], "--noise"),
    (["sphere", "IMG", "--out", "o", "--frames", "1e7"], "--frames"),
    (["sphere", "IMG", "--out", "o", "--phi", "nan"], "--phi"),
    (["sphere", "IMG", "--out", "o", "--phi1", "1e300"], "--phi1"),
    (["sphere", "IMG", "--out", "o", "--fps", "0"], "--fps"),
    (["sphere", "IMG", "--out", "o", "--fps", "1e-300"], "--fps"),
    (["extrapolate", "--out", "o.png", "--scale", "1000000"], "--scale"),
    (["figures", "--frames", "10000000"], "--frames"),
    (["train", "photo-crops", "--out", "o", "--seed", str(2**80)], "--seed"),
    (["train", "photo-crops", "--out", "o", "--temperature", "1e308"], "--temperature"),
])
def test_argument_ranges_fail_at_parse_time(tmp_path, capsys, model_dir, photos, argv, flag):
    argv = [str(photos[0]) if a == "IMG" else str(tmp_path / a) if a in ("o", "o.png") else a for a in argv]
    start = time.perf_counter()
    code, _, err = nvp(capsys, *argv)
    assert code == 2 and flag in err and ("must be" in err or "whole number" in err), err
    assert time.perf_counter() - start < 5
    assert not any(tmp_path.glob("o*"))


def test_canvas_too_large_for_memory_names_the_size_not_the_batch(tmp_path, capsys, model_dir, monkeypatch):
    code, _, err = nvp(capsys, "sample", model_dir, "--size", limits.MAX_SIDE, "--n", 1, "--out", tmp_path / "x.png")
    one_line_error(code, err, "megapixels", "limit")  # the picture itself is too large
    assert "batch" not in err
    monkeypatch.setattr(limits, "MAX_OUTPUT_PIXELS", 2**40)  # past the picture check: the memory estimate
    code, _, err = nvp(capsys, "sample", model_dir, "--size", limits.MAX_SIDE, "--n", 1, "--out", tmp_path / "x.png")
    one_line_error(code, err, "65536×65536", "memory")
    assert "batch" not in err
    code, _, err = nvp(capsys, "extrapolate", model_dir, "--scale", 4000, "--out", tmp_path / "x.png")
    one_line_error(code, err, "64000×64000", "memory")
    assert "batch" not in err and not (tmp_path / "x.png").exists()


def test_output_picture_limit(tmp_path, capsys, model_dir, monkeypatch):
    monkeypatch.setattr(limits, "MAX_OUTPUT_PIXELS", 10_000)
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 100, "--out", tmp_path / "x.png")
    one_line_error(code, err, "megapixels", "limit")
    assert not (tmp_path / "x.png").exists()


def test_batch_is_lowered_to_fit_memory_with_the_same_result(tmp_path, capsys, model_dir, monkeypatch):
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 6, "--out", tmp_path / "a.png")
    assert code == 0 and "batch" not in err
    one = limits.activation_bytes(nc.load(model_dir).config, 16, 16, 1)
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": int(2.5 * one / 0.8))
    code, _, err = nvp(capsys, "sample", model_dir, "--n", 6, "--out", tmp_path / "b.png")
    assert code == 0 and "using 2" in err, err
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_hostile_model_file_through_the_cli_is_one_line(tmp_path, capsys):
    bad = tmp_path / "m.safetensors"
    body = b'{"__metadata__": ["not", "a", "table"]}'
    bad.write_bytes(len(body).to_bytes(8, "little") + body)
    code, _, err = nvp(capsys, "sample", bad, "--out", tmp_path / "x.png")
    one_line_error(code, err, "__metadata__")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.safetensors"
        os.mkfifo(fifo)
        code, _, err = nvp(capsys, "sample", fifo, "--out", tmp_path / "x.png")
        one_line_error(code, err, "FIFO")


def test_memory_error_while_loading_blames_the_model_not_the_batch(tmp_path, capsys, model_dir, monkeypatch):
    def exhausted(*a, **k):
        raise MemoryError

    monkeypatch.setattr("nvp_core.cli.common.load", exhausted)
    code, _, err = nvp(capsys, "sample", model_dir, "--out", tmp_path / "x.png")
    one_line_error(code, err, "not enough memory to load the model")
    assert "batch" not in err


# ---------------------------------------------------------------- Ctrl-C
def test_interrupt_is_130_and_later_interrupts_are_ignored(tmp_path, capsys, model_dir, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("nvp_core.pipeline.sample_images", interrupted)
    code, _, err = nvp(capsys, "sample", model_dir, "--out", tmp_path / "x.png")
    assert code == 130 and err.strip() == "nvp sample: interrupted"
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # a second Ctrl-C cannot turn 130 into -2


def _spawn(*argv, env=None):
    return subprocess.Popen([sys.executable, "-m", "nvp_core", *map(str, argv)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_while_torch_loads_exits_130_without_traceback(tmp_path, model_dir, presses):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = _spawn("sample", model_dir, "--n", 3000, "--size", 64, "--out", tmp_path / "x.png", env=env)
    time.sleep(0.3)  # torch takes > 1 s to import: this lands during the imports
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "interrupted" in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_twice_while_working_exits_130(tmp_path, model_dir):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = _spawn("sample", model_dir, "--n", 3000, "--size", 64, "--out", tmp_path / "x.png", env=env)
    deadline = time.time() + 30
    while time.time() < deadline and "torch" not in _loaded(proc.pid):
        time.sleep(0.1)
    time.sleep(1.0)
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err


def _loaded(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        return "torch"  # no /proc: just wait the fixed time


# ---------------------------------------------------------------- printing and help
def test_non_utf8_file_name_on_a_strict_stdout(tmp_path, model_dir, photos):
    if sys.platform == "win32" or os.fsencode("x") != b"x":
        pytest.skip("POSIX byte file names")
    name = os.fsdecode(b"caf\xe9-\xff.png")  # Latin-1 bytes: not UTF-8
    target = tmp_path / name
    target.write_bytes(photos[0].read_bytes())
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "nvp_core", "encode", str(model_dir), str(target)],
                          cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr
    assert b"caf\\udce9-\\udcff.png" in proc.stdout  # escaped, visible, and the table printed


@pytest.mark.parametrize("argv", [["--help"], ["sample", "--help"], ["encode", "--help"], ["--version"]])
def test_help_is_answered_without_importing_torch(argv):
    code = ("import sys\nfrom nvp_core.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('TORCH=%%s' %% ('torch' in sys.modules))\n" % (argv,))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "TORCH=False" in proc.stderr, proc.stderr
    assert "usage: nvp" in proc.stdout or "nvp-explorer" in proc.stdout


def test_top_level_summaries_match_the_subcommands(capsys):
    full = build_parser(None)
    sub = next(a for a in full._actions if a.dest == "command")
    real = {c.dest: c.help for c in sub._choices_actions}
    assert set(real) == set(COMMANDS)
    for name, (_, summary) in COMMANDS.items():  # the same line (a list of data sets may follow for train)
        assert real[name][:40] == summary[:40], name
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (_, summary) in COMMANDS.items():
        assert name in out and summary.split()[0] in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_train_ctrl_c_then_ctrl_c_again_exits_130(tmp_path, photos):
    """First Ctrl-C: stop after the step; a second one: abort. Never -2, never a traceback."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    proc = _spawn("train", photos[0].parent, "--out", run, "--size", 8, "--scales", 2, "--width", 2, "--blocks", 1,
                  "--batch-size", 4, "--steps", 10**6, "--eval-every", 10**6, "--sample-every", 10**6,
                  "--checkpoint-every", 10**6, "--quiet", env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists() and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), (proc.returncode, err)
    assert "Traceback" not in err
