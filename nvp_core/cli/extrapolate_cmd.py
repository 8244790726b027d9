"""`nvp extrapolate`: samples many times the training size (the flow is convolutional)."""
from __future__ import annotations

import argparse
import time

from ..figures import extrapolation_images, upscale
from ..images import grid
from . import common


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extrapolate", help="sample canvases SCALE× the training size",
        description="Draw latents with the shapes of an image SCALE times the model's training size and "
                    "decode them: a texture of the data set. Canvases are decoded one at a time.",
    )
    common.add_model_arg(p)
    p.add_argument("--scale", type=common.positive_int, default=10, help="times the training size (default: 10)")
    p.add_argument("--out", required=True, help="picture to write (several canvases go side by side)")
    p.add_argument("--n", type=common.positive_int, default=1, help="number of canvases (default: 1)")
    p.add_argument("--temperature", type=common.non_negative_float, default=0.7,
                   help="standard deviation of the latents (default: 0.7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    common.add_zoom_arg(p)
    common.add_device_arg(p)
    p.set_defaults(func=common.guarded(run))


def run(args: argparse.Namespace) -> int:
    flow = common.load_model(args.model, args.device)
    side = flow.config.image_size * args.scale
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
