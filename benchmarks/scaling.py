"""Scaling: training images/s with 1 vs 2 DistributedDataParallel processes.

The same global batch is split over the ranks (strong scaling), the way
``torchrun --nproc_per_node=2 … nvp train`` splits it; gloo on the CPU (one
thread per rank, so two ranks use the two cores one thread each), NCCL on GPUs.
After the timed steps every rank hashes its parameters: identical hashes show
the gradients were really all-reduced. The flow is wrapped in DDP directly here
so the benchmark times the distributed step, not data loading or checkpoints.

    python -m benchmarks.scaling [--device cuda] [--quick] [--json out.json]
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import queue as queue_mod
import socket
import sys
import time
from typing import Sequence

import torch

import nvp_core as nc

from .common import Report, Table, arg_parser, config_label, default_config, describe_load, emit, quick_config, setup


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_json: str, size: int, global_batch: int, steps: int,
            threads: int, device_name: str, out: "mp.Queue") -> None:
    """One rank: a few timed DDP steps, then (rank, step times, parameter hash)."""
    try:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        torch.set_num_threads(threads)
        device = torch.device(device_name)
        if device.type == "cuda":
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        if world > 1:
            os.environ["MASTER_ADDR"] = "127.0.0.1"
            os.environ["MASTER_PORT"] = str(port)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
        torch.manual_seed(0)  # identical initial weights on every rank (DDP also broadcasts them)
        model = nc.RealNVP(nc.FlowConfig.from_json(cfg_json)).to(device).train()
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        local = global_batch // world
        gen = torch.Generator().manual_seed(1)
        x_all = torch.rand(global_batch, model.config.channels, size, size, generator=gen) * 0.98 + 0.01
        x = x_all[rank * local:(rank + 1) * local].to(device)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            zs, ldj = net(x)
            loss = -(nc.RealNVP.prior_log_prob(zs) + ldj).mean() / x[0].numel()
            loss.backward()
            opt.step()

        step()  # warm-up (and DDP's first-iteration bucket setup)
        times = []
        for _ in range(steps):
            if world > 1:
                dist.barrier()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        h = hashlib.sha256()
        for p in model.parameters():
            h.update(p.detach().float().cpu().numpy().tobytes())
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        out.put((rank, times, h.hexdigest()[:16], None))
    except Exception as exc:  # report, never hang the parent
        out.put((rank, [], "", f"{type(exc).__name__}: {exc}"))


def run_world(world: int, threads: int, cfg: nc.FlowConfig, size: int, global_batch: int, steps: int,
              device: torch.device, timeout_s: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, cfg.to_json(), size, global_batch, steps, threads,
                                               str(device), q), daemon=True) for r in range(world)]
    for p in procs:
        p.start()
    results, deadline = {}, time.monotonic() + timeout_s
    try:
        while len(results) < world:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"error": f"did not finish in {timeout_s:.0f} s"}
            try:
                rank, times, digest, err = q.get(timeout=min(left, 1.0))
            except queue_mod.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    return {"error": "a rank died: " + ", ".join(f"exit {p.exitcode}" for p in procs)}
                continue
            if err:
                return {"error": f"rank {rank}: {err}"}
            results[rank] = (times, digest)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    # A step is as slow as its slowest rank.
    per_step = [max(results[r][0][i] for r in results) for i in range(steps)]
    per_step.sort()
    median = per_step[len(per_step) // 2]
    digests = {results[r][1] for r in results}
    return {"median_s": median, "images_per_s": global_batch / median, "in_sync": len(digests) == 1,
            "steps": steps}


def run(device: torch.device, quick: bool = False, timeout_s: float = 600.0, model: str | None = None) -> Report:
    if quick:
        cfg, source, size, batch, steps = quick_config(16), "tiny (--quick)", 16, 4, 2
    else:
        cfg, source = default_config(model)
        size, steps = cfg.image_size, 4
        batch = 64 if device.type == "cuda" else 32
    cores = os.cpu_count() or 1
    plans = [(1, 1)]
    if device.type == "cpu":
        if cores >= 2 and not quick:
            plans.append((1, 2))
        plans.append((2, 1))
    elif torch.cuda.device_count() >= 2:
        plans.append((2, 1))
    table = Table(f"Data-parallel training on {device}: {config_label(cfg)} at {size}×{size}, global batch {batch}",
                  ["processes", "threads each", "images/s", "ms/step (median)", "speed-up vs 1×1", "ranks in sync"])
    rows, base = [], None
    for world, threads in plans:
        r = run_world(world, threads, cfg, size, batch, steps, device, 120.0 if quick else timeout_s)
        rows.append({"world": world, "threads": threads, **r})
        if "error" in r:
            table.add(world, threads, r["error"], float("nan"), float("nan"), "–")
            continue
        base = base or r["images_per_s"]
        table.add(world, threads, r["images_per_s"], 1e3 * r["median_s"], r["images_per_s"] / base,
                  ("yes" if r["in_sync"] else "NO") if world > 1 else "–")
    notes = [f"model: {source}", f"{steps} timed steps after one warm-up; a step's time is its slowest rank's."]
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        notes.append("Only one GPU: the 2-process row needs two.")
    notes.append(describe_load())
    return Report("scaling", [table], notes, data={"rows": rows})


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--model", help="use this model's architecture instead of the shipped default")
    args = p.parse_args(argv)
    device = setup(args)
    emit([run(device, args.quick, model=args.model)], device, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
