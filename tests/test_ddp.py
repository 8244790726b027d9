"""DDP on CPU: 2 torchrun processes with gloo against one process over the same global batch.

The flow normalises with batch statistics (BatchNormFlow between couplings and
BatchNorm2d inside the s/t ResNets). Under DDP each rank normalises its own shard,
which is the standard DDP semantics; a single process taking the whole global
batch at once would normalise over all of it and is *not* the same computation.
The single-process run that is exactly equivalent takes the same global batch as
two accumulation micro-batches (``accumulate=2``): same shards, same per-shard
statistics, gradients averaged. That is the reference here, and the comparison
is on parameters (running statistics are per rank by design; rank 0's are kept).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import nvp_core as nc
from nvp_core.train import TrainConfig, Trainer

WORKER = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from safetensors.torch import save_file
    from nvp_core.train import TrainConfig, Trainer

    cfg = TrainConfig.from_json(open(sys.argv[1]).read())
    trainer = Trainer(cfg)
    result = trainer.run()
    rank = int(os.environ["RANK"])
    params = {n: p.detach().contiguous() for n, p in trainer.model.named_parameters()}
    save_file(params, os.path.join(cfg.out, f"rank{rank}.safetensors"))
    print("rank", rank, "world", os.environ["WORLD_SIZE"], "step", result["step"])
""")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)).resize((16, 16)).save(root / f"{i}.png")
    common = dict(data=str(root), size=8, steps=3, batch_size=4, width=4, blocks=1, max_width=8,
                  eval_every=100, eval_images=4, sample_every=100, n_samples=4, checkpoint_every=100,
                  warmup_steps=0, device="cpu", num_workers=1)
    ddp_cfg = TrainConfig(out=str(tmp_path / "ddp"), **common)
    (tmp_path / "cfg.json").write_text(ddp_cfg.to_json())
    (tmp_path / "worker.py").write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    # The workers run from tmp_path: make them import this checkout's nvp_core, not whichever
    # one happens to be pip-installed (editable installs point at another checkout).
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(tmp_path / "worker.py"), str(tmp_path / "cfg.json")],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "world 2 step 3" in proc.stdout

    r0 = load_file(str(tmp_path / "ddp" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "ddp" / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:  # same averaged gradients on both ranks → bit-identical parameters
        assert torch.equal(r0[k], r1[k]), k

    # Only rank 0 wrote the run's files.
    model = nc.load(tmp_path / "ddp" / "model")
    assert model.metadata["step"] == 3 and "2×" in model.metadata["hardware"]

    ref = Trainer(TrainConfig(out=str(tmp_path / "single"), accumulate=2, **common))
    ref.run()
    ref_params = dict(ref.model.named_parameters())
    init = dict(nc.RealNVP(ref.model.config).named_parameters())
    moved = max(float((ref_params[k].detach() - init[k].detach()).abs().max()) for k in r0)
    assert moved > 1e-3  # the comparison below is not between two untrained models
    for k in r0:
        torch.testing.assert_close(r0[k], ref_params[k].detach(), rtol=1e-4, atol=2e-5, msg=k)

    # Rank 1's half matters: one process on rank 0's shard alone ends elsewhere.
    half = Trainer(TrainConfig(out=str(tmp_path / "half"), **common))
    half.run()
    half_params = dict(half.model.named_parameters())
    assert max(float((half_params[k].detach() - r0[k]).abs().max()) for k in r0) > 1e-4
