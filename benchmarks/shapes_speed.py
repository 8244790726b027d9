"""How fast the built-in ``shapes`` scenes render: must outpace a training step.

    python -m benchmarks.shapes_speed [--repeats 7] [--batch 64]

A training step of the default model takes ~0.5–0.8 s on the shared CPU box, so a
64-image batch must render well under that. On a busy machine wall time is
inflated; CPU seconds per batch (process time) are the load-independent figure.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from benchmarks.common import describe_load, measure
from nvp_core import shapes as S


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sizes", default="32,64")
    args = p.parse_args(argv)
    cpu = torch.device("cpu")
    print(f"shapes render speed, {args.batch}-image batches, median of {args.repeats}; {describe_load()}")
    print("| size | supersample | ms / batch (median) | best | CPU ms / batch | images/s (median) | images per CPU s |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        batches = iter(range(10**6))

        def one() -> None:  # a new batch of scenes every call, as in the first epoch
            k = next(batches)
            S.generate_scenes(0, "train", np.arange(k * args.batch, (k + 1) * args.batch), size)

        t = measure(one, cpu, args.repeats)
        print(f"| {size} | {S.default_supersample(size)} | {1e3 * t.median:.0f} | {1e3 * t.best:.0f} | "
              f"{1e3 * t.cpu_median:.0f} | {args.batch / t.median:.0f} | {args.batch / t.cpu_median:.0f} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
