"""Density: a model's test bits/dim against lossless PNG and WebP on the same held-out images.

A density model is a compressor in disguise: −log₂ p(x) bits is the code length
an arithmetic coder would reach. So the honest yardstick is a lossless codec on
the very same held-out crops of the ``photo-crops`` set, in the same unit:
bits/dim = 8 · bytes / (H · W · 3). Per-image files carry their headers (a real
cost when images are stored one by one); a single tiled image of all crops shows
the codec with the header spread out — the fair codec figure, and the one the
model cards' ratio (model / WebP tiled; target ≤ 0.90) is taken against. The
held-out images are those of the model's own data set (``photo-crops`` or
``shapes``, read from its metadata), with the seed and split size it trained with.

    python -m benchmarks.density [MODEL] [--device cuda] [--quick] [--images 512] [--json out.json]
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

import nvp_core as nc

from .common import Report, Table, arg_parser, describe_load, run_one


def encoded_bytes(img: np.ndarray, fmt: str) -> int:
    """Bytes of one lossless encoding at the codec's maximum effort."""
    buf = io.BytesIO()
    pil = Image.fromarray(img)
    if fmt == "PNG":
        pil.save(buf, format="PNG", optimize=True, compress_level=9)
    elif fmt == "WEBP":
        pil.save(buf, format="WEBP", lossless=True, quality=100, method=6)
    else:
        raise ValueError(fmt)
    return buf.tell()


def tile(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → one near-square mosaic (N padded with black tiles to a full grid)."""
    n, h, w, c = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        canvas[r * h:(r + 1) * h, k * w:(k + 1) * w] = im
    return canvas


def codec_bpd(images: np.ndarray) -> dict[str, tuple[float, float]]:
    """{codec: (bits/dim, seconds)} for per-image files and one tiled mosaic."""
    n, h, w, c = images.shape
    dims = h * w * c
    out = {}
    for fmt in ("PNG", "WEBP"):
        t0 = time.perf_counter()
        per_image = sum(encoded_bytes(im, fmt) for im in images)
        out[f"{fmt} per image"] = (8.0 * per_image / (n * dims), time.perf_counter() - t0)
        tiled = tile(images)
        t0 = time.perf_counter()
        out[f"{fmt} one tiled image"] = (8.0 * encoded_bytes(tiled, fmt) / tiled.size, time.perf_counter() - t0)
    return out


def test_split(flow, size: int, quick: bool, n_images: int) -> tuple[torch.Tensor, str, int]:
    """The held-out images the model's own training evaluated on (same data set, seed and split size)."""
    from nvp_core.data import HeldOut

    held = HeldOut.of(getattr(flow, "metadata", None))
    if quick:  # a smoke run: a small split of its own (not the model's first images)
        held = HeldOut(held.data, held.seed, min(held.n_test, n_images))
    return held.load(size, n_images), f"{held.describe()}, first {n_images}", held.seed


def run(device: torch.device, quick: bool = False, model: str | None = None, n_images: int | None = None) -> Report:
    from nvp_core.train import evaluate_bits_per_dim

    n_images = n_images or (16 if quick else 512)
    path = Path(model) if model else Path(nc.default_model_path())
    notes: list[str] = []
    flow = None
    if model or (path / "model.safetensors").exists():
        flow = nc.load(path, device=device)
        size = flow.config.image_size
    else:
        size = 16 if quick else 32
        notes.append(f"No default model at {path} yet: the model row is skipped; the codecs are measured alone.")
    table = Table("Test bits/dim on the same held-out images (lower is better)", ["method", "bits/dim", "time s"])
    data: dict = {}
    try:
        x8, where, seed = test_split(flow, size, quick, n_images)
    except (nc.DataError, ImportError) as exc:
        notes.append(f"photo-crops is unavailable ({exc}); nothing to compare.")
        return Report("density", [table], notes + [describe_load()], data)
    if flow is not None:
        t0 = time.perf_counter()
        bpd = evaluate_bits_per_dim(flow, x8.to(device), seed=seed, batch_size=64)
        dt = time.perf_counter() - t0
        table.add(f"Real NVP ({path.name}, noise dequantization)", bpd, dt)
        data["model_bpd"] = bpd
        card = getattr(flow, "metadata", {}) or {}
        if "test_bpd" in card:
            notes.append(f"The model's own metadata says test bits/dim {float(card['test_bpd']):.4f}.")
    images = x8.permute(0, 2, 3, 1).contiguous().numpy()
    codecs = codec_bpd(images)
    for name, (v, dt) in codecs.items():
        table.add(f"lossless {name.replace('WEBP', 'WebP')}", v, dt)
        data[name] = v
    if "model_bpd" in data:
        ratio = data["model_bpd"] / data["WEBP one tiled image"]
        data["ratio_to_webp_tiled"] = ratio
        verdict = "meets" if ratio <= 0.90 else ("beats WebP but misses" if ratio < 1 else "loses to WebP and misses")
        notes.append(f"Model / lossless WebP (one tiled image) = {ratio:.3f}: {verdict} the ≤ 0.90 target.")
    notes += [
        f"{where}, {size}×{size}; PNG at compress_level 9 + optimize, WebP lossless at quality 100, method 6 "
        "(Pillow); bits/dim = 8·bytes/(H·W·3).",
        "The model's bits/dim is a code length for x in [0,1) with uniform dequantization noise: "
        "an upper bound on what an arithmetic coder with this model would spend per 8-bit value.",
        describe_load(),
    ]
    return Report("density", [table], notes, data)


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model file or folder (default: the shipped model)")
    p.add_argument("--images", type=int, default=0, help="test crops to score (default 512; 16 with --quick)")
    args = p.parse_args(argv)
    return run_one(args, lambda d: run(d, args.quick, args.model, args.images or None))


if __name__ == "__main__":
    sys.exit(main())
