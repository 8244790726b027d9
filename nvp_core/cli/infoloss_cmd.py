"""`nvp infoloss`: the seed page's information-loss figure for your own images."""
from __future__ import annotations

import argparse

from . import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "infoloss", usage="%(prog)s [MODEL] IMAGES... --out GRID.png [options]",
        help="grid: reconstruction, then z1, z1..2, … resampled",
        description="Encode each image, then decode it with the finest levels replaced by fresh noise: "
                    "columns are g(z), then z^(1) resampled, z^(1..2), …, z^(1..L-1) (the coarsest level "
                    "is kept unless --all-levels). Rows are the images.",
    )
    options.add_images_arg(p)
    p.add_argument("--out", required=True, help="grid picture to write (PNG)")
    options.add_temperature_arg(p, 1.0, "standard deviation of the replacement noise")
    options.add_seed_arg(p, "noise seed; the same ε in every column (default: 0)")
    p.add_argument("--mode", choices=("noise", "zero"), default="noise",
                   help="replace levels by noise or by zeros, the prior's mode (default: noise)")
    p.add_argument("--all-levels", action="store_true",
                   help="add a last column with every level resampled (a plain sample)")
    p.add_argument("--labels", action="store_true", help="write column titles above the grid")
    options.add_size_args(p)
    options.add_run_args(p, run)


def run(args: argparse.Namespace) -> int:
    from ..figures import infoloss_grid, infoloss_images, infoloss_labels
    from ..pipeline import infoloss_level_sets
    from . import common

    flow, h, w, paths = common.model_and_images(args)
    common.check_outputs([args.out], flow, paths)
    levels = flow.config.scales
    columns = len(infoloss_level_sets(levels, args.all_levels))
    common.check_grid(len(paths), columns, h, w, args.zoom, f"a grid of {len(paths)} rows × {columns} columns")
    batch = common.plan_batch(flow, h, w, args.batch_size)
    images, names = common.read_images(paths, h, w)
    with common.progress_bar(len(images) * columns, "decoding") as update:
        cols = infoloss_images(flow, images, args.temperature, args.seed, args.mode, args.all_levels,
                               batch, update)
    labels = infoloss_labels(levels, args.all_levels) if args.labels else None
    out = common.write_image(infoloss_grid(cols, zoom=args.zoom, labels=labels), args.out)
    print(f"wrote {out}: {len(names)} rows × {columns} columns ({', '.join(infoloss_labels(levels, args.all_levels))})")
    return 0
