"""`nvp sample`: a grid of samples at a chosen size, temperature and seed."""
from __future__ import annotations

import argparse
import math

from ..figures import upscale
from ..pipeline import sample_images
from ..images import grid
from . import common


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample", help="draw samples into a grid PNG",
        description="Draw samples from a model at any size that is a multiple of 2^(L-1) and save them "
                    "as one grid picture (and optionally one file each). The same seed gives the same "
                    "pictures on CPU and CUDA.",
    )
    common.add_model_arg(p)
    p.add_argument("--n", type=common.positive_int, default=64, help="number of samples (default: 64)")
    common.add_size_args(p, "samples")
    p.add_argument("--temperature", type=common.non_negative_float, default=0.7,
                   help="standard deviation of the latents; lower is smoother (default: 0.7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default="samples.png", help="grid picture to write (default: samples.png)")
    p.add_argument("--cols", type=common.positive_int, default=None,
                   help="samples per row (default: square-ish)")
    p.add_argument("--each", metavar="DIR", default=None,
                   help="also write every sample as DIR/sample_000.png, …")
    common.add_zoom_arg(p)
    common.add_batch_arg(p)
    common.add_device_arg(p)
    p.set_defaults(func=common.guarded(run))


def run(args: argparse.Namespace) -> int:
    flow = common.load_model(args.model, args.device)
    h, w = common.resolve_size(args, flow)
    with common.progress_bar(args.n, "sampling") as update:
        images = sample_images(flow, args.n, h, w, args.temperature, args.seed, args.batch_size, update)
    images = upscale(images, args.zoom)
    cols = min(args.cols or math.ceil(math.sqrt(args.n)), args.n)
    out = common.write_image(grid(images, cols=cols), args.out)
    print(f"wrote {out}: {args.n} samples of {h}×{w} at temperature {args.temperature:g}, seed {args.seed}")
    if args.each:
        paths = common.write_frames(images, args.each, prefix="sample")
        print(f"wrote {len(paths)} files to {args.each}")
    return 0
