"""`nvp extrapolate`: samples many times the training size (the flow is convolutional)."""
from __future__ import annotations

import argparse
import time

from .. import limits
from . import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extrapolate", help="sample canvases SCALE× the training size",
        description="Draw latents with the shapes of an image SCALE times the model's training size and "
                    "decode them: a texture of the data set. Canvases are decoded one at a time.",
    )
    options.add_model_arg(p)
    p.add_argument("--scale", type=options.int_range(1, limits.MAX_SIDE // 4), default=10,
                   help="times the training size (default: 10)")
    p.add_argument("--out", required=True, help="picture to write (several canvases go side by side)")
    p.add_argument("--n", type=options.int_range(1, 1000), default=1, help="number of canvases (default: 1)")
    options.add_temperature_arg(p, 0.7)
    options.add_seed_arg(p)
    options.add_run_args(p, run, batch=None)


def run(args: argparse.Namespace) -> int:
    from ..figures import extrapolation_images, upscale
    from ..images import grid
    from . import common

    flow = common.load_model(args.model, args.device)
    side = flow.config.image_size * args.scale
    if side > limits.MAX_SIDE:
        raise limits.LimitError(f"--scale {args.scale} makes {side}×{side} canvases, above the limit of "
                                f"{limits.MAX_SIDE} pixels a side")
    z = args.zoom
    common.check_picture(side * z + (4 if args.n > 1 else 0), args.n * (side * z + 2) + 2,
                         f"{args.n} canvas(es) of {side}×{side}" + (f" at zoom {z}" if z > 1 else ""))
    common.check_outputs([args.out], flow)
    common.plan_batch(flow, side, side, 1)  # one canvas at a time: refuses one that cannot fit
    start = time.perf_counter()
    with common.progress_bar(args.n, f"decoding {side}×{side}") as update:
        images = extrapolation_images(flow, args.scale, args.n, args.temperature, args.seed, update)
    seconds = time.perf_counter() - start
    images = upscale(images, args.zoom)
    picture = images[0] if args.n == 1 else grid(images, cols=args.n)
    out = common.write_image(picture, args.out)
    print(f"wrote {out}: {args.n} canvas(es) of {side}×{side} ({args.scale}× {flow.config.image_size}) "
          f"in {seconds:.1f} s")
    return 0
