"""`nvp sphere`: walk the sphere through eight encoded images (the seed's manifold)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .. import limits
from ..errors import DataError
from . import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sphere", usage="%(prog)s [MODEL] IMAGE×8 --out DIR [options]",
        help="frames + GIF/WebP sweeping an angle on the sphere through 8 images",
        description="Encode exactly eight images z1..z8 and decode points of "
                    "z = cos φ (cos φ' (z1 cos φ'' + z2 sin φ'') + sin φ' (z3 cos φ'' + z4 sin φ'')) "
                    "+ sin φ (cos φ' (z5 cos φ'' + z6 sin φ'') + sin φ' (z7 cos φ'' + z8 sin φ'')) "
                    "while one angle turns over [0, 2π). Writes numbered PNG frames, sweep.gif and "
                    "sweep.webp into OUT (and grid.png with --grid).",
    )
    options.add_images_arg(p, "[MODEL] IMAGE×8", "exactly 8 images")
    p.add_argument("--out", required=True, help="folder for the frames and animations")
    p.add_argument("--frames", type=options.int_range(1, limits.MAX_FRAMES), default=40,
                   help="frames per turn (default: 40)")
    p.add_argument("--angle", choices=("phi2", "phi1", "phi"), default="phi2",
                   help="the angle that turns: phi = φ, phi1 = φ', phi2 = φ'' (default: phi2)")
    for name, sym in (("phi", "φ"), ("phi1", "φ'"), ("phi2", "φ''")):
        p.add_argument(f"--{name}", type=options.angle, default=0.0, metavar="DEG",
                       help=f"{sym} in degrees where it is held fixed (the turning angle starts here) (default: 0)")
    p.add_argument("--grid", action="store_true",
                   help="also write grid.png: 8×8 over (φ down, φ' across) at φ'' = --phi2")
    p.add_argument("--grid-span", choices=("full", "quarter"), default="full",
                   help="grid angles: full = 8 steps over [0, 2π); quarter = [0, π/2] with z1, z3, z5, z7 "
                        "in the corners (default: full)")
    p.add_argument("--fps", type=options.fps, default=12.0, help="animation speed (default: 12)")
    options.add_size_args(p)
    options.add_run_args(p, run)


def run(args: argparse.Namespace) -> int:
    from ..angles import TWO_PI, manifold_angles, sweep_angles
    from ..figures import anchors_from_images, upscale
    from ..pipeline import sphere_images
    from ..images import grid
    from . import common

    model, image_paths = common.split_model_and_images(args.paths)
    paths = common.expand_image_paths(image_paths)
    if len(paths) != 8:
        raise DataError(f"the sphere needs exactly 8 images (z1..z8), got {len(paths)}")
    flow, h, w = common.load_sized_model(model, args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    digits = max(3, len(str(args.frames - 1)))
    written = [out / f"frame_{i:0{digits}d}.png" for i in range(args.frames)]
    common.check_outputs([*written, out / "sweep.gif", out / "sweep.webp", out / "grid.png"], flow, paths)
    z = args.zoom
    common.check_picture(h * z, w * z, "one frame")
    if args.grid:
        common.check_grid(8, 8, h, w, z, "the 8×8 grid")
    # every frame is held until the animations are written (and once more inside each encoder)
    common.check_memory(3 * args.frames * h * w * z * z * flow.config.channels, f"{args.frames} frames of "
                        f"{h * z}×{w * z}", str(flow.device))
    batch = common.plan_batch(flow, h, w, args.batch_size)
    images, names = common.read_images(paths, h, w)
    if len(names) != 8:
        raise DataError(f"the sphere needs exactly 8 readable images, only {len(names)} of 8 could be read")
    anchors = anchors_from_images(flow, images)
    base = (math.radians(args.phi), math.radians(args.phi1), math.radians(args.phi2))
    angles = sweep_angles(args.angle, args.frames, base)
    with common.progress_bar(len(angles), f"sweeping {args.angle}") as update:
        frames = upscale(sphere_images(flow, anchors, angles, batch, update), args.zoom)

    common.write_frames(frames, out)
    common.write_animation(frames, out / "sweep.gif", args.fps)
    common.write_animation(frames, out / "sweep.webp", args.fps)
    print(f"wrote {len(frames)} frames of {frames.shape[1]}×{frames.shape[2]}, sweep.gif and sweep.webp to {out}")
    if args.grid:
        span, endpoint = (TWO_PI, False) if args.grid_span == "full" else (math.pi / 2, True)
        grid_angles = manifold_angles(8, 8, base[2], span, endpoint)
        with common.progress_bar(len(grid_angles), "grid") as update:
            tiles = sphere_images(flow, anchors, grid_angles, batch, update)
        common.write_image(grid(upscale(tiles, args.zoom), cols=8), out / "grid.png")
        print(f"wrote {out / 'grid.png'}: 8×8 over (φ, φ') at φ'' = {args.phi2:g}°")
    return 0
