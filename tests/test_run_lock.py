"""One training per run folder: a live run's folder is refused (CLI and Trainer), a dead
run's lock is taken over with a message, and what a kill -9 mid-write leaves — temp files,
repeated metric rows — is cleaned when the next run starts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nvp_core as nc
from nvp_core.train import TrainConfig, Trainer
from nvp_core.training import LOCK_NAME, RunLock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)).resize((16, 16)).save(root / f"{i}.png")
    return root


def cfg(folder, out, **kw) -> TrainConfig:
    base = dict(data=str(folder), size=8, out=str(out), steps=2, batch_size=4, width=4, blocks=1, max_width=8,
                eval_every=100, eval_images=4, sample_every=100, n_samples=4, checkpoint_every=100,
                warmup_steps=0, num_workers=1)
    base.update(kw)
    return TrainConfig(**base)


def python(code: str, **kw) -> subprocess.Popen:
    """A child Python importing this checkout's nvp_core (not whichever one is installed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_a_live_run_folder_is_refused_and_a_killed_runs_lock_taken_over(folder, tmp_path, capsys):
    from nvp_core.cli import main

    out = tmp_path / "run"
    holder = python(f"""
        import time
        from nvp_core.training import RunLock
        RunLock({str(out)!r}).acquire()
        print("locked", flush=True)
        time.sleep(120)
    """)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(nc.TrainingError, match=rf"in use by another training \(pid {holder.pid} on host"):
            Trainer(cfg(folder, out)).run()
        args = ["train", str(folder), "--out", str(out), "--size", "8", "--steps", "2", "--width", "4",
                "--blocks", "1", "--max-width", "8", "--batch-size", "4", "--eval-images", "4", "--quiet"]
        assert main(args) == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
        assert not (out / "metrics.jsonl").exists() and not (out / "model").exists()  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        holder.stdout.close()
        holder.stderr.close()
    starts = []
    Trainer(cfg(folder, out), lambda ev: starts.append(ev) if ev.kind == "start" else None).run()
    assert f"no longer running (pid {holder.pid}" in starts[0].message
    assert not (out / LOCK_NAME).exists()  # released at the end
    assert nc.load(out / "model").metadata["step"] == 2


def test_resume_into_a_live_run_is_refused(folder, tmp_path):
    out = tmp_path / "run"
    Trainer(cfg(folder, out)).run()
    with RunLock(out):  # the same process counts: one Trainer per folder
        with pytest.raises(nc.TrainingError, match="in use by another training"):
            Trainer(cfg(folder, out, steps=3, resume=True)).run()
    Trainer(cfg(folder, out, steps=3, resume=True)).run()
    test_rows = [r["step"] for r in rows(out) if "test_bpd" in r]
    assert test_rows == [0, 2, 3]


def test_a_lock_left_by_a_dead_pid_is_taken_over(folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": os.uname().nodename, "started": "earlier"}))
    starts = []
    Trainer(cfg(folder, out), lambda ev: starts.append(ev) if ev.kind == "start" else None).run()
    assert f"pid {gone.pid}" in starts[0].message and "no longer running" in starts[0].message
    assert starts[0].info["notes"]


def test_the_lock_is_released_when_a_run_fails(folder, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(nc.DataError):
        Trainer(cfg(tmp_path / "no-such-folder", out)).run()
    assert not (out / LOCK_NAME).exists()
    with RunLock(out) as lock:
        assert lock.held and lock.taken_over is None


KILL_DURING_CHECKPOINT = """
    import os, signal, sys, tempfile
    import torch
    torch.set_num_threads(1)
    import nvp_core.checkpoint as ckpt
    from nvp_core.train import TrainConfig, Trainer

    def dying_write(path, data):  # kill -9 halfway through the temp file of the first checkpoint
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.write(fd, data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    ckpt.atomic_write_bytes = dying_write
    Trainer(TrainConfig.from_json(sys.argv[-1])).run()
"""


def test_kill_during_a_checkpoint_write_leaves_nothing_behind_on_restart(folder, tmp_path):
    out = tmp_path / "run"
    c = cfg(folder, out, steps=3, checkpoint_every=1)
    for _ in range(2):  # two killed attempts, as a user retrying would make
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_DURING_CHECKPOINT), c.to_json()],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # The second attempt cleaned up after the first: one temp file (not two), one step-0 row (not two).
    assert len(list(out.glob(".checkpoint.safetensors.*.tmp"))) == 1
    assert not (out / nc.train.ckpt.CHECKPOINT_NAME).exists()
    assert [r["step"] for r in rows(out) if "test_bpd" in r] == [0]
    starts = []
    Trainer(c, lambda ev: starts.append(ev) if ev.kind == "start" else None).run()
    assert list(out.glob(".*.tmp")) == []
    assert [r["step"] for r in rows(out) if "test_bpd" in r] == [0, 3]
    assert "removed 1 unfinished temporary file(s)" in starts[0].message
    assert "took over the lock" in starts[0].message


def test_resume_drops_repeated_and_later_metric_rows(folder, tmp_path):
    out = tmp_path / "run"
    Trainer(cfg(folder, out, steps=2, checkpoint_every=1, eval_every=1)).run()
    kept = (out / "metrics.jsonl").read_text()
    # what a run killed after its step-2 checkpoint leaves: a repeated row and rows past the checkpoint
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 2, "test_bpd": 99.0}) + "\n")
        fh.write(json.dumps({"step": 3, "test_bpd": 98.0}) + "\n")
        fh.write(json.dumps({"step": 3, "train_bpd": 97.0}) + "\n")
    (out / "model" / ".model.safetensors.x1.tmp").write_bytes(b"half")
    Trainer(cfg(folder, out, steps=3, checkpoint_every=1, eval_every=1, resume=True)).run()
    r = rows(out)
    test = [(x["step"], x["test_bpd"]) for x in r if "test_bpd" in x]
    assert [s for s, _ in test] == [0, 1, 2, 3] and 98.0 not in dict(test).values()
    assert dict(test)[2] == 99.0  # of a repeat, the newest row stays
    assert all(x.get("train_bpd") != 97.0 for x in r)
    assert len(kept.splitlines()) >= 3 and not list((out / "model").glob(".*.tmp"))


def test_an_unwritable_run_folder_is_one_clear_error(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(nc.TrainingError, match="cannot write the run folder"):
        Trainer(cfg(folder, blocker / "run")).run()
