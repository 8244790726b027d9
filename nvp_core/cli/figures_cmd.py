"""`nvp figures`: regenerate every docs figure of the seed page from one model, in one command.

Deterministic for a seed: the same model and seed write the same files.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import DataError, NVPError
from . import options

if TYPE_CHECKING:
    import numpy as np

TEMPERATURES = (0.5, 0.7, 1.0)
SCALES = (1, 2, 10)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "figures", help="regenerate all docs figures (samples, sizes, information loss, manifold)",
        description="Write the seed page's figures for a model into OUT: samples at temperatures "
                    "0.5/0.7/1.0; samples at 1×, 2× and 10× the training size; the information-loss grid "
                    "on held-out test images of the model's data set (or --images); the manifold 8×8 grid over "
                    "(φ, φ') at φ''=0 and a GIF sweeping φ''.",
    )
    options.add_model_arg(p)
    p.add_argument("--out", default="docs/figures", help="folder to write into (default: docs/figures)")
    p.add_argument("--images", metavar="DIR", default=None,
                   help="take the information-loss and manifold images from this folder instead of the "
                        "test split of the model's data set")
    options.add_seed_arg(p, "seed of every random draw (default: 0)")
    p.add_argument("--rows", type=options.int_range(1, 256), default=6,
                   help="images in the information-loss grid (default: 6)")
    p.add_argument("--n", type=options.int_range(1, 4096), default=32,
                   help="samples per temperature grid (default: 32, 8 per row)")
    p.add_argument("--frames", type=options.int_range(1, 1000), default=24,
                   help="frames of the φ'' sweep GIF, 64 decodes each (default: 24)")
    p.add_argument("--grid-span", choices=("full", "quarter"), default="full",
                   help="manifold angles: full = 8 steps over [0, 2π); quarter = [0, π/2] with z1, z3, z5, z7 "
                        "in the corners (default: full)")
    p.add_argument("--zoom", type=options.zoom, default=None,
                   help="nearest-neighbour enlargement of training-size tiles (default: tiles of ~128 px)")
    options.add_batch_arg(p)
    options.add_device_arg(p)
    p.set_defaults(func=options.guarded(run))


def _test_images(flow, size: int, count: int) -> tuple[np.ndarray, str]:
    """``count`` held-out test images of the data set the model was trained on, evenly spread
    over the split — the photo-crops split is ordered photo by photo, so the picks land on
    different photos."""
    from ..data import HeldOut

    held = HeldOut.of(getattr(flow, "metadata", None))
    try:
        test = held.load(size)
    except (DataError, ImportError) as exc:
        raise DataError(f"the {held.data} test split is unavailable ({exc}); pass --images DIR") from None
    idx = [min(len(test) - 1, int((i + 0.5) * len(test) / count)) for i in range(count)]
    return test[idx].permute(0, 2, 3, 1).contiguous().numpy(), f"{held.data} test split"


def _folder_images(folder: str, size: int, count: int) -> np.ndarray:
    from ..images import find_images, load_images
    from . import common

    paths = find_images(folder)
    if not paths:
        raise DataError(f"{folder}: no images found")
    images, ok, skipped = load_images(paths, size, size)
    for msg in skipped:
        common.warn(f"skipped {msg}")
    if len(ok) < count:
        raise DataError(f"{folder}: {len(ok)} readable image(s), the figures need at least {count} "
                        f"(8 for the manifold)")
    return images[:count]


def _write(path: Path, image: np.ndarray, what: str) -> None:
    from . import common

    common.write_image(image, path)
    print(f"  {path.name:<24} {image.shape[1]}×{image.shape[0]}  {what}")


FILES = (*(f"samples_temp{t:g}.png" for t in TEMPERATURES), *(f"samples_{s}x.png" for s in SCALES),
         "infoloss.png", "manifold_grid.png", "manifold_sweep.gif")


def run(args: argparse.Namespace) -> int:
    from . import common

    flow = common.load_model(args.model, args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    inputs = common.expand_image_paths([args.images]) if args.images else []
    common.check_outputs([out / f for f in FILES], flow, inputs)
    s = flow.config.image_size
    zoom = args.zoom or max(1, round(128 / s))
    size_zoom = max(1, round(64 / s))  # 1×/2×/10× and the manifold share one pixel scale
    print(f"figures of {common.describe(flow)} → {out}/ (seed {args.seed})")

    # Images first: a missing data set fails before minutes of decoding.
    count = max(args.rows, 8)
    if args.images:
        images, source = _folder_images(args.images, s, count), args.images
    else:
        images, source = _test_images(flow, s, count)

    _sample_figures(flow, args, out, zoom, size_zoom)
    _infoloss_figure(flow, args, out, images, source, zoom)
    _manifold_figures(flow, args, out, images, source, size_zoom)
    return 0


def _sample_figures(flow, args: argparse.Namespace, out: Path, zoom: int, size_zoom: int) -> None:
    """Sample grids at each temperature, and samples at 1×, 2×, … the training size."""
    from ..figures import extrapolation_images, upscale
    from ..images import grid
    from ..pipeline import sample_images
    from . import common

    s = flow.config.image_size
    cols = min(8, args.n)
    for t in TEMPERATURES:
        with common.progress_bar(args.n, f"samples T={t:g}") as update:
            x = sample_images(flow, args.n, s, s, t, args.seed, args.batch_size, update)
        _write(out / f"samples_temp{t:g}.png", grid(upscale(x, zoom), cols=cols),
               f"{args.n} samples at temperature {t:g}")

    for k, scale in enumerate(SCALES):
        n = max(1, 8 // scale)  # 8, 4 and 1 canvases: about the same width at one pixel scale
        with common.progress_bar(n, f"samples {scale}×") as update:
            x = extrapolation_images(flow, scale, n, 0.7, args.seed + k, update)
        _write(out / f"samples_{scale}x.png", grid(upscale(x, size_zoom), cols=n),
               f"{n} sample(s) at {scale}× ({scale * s}×{scale * s}), T=0.7")


def _infoloss_figure(flow, args: argparse.Namespace, out: Path, images: np.ndarray, source: str,
                     zoom: int) -> None:
    """Rows of images with one column per set of latent levels replaced by noise."""
    from ..figures import infoloss_grid, infoloss_images, infoloss_labels
    from ..pipeline import infoloss_level_sets
    from . import common

    rows = images[:args.rows]
    levels = flow.config.scales
    columns = len(infoloss_level_sets(levels))
    with common.progress_bar(len(rows) * columns, "information loss") as update:
        cols_arr = infoloss_images(flow, rows, 1.0, args.seed, "noise", False, args.batch_size, update)
    _write(out / "infoloss.png", infoloss_grid(cols_arr, zoom=zoom, labels=infoloss_labels(levels)),
           f"{len(rows)} {source} images; columns {', '.join(infoloss_labels(levels))}")


def _manifold_figures(flow, args: argparse.Namespace, out: Path, images: np.ndarray, source: str,
                      size_zoom: int) -> None:
    """An 8×8 grid over (φ, φ') through eight of the images, and a sweep of φ'' as a GIF."""
    from ..angles import TWO_PI
    from ..figures import anchors_from_images, manifold_grid, manifold_sweep
    from . import common

    bs = args.batch_size
    anchors = anchors_from_images(flow, _pick_anchors(images))
    span, endpoint = (TWO_PI, False) if args.grid_span == "full" else (math.pi / 2, True)
    with common.progress_bar(64, "manifold grid") as update:
        g = manifold_grid(flow, anchors, 0.0, 8, span, endpoint, size_zoom, 2, bs, update)
    _write(out / "manifold_grid.png", g, f"8×8 over (φ, φ') at φ''=0 through 8 {source} images")
    with common.progress_bar(64 * args.frames, "manifold sweep") as update:
        # Half the grid's zoom: noisy tiles compress badly in GIF (~1.5 MB for 24 frames of 265 px).
        frames = manifold_sweep(flow, anchors, args.frames, 8, span, endpoint, max(1, size_zoom // 2), 2, bs,
                                update)
    path = out / "manifold_sweep.gif"
    common.write_animation(frames, path, fps=8)
    print(f"  {path.name:<24} {frames.shape[2]}×{frames.shape[1]}  {args.frames} frames, φ'' over [0, 2π)")


def _pick_anchors(images: np.ndarray) -> np.ndarray:
    """Eight anchors; with more images, spread the picks so they differ."""
    import numpy as np

    if len(images) < 8:
        raise NVPError(f"the manifold needs 8 images, got {len(images)}")
    idx = np.linspace(0, len(images) - 1, 8).round().astype(int)
    return images[idx]

