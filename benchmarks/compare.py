"""Before → after: the same measurement on two revisions of the code, interleaved.

Each revision is exported (``git archive``) to a temporary folder, or taken as is
(``--after .``: the working tree). Every round runs one child process per side,
alternating which goes first, so a load spike on the shared machine hits both
sides alike; each child runs with one torch thread and times the **CPU time of
its calling thread** (``time.thread_time``) over several repeats after a warm-up.
The table reports the **minimum** over all repeats of all rounds — the least
disturbed run — and the median beside it.

    python -m benchmarks.compare --before 587f1c8 [--after .] [--tasks decode32,score256]
                                 [--rounds 3] [--repeats 5] [--json out.json]

Tasks (each builds the model from an explicit FlowConfig, so both sides run the
same architecture whatever their defaults): decode32/64, encode32, score256
(``bits_per_dim`` of 256 images), canvas320 (``sample`` of one 320×320 image),
train_step (the Trainer's ``TrainStep`` at batch 64 on the default architecture;
needs ``nvp_core.training``, so revisions from the training split on), and
trainer_step / trainer_step_ema (per-step CPU time inside ``Trainer.run`` on a tiny
model and a generated image folder — the whole loop, events included; any revision).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from .common import ROOT, Report, Table, arg_parser, describe_load, emit, last_json_line

DEFAULT_ARCH = dict(width=16, blocks=2, max_width=64)  # the shipped default model's architecture
TASKS = ("decode32", "decode64", "encode32", "score256", "canvas320", "train_step", "trainer_step",
         "trainer_step_ema")

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import nvp_core as nc

task, arch, repeats, data = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def timed(fn, repeats):
    fn()  # warm-up (caches, allocator)
    out = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        out.append(time.thread_time() - t0)
    return out


def flow(size):
    cfg = nc.FlowConfig(scales=nc.FlowConfig.default_scales(size), image_size=size, **arch)
    torch.manual_seed(0)
    return nc.RealNVP(cfg).eval()


def trainer_steps(ema):
    from nvp_core.train import TrainConfig, Trainer
    stamps = {}
    def on(ev):
        if ev.kind == "progress" and ev.loss is not None:
            stamps[ev.step] = time.thread_time()
    n = repeats + 12
    cfg = TrainConfig(data=data, out=sys.argv[5], size=16, steps=n, batch_size=16, width=4, blocks=1, max_width=8,
                      eval_every=10**6, eval_images=4, sample_every=10**6, n_samples=4, checkpoint_every=10**6,
                      warmup_steps=0, num_workers=1, ema_decay=0.999 if ema else 0.0)
    tr = Trainer(cfg, on)
    tr.progress_interval_s = 0.0
    tr.run()
    steps = sorted(stamps)
    return [stamps[b] - stamps[a] for a, b in zip(steps, steps[1:]) if a >= 2]


def inference(fn):
    # Time under inference mode; the model itself is built outside it (inference-mode
    # parameters have no version counters, which turns the ResNet kernel cache off).
    def run():
        with torch.inference_mode():
            fn()
    return run


if task.startswith("decode"):
    size = int(task[6:])
    m = flow(size)
    z = m.sample_latents(1, size, size, generator=0)
    times = timed(inference(lambda: m.decode(z)), repeats)
elif task == "encode32":
    m = flow(32)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.98 + 0.01
    times = timed(inference(lambda: m.encode(x)), repeats)
elif task == "score256":
    m = flow(32)
    x8 = torch.randint(0, 256, (256, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    times = timed(lambda: m.bits_per_dim(x8), repeats)
elif task == "canvas320":
    m = flow(32)
    times = timed(lambda: m.sample(1, 320, 320, 0.7, generator=0), repeats)
if task == "train_step":
    from nvp_core.training import TrainConfig, TrainStep, make_optimizer
    m = flow(32).train()
    step = TrainStep(m, make_optimizer(m, TrainConfig()), grad_clip=100.0)
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.98 + 0.01
    times = timed(lambda: step([x], 1, 1e-4, 0), repeats)
elif task.startswith("trainer_step"):
    times = trainer_steps(task.endswith("_ema"))
print(json.dumps({"times": times}))
"""


def export(rev: str, into: Path) -> Path:
    """The source tree of ``rev`` ('.' is the working tree itself)."""
    if rev == ".":
        return ROOT
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def make_images(folder: Path, n: int = 32) -> None:
    """A small image folder for the trainer tasks (same on both sides)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)).resize((24, 24)).save(folder / f"{i}.png")


def run_child(tree: Path, task: str, repeats: int, data: Path, out: Path, timeout_s: float) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = [sys.executable, "-c", CHILD, task, json.dumps(DEFAULT_ARCH), str(repeats), str(data), str(out)]
    proc = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout_s)
    result = last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"{task} in {tree}: " + ((proc.stderr.strip().splitlines() or ["no output"])[-1]))
    return result["times"]


def compare(before: str, after: str, tasks: Sequence[str], rounds: int, repeats: int,
            timeout_s: float = 600.0) -> Report:
    table = Table(f"{before} → {after}: thread CPU time per call, 1 thread, min (median) over {rounds} rounds × "
                  f"{repeats} repeats, sides alternating", ["task", "before", "after", "speed-up"])
    data: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        trees = {"before": export(before, tmp_path / "before"), "after": export(after, tmp_path / "after")}
        make_images(tmp_path / "images")
        for task in tasks:
            times: dict[str, list[float]] = {"before": [], "after": []}
            for r in range(rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for side in order:
                    out = tmp_path / f"run-{task}-{side}-{r}"
                    times[side] += run_child(trees[side], task, repeats, tmp_path / "images", out, timeout_s)
            data[task] = times
            b, a = min(times["before"]), min(times["after"])
            table.add(task, f"{1e3 * b:.2f} ms ({1e3 * statistics.median(times['before']):.2f})",
                      f"{1e3 * a:.2f} ms ({1e3 * statistics.median(times['after']):.2f})", f"×{b / a:.2f}")
    notes = ["CPU time of the calling thread (time.thread_time), so time the OS gave to other processes on a "
             "shared machine does not count; the minimum is the least disturbed call.",
             f"architecture: {DEFAULT_ARCH} (trainer_step*: width 4 × 1 block, max 8, 16×16, batch 16).",
             describe_load()]
    return Report("compare", [table], notes, data={"before": before, "after": after, "times": data})


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git revision of the 'before' code")
    p.add_argument("--after", default=".", help="git revision of the 'after' code ('.': the working tree)")
    p.add_argument("--tasks", default="decode32,encode32,score256,canvas320",
                   help=f"comma-separated, from {', '.join(TASKS)}")
    p.add_argument("--rounds", type=int, default=3, help="child processes per side (alternating)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per child, after one warm-up")
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"error: unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    import torch

    emit([compare(args.before, args.after, tasks, args.rounds, args.repeats)], torch.device("cpu"), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
