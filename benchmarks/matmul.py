"""The machine's own dense matmul speed: the practical ceiling for a conv net.

A Real NVP step is almost all convolutions, which the CPU libraries lower to
matrix multiplies; a large square fp32 (and bf16) matmul is therefore the best
this machine can do, and the other tables quote their GFLOP/s against it.

    python -m benchmarks.matmul [--device cuda] [--quick] [--json out.json]
"""
from __future__ import annotations

import sys
from typing import Sequence

import torch

from .common import Report, Table, arg_parser, describe_load, emit, measure, setup


def matmul_gflops(n: int, dtype: torch.dtype, device: torch.device, repeats: int, budget_s: float) -> tuple[float, float]:
    """(median, best) GFLOP/s of an n×n by n×n matmul."""
    gen = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    t = measure(lambda: a @ b, device, repeats=repeats, warmup=2, budget_s=budget_s, min_repeats=3)
    work = 2.0 * n**3 / 1e9
    return work / t.median, work / t.best


def run(device: torch.device, quick: bool = False) -> Report:
    sizes = [128, 256] if quick else ([1024, 2048, 4096, 8192] if device.type == "cuda" else [256, 512, 1024, 2048])
    dtypes = [torch.float32, torch.bfloat16]
    threads_now = torch.get_num_threads()
    thread_counts = [threads_now] if device.type == "cuda" or threads_now == 1 else [1, threads_now]
    table = Table(f"Dense square matmul on {device}", ["threads", "n", "dtype", "GFLOP/s median", "GFLOP/s best"])
    limit: dict[str, float] = {}
    per_thread: dict[str, dict[str, float]] = {}
    try:
        with torch.inference_mode():
            for threads in thread_counts:
                torch.set_num_threads(threads)
                for dtype in dtypes:
                    name = str(dtype).replace("torch.", "")
                    for n in sizes:
                        med, best = matmul_gflops(n, dtype, device, repeats=3 if quick else 20,
                                                  budget_s=0.2 if quick else 3.0)
                        table.add(threads, n, name, med, best)
                        slot = per_thread.setdefault(str(threads), {})
                        slot[name] = max(slot.get(name, 0.0), best)
                        if threads == threads_now:
                            limit[name] = max(limit.get(name, 0.0), best)
    finally:
        torch.set_num_threads(threads_now)
    notes = [
        f"Practical limit quoted by the other tables: the fastest call at {threads_now} thread(s) (what the "
        "machine does when it gets its cores; medians on a busy machine are lower), "
        f"{limit['float32']:.0f} GFLOP/s fp32 and {limit['bfloat16']:.0f} GFLOP/s bf16.",
        "Median vs best shows the machine's contention: on a busy machine a multi-threaded call waits for "
        "its slowest thread, so small multi-threaded matmuls suffer most.",
        describe_load(),
    ]
    return Report("matmul", [table], notes, data={"limit_gflops": limit, "per_threads": per_thread})


def main(argv: Sequence[str] | None = None) -> int:
    args = arg_parser(__doc__.splitlines()[0]).parse_args(argv)
    device = setup(args)
    emit([run(device, args.quick)], device, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
