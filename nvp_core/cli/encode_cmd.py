"""`nvp encode`: bits/dim of each image under a model, and optionally its latents."""
from __future__ import annotations

import argparse
import io
import json

from .. import limits
from . import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "encode", usage="%(prog)s [MODEL] IMAGES... [options]",
        help="bits/dim per image (and latents to .npz)",
        description="Fit each image to the model's size (centre crop + resize), report its bits/dim and "
                    "optionally save its latents z1..zL. MODEL may be left out (the shipped model); "
                    "folders of images are expanded. Unreadable files are skipped with a message.",
    )
    options.add_images_arg(p)
    options.add_size_args(p)
    p.add_argument("--noise", type=options.int_range(0, limits.MAX_NOISE_DRAWS), default=0, metavar="K",
                   help="also report bits/dim with uniform-noise dequantization, averaged over K draws "
                        "(the honest evaluation; the midpoint figure is deterministic) (default: 0, off)")
    options.add_seed_arg(p, "seed of the dequantization noise (default: 0)")
    p.add_argument("--latents", metavar="OUT.npz", default=None,
                   help="write the latents as arrays z1..zL (N, C, H, W) plus 'names'")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options.add_run_args(p, run, zoom=False, batch=32)


def _noise_bits_per_dim(flow, images, draws: int, seed: int, batch_size: int, progress):
    """(N,) bits/dim with uniform-noise dequantization, averaged over ``draws``, batched;
    K draws cost K passes, and the bar counts each one."""
    import torch

    from ..latents import make_generator
    from ..preprocess import from_numpy_image

    noisy = []
    gen = make_generator(seed)
    total = len(images) * draws
    for i in range(0, len(images), batch_size):
        x = from_numpy_image(images[i:i + batch_size])
        rows = []
        for d in range(draws):
            rows.append(flow.bits_per_dim(x, noise=True, generator=gen).cpu())
            progress(min(1.0, (i * draws + (d + 1) * len(x)) / total))
        noisy.append(torch.stack(rows).mean(0))
    return torch.cat(noisy).numpy()


def run(args: argparse.Namespace) -> int:
    from ..pipeline import encode_and_score
    from . import common

    flow, h, w, paths = common.model_and_images(args)
    common.check_outputs([args.latents], flow, paths)
    batch = common.plan_batch(flow, h, w, args.batch_size)
    images, names = common.read_images(paths, h, w)
    # one pass gives latents and midpoint bits/dim; every latent (float32) is held until written
    common.check_memory(len(images) * h * w * flow.config.channels * 4 * 3, f"latents of {len(images)} images",
                        str(flow.device))
    with common.progress_bar(len(images), "scoring") as update:
        zs, mid = encode_and_score(flow, images, batch, update)
    noisy = None
    if args.noise > 0:
        with common.progress_bar(len(images) * args.noise, f"noise ×{args.noise}") as update:
            noisy = _noise_bits_per_dim(flow, images, args.noise, args.seed, batch, update)

    if args.latents:
        _write_latents(args.latents, zs, names)
    (_print_json if args.json else _print_table)(args, flow, h, w, names, mid, noisy)
    return 0


def _write_latents(path: str, zs, names) -> None:
    """z1..zL as (N, C, H, W) float32 arrays plus 'names', written atomically (.npz)."""
    import numpy as np

    from ..io import atomic_write_bytes

    arrays = {f"z{k}": z.float().cpu().numpy() for k, z in enumerate(zs, start=1)}
    buf = io.BytesIO()
    np.savez(buf, names=np.array([str(n) for n in names]), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _print_json(args: argparse.Namespace, flow, h: int, w: int, names, mid, noisy) -> None:
    rows = []
    for i, name in enumerate(names):
        row = {"image": str(name), "bits_per_dim": float(mid[i])}
        if noisy is not None:
            row["bits_per_dim_noise"] = float(noisy[i])
        rows.append(row)
    doc = {"model": getattr(flow, "source", None), "height": h, "width": w,
           "noise_draws": args.noise, "images": rows, "mean_bits_per_dim": float(mid.mean())}
    if noisy is not None:
        doc["mean_bits_per_dim_noise"] = float(noisy.mean())
    if args.latents:
        doc["latents"] = str(args.latents)
    print(json.dumps(doc, indent=2))


def _print_table(args: argparse.Namespace, flow, h: int, w: int, names, mid, noisy) -> None:
    from . import common

    width = max(5, *(len(str(n)) for n in names))
    head = f"{'image':<{width}}  {'bits/dim':>9}" + (f"  {f'noise ×{args.noise}':>10}" if noisy is not None else "")
    print(f"# {common.describe(flow)}; images fitted to {h}×{w}")
    print("# bits/dim: midpoint dequantization (u = 1/2)"
          + (f"; noise: mean over {args.noise} uniform draws u ~ U[0,1)" if noisy is not None else ""))
    print(head)
    print("-" * len(head))
    for i, name in enumerate(names):
        line = f"{str(name):<{width}}  {mid[i]:9.4f}"
        if noisy is not None:
            line += f"  {noisy[i]:10.4f}"
        print(line)
    if len(names) > 1:
        line = f"{'mean':<{width}}  {mid.mean():9.4f}"
        if noisy is not None:
            line += f"  {noisy.mean():10.4f}"
        print(line)
    if args.latents:
        print(f"wrote latents of {len(names)} images to {args.latents}")
