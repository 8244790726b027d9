"""The seed page's figures as uint8 pictures: sample grids, extrapolation, information loss, manifold.

Pure functions of a flow and a seed, so the CLI (`nvp figures`, `nvp sphere`…)
and the explorer draw the very same pictures; writing files is the caller's
business. The work under them (chunked decoding, progress, cancelling) is
:mod:`nvp_core.pipeline`; this module lays the results out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .angles import TWO_PI, manifold_angles, sweep_angles
from .errors import ShapeError
from .flow import RealNVP
from .images import grid
from .latents import Latents
from .pipeline import (
    Cancel, Progress, encode_images, infoloss_columns, infoloss_level_sets, part_progress,
    sample_images, sphere_images,
)


# ---------------------------------------------------------------- small helpers
def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (H, W, C) or (N, H, W, C): a 32×32 crop stays
    crisp and every model pixel stays visible, unlike a smoothing resize."""
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"upscale factor must be ≥ 1, got {factor}")
    if factor == 1:
        return images
    axis = images.ndim - 3
    return np.repeat(np.repeat(images, factor, axis=axis), factor, axis=axis + 1)


def extrapolation_images(flow: RealNVP, factor: int, n: int = 1, temperature: float = 0.7, seed: int = 0,
                         progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """n canvases ``factor`` times the training size, decoded one at a time (a 20×
    canvas is the memory-heavy case, so never batch them)."""
    if factor < 1:
        raise ShapeError(f"the extrapolation factor must be ≥ 1, got {factor}")
    side = flow.config.image_size * int(factor)
    return sample_images(flow, n, side, side, temperature, seed, 1, progress, cancel)


# ---------------------------------------------------------------- information loss
def infoloss_labels(levels: int, include_all: bool = False) -> list[str]:
    """Short ASCII column titles ("g(z)", "new z1", "new z1-2", …)."""
    out = []
    for s in infoloss_level_sets(levels, include_all):
        out.append("g(z)" if not s else ("new z1" if len(s) == 1 else f"new z1-{s[-1]}"))
    return out


def infoloss_images(flow: RealNVP, images: np.ndarray, temperature: float = 1.0, seed: int = 0,
                    mode: str = "noise", include_all: bool = False, batch_size: int | None = None,
                    progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """uint8 (N, K, H, W, C): per image, the reconstruction g(f(x)) and then its
    decodes with z^(1), z^(1..2), … replaced by the seed's noise (or zeros); see
    :func:`nvp_core.pipeline.infoloss_columns`."""
    zs = encode_images(flow, images, batch_size, cancel=cancel)
    sets = infoloss_level_sets(len(zs), include_all)
    return infoloss_columns(flow, zs, sets, temperature, seed, mode, batch_size, progress, cancel)


def infoloss_grid(columns: np.ndarray, zoom: int = 1, pad: int = 2, labels: Sequence[str] | None = None) -> np.ndarray:
    """Rows = images, columns = the level sets; optional titles above the columns."""
    n, k = columns.shape[:2]
    tiles = upscale(columns.reshape(n * k, *columns.shape[2:]), zoom)
    out = grid(tiles, cols=k, pad=pad)
    if labels:
        out = label_columns(out, labels, tiles.shape[2], pad)
    return out


# ---------------------------------------------------------------- manifold
def anchors_from_images(flow: RealNVP, images: np.ndarray) -> list[Latents]:
    """Eight images → eight latent lists (batch of one each), the sphere's z1…z8."""
    if images.shape[0] != 8:
        raise ShapeError(f"the manifold needs exactly 8 images, got {images.shape[0]}")
    zs = encode_images(flow, images)
    return [[z[i:i + 1] for z in zs] for i in range(8)]


def manifold_grid(flow: RealNVP, anchors: Sequence[Latents], phi2: float = 0.0, size: int = 8,
                  span: float = TWO_PI, endpoint: bool = False, zoom: int = 1, pad: int = 2,
                  batch_size: int | None = None, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> np.ndarray:
    """The size×size picture over (φ, φ′) at φ″ (radians; φ down, φ′ across)."""
    angles = manifold_angles(size, size, phi2, span, endpoint)
    tiles = sphere_images(flow, anchors, angles, batch_size, progress, cancel)
    return grid(upscale(tiles, zoom), cols=size, pad=pad)


def manifold_sweep(flow: RealNVP, anchors: Sequence[Latents], frames: int = 32, size: int = 8,
                   span: float = TWO_PI, endpoint: bool = False, zoom: int = 1, pad: int = 2,
                   batch_size: int | None = None, progress: Progress | None = None,
                   cancel: Cancel | None = None) -> np.ndarray:
    """Frames of the (φ, φ′) grid as φ″ turns once over [0, 2π): (frames, H, W, C)."""
    turns = sweep_angles("phi2", frames)
    return np.stack([
        manifold_grid(flow, anchors, phi2, size, span, endpoint, zoom, pad, batch_size,
                      None if progress is None else part_progress(progress, i, len(turns)), cancel)
        for i, (_, _, phi2) in enumerate(turns)
    ])


# ---------------------------------------------------------------- titles
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def label_columns(image: np.ndarray, labels: Sequence[str], tile_width: int, pad: int = 2,
                  font_size: int | None = None) -> np.ndarray:
    """A white strip above a grid with one centred title per column of tiles."""
    font_size = font_size or max(9, min(16, tile_width // 7))
    strip_h = font_size + 8
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + strip_h), (255, 255, 255))
    canvas.paste(Image.fromarray(image), (0, strip_h))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    for i, text in enumerate(labels):
        cx = pad + i * (tile_width + pad) + tile_width / 2
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text((cx - (right - left) / 2, (strip_h - (bottom - top)) / 2 - top), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()
