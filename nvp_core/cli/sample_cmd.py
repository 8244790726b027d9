"""`nvp sample`: a grid of samples at a chosen size, temperature and seed."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .. import limits
from . import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample", help="draw samples into a grid PNG",
        description="Draw samples from a model at any size that is a multiple of 2^(L-1) and save them "
                    "as one grid picture (and optionally one file each). The same seed gives the same "
                    "pictures on CPU and CUDA.",
    )
    options.add_model_arg(p)
    p.add_argument("--n", type=options.int_range(1, limits.MAX_SAMPLES), default=64,
                   help="number of samples (default: 64)")
    options.add_size_args(p, "samples")
    options.add_temperature_arg(p, 0.7, "standard deviation of the latents; lower is smoother")
    options.add_seed_arg(p)
    p.add_argument("--out", default="samples.png", help="grid picture to write (default: samples.png)")
    p.add_argument("--cols", type=options.int_range(1, limits.MAX_SAMPLES), default=None,
                   help="samples per row (default: square-ish)")
    p.add_argument("--each", metavar="DIR", default=None,
                   help="also write every sample as DIR/sample_000.png, …")
    options.add_run_args(p, run)


def run(args: argparse.Namespace) -> int:
    from ..figures import upscale
    from ..pipeline import sample_images
    from ..images import grid
    from . import common

    flow, h, w = common.load_sized_model(args.model, args)
    cols = min(args.cols or math.ceil(math.sqrt(args.n)), args.n)
    rows = math.ceil(args.n / cols)
    z = args.zoom
    common.check_grid(rows, cols, h, w, z, f"a grid of {args.n} samples")
    # latents (float32) + images + the zoomed copy + the grid, all held at once
    common.check_memory(args.n * h * w * flow.config.channels * (4 + 1 + 2 * z * z), f"{args.n} samples of {h}×{w}",
                        str(flow.device))
    each = [Path(args.each) / f"sample_{i:0{max(3, len(str(args.n - 1)))}d}.png" for i in range(args.n)] \
        if args.each else []
    common.check_outputs([args.out, *each], flow)
    batch = common.plan_batch(flow, h, w, args.batch_size)
    with common.progress_bar(args.n, "sampling") as update:
        images = sample_images(flow, args.n, h, w, args.temperature, args.seed, batch, update)
    images = upscale(images, args.zoom)
    out = common.write_image(grid(images, cols=cols), args.out)
    print(f"wrote {out}: {args.n} samples of {h}×{w} at temperature {args.temperature:g}, seed {args.seed}")
    if args.each:
        paths = common.write_frames(images, args.each, prefix="sample")
        print(f"wrote {len(paths)} files to {args.each}")
    return 0
