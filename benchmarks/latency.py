"""Interactive latency: what one slider move or one dropped image costs.

Each operation is the explorer's render path at batch 1 under inference mode:
encode an image, decode a latent, a manifold frame (``nc.sphere`` of eight
anchors + decode + uint8), an information-loss frame (``nc.resample`` + decode +
uint8) and the per-level latent pictures (``nc.level_images``). Median and p95
milliseconds, and the frames per second a slider drag can reach (1000/median).

    python -m benchmarks.latency [MODEL] [--device cuda] [--quick] [--json out.json]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Sequence

import torch

import nvp_core as nc

from .common import (
    Report, Table, arg_parser, config_label, default_config, describe_load, measure, quick_config, run_one,
)


def open_model(path: str | None, device: torch.device, quick: bool) -> tuple[nc.RealNVP, str]:
    """The given model, else the shipped one, else an untrained model of the default
    architecture: the cost of a frame depends on the architecture, not the weights."""
    if quick and path is None:
        torch.manual_seed(0)
        return nc.RealNVP(quick_config(16)).to(device).eval(), "tiny untrained model (--quick)"
    candidate = Path(path) if path else Path(nc.default_model_path())
    if path or (candidate / "model.safetensors").exists():
        return nc.load(candidate, device=device), str(candidate)
    cfg, source = default_config()
    torch.manual_seed(0)
    return nc.RealNVP(cfg).to(device).eval(), f"untrained {source}"


def operations(flow: nc.RealNVP, size: int, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(size)
    images = torch.rand(8, flow.config.channels, size, size, generator=gen).to(device)
    anchors = [flow.encode(images[i:i + 1]) for i in range(8)]
    zs = anchors[0]
    state = {"i": 0}

    def angles() -> tuple[float, float, float]:
        state["i"] += 1
        a = 2 * math.pi * state["i"] / 97.0
        return a, 0.5 * a, 0.25 * a

    def manifold() -> None:
        nc.to_numpy_image(flow.decode(nc.sphere(anchors, *angles())))

    def infoloss() -> None:
        state["i"] += 1
        nc.to_numpy_image(flow.decode(nc.resample(zs, [1, 2], 1.0, generator=state["i"])))

    x = images[:1]
    return {
        "encode one image": lambda: flow.encode(x),
        "decode one latent": lambda: flow.decode(zs),
        "manifold frame (sphere + decode)": manifold,
        "information-loss frame (resample + decode)": infoloss,
        "latent pictures (level_images)": lambda: nc.level_images(zs),
    }


def run(device: torch.device, quick: bool = False, model: str | None = None) -> Report:
    flow, source = open_model(model, device, quick)
    sizes = [16, 32] if quick else [32, 64]
    sizes = [s for s in sizes if s % flow.multiple == 0]
    threads_now = torch.get_num_threads()
    thread_counts = [threads_now] if device.type == "cuda" or threads_now == 1 else [1, threads_now]
    table = Table(f"Batch-1 render path on {device}: {config_label(flow.config)}",
                  ["size", "operation", "threads", "median ms", "p95 ms", "fps (1000/median)"])
    data = []
    repeats, budget = (3, 0.5) if quick else (40, 6.0)
    try:
        with torch.inference_mode():
            for size in sizes:
                ops = operations(flow, size, device)
                for name, fn in ops.items():
                    for threads in thread_counts:
                        torch.set_num_threads(threads)
                        t = measure(fn, device, repeats=repeats, warmup=2, budget_s=budget, min_repeats=3)
                        table.add(f"{size}×{size}", name, threads, 1e3 * t.median, 1e3 * t.p95, 1.0 / t.median)
                        data.append({"size": size, "op": name, "threads": threads, "median_ms": 1e3 * t.median,
                                     "p95_ms": 1e3 * t.p95, "n": t.n})
    finally:
        torch.set_num_threads(threads_now)
    notes = [f"model: {source}", describe_load()]
    if len(thread_counts) > 1:
        notes.append("The explorer renders with cores − 1 torch threads (explorer/app.py tune_runtime); on a busy "
                     "machine one thread is often faster, because a multi-threaded op waits for its slowest thread.")
    return Report("latency", [table], notes, data={"rows": data, "model": source})


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model file or folder (default: the shipped model)")
    args = p.parse_args(argv)
    return run_one(args, lambda d: run(d, args.quick, args.model))


if __name__ == "__main__":
    sys.exit(main())
