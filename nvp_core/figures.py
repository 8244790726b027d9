"""The seed page's figures as uint8 arrays: samples, extrapolation, information loss, manifold.

Pure functions of a flow and a seed, so the CLI (`nvp figures`, `nvp sphere`…)
and the explorer render the very same pictures; writing files is the caller's
business. Long work decodes in chunks and reports through ``progress(k)`` (k
items just finished); a callback that raises stops the work, which is how a GUI
cancels. Noise is always drawn on the CPU from the seed, so a figure is the
same on CPU and CUDA and does not depend on the chunk size.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import ShapeError
from .flow import RealNVP
from .images import grid
from .latents import make_generator, resample, sphere_batch
from .preprocess import dequantize, from_numpy_image, to_numpy_image

Latents = list[torch.Tensor]
Progress = Callable[[int], None] | None
ANGLES = ("phi", "phi1", "phi2")
TWO_PI = 2.0 * math.pi


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


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    size = max(1, int(size))
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def decode_images(flow: RealNVP, zs: Sequence[torch.Tensor], batch_size: int = 16,
                  progress: Progress = None) -> np.ndarray:
    """Latents (N, …) per level → uint8 (N, H, W, C), decoded ``batch_size`` at a time so
    memory stays bounded whatever N is (eval mode makes the result chunk-independent)."""
    n = zs[0].shape[0]
    out = []
    dev = flow.device
    with torch.inference_mode(), flow.evaluating():
        for i, j in _chunks(n, batch_size):
            x = flow.decode([z[i:j].to(dev) for z in zs])
            out.append(to_numpy_image(x))
            if progress:
                progress(j - i)
    if not out:
        raise ShapeError("nothing to decode: the latents hold no images")
    return np.concatenate(out)


def encode_images(flow: RealNVP, images: np.ndarray, batch_size: int = 16,
                  progress: Progress = None) -> Latents:
    """uint8 (N, H, W, C) → latents [z^(1) … z^(L)] on the flow's device, with the
    midpoint dequantization so one image always has one latent."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ShapeError(f"expected a non-empty batch of images (N, H, W, C), got shape {images.shape}")
    flow.check_size(images.shape[1], images.shape[2])
    parts: list[Latents] = []
    with torch.inference_mode(), flow.evaluating():
        for i, j in _chunks(images.shape[0], batch_size):
            x = dequantize(from_numpy_image(images[i:j]).to(flow.device), noise=False)
            parts.append(flow.encode(x))
            if progress:
                progress(j - i)
    return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]


def sample_images(flow: RealNVP, n: int, height: int | None = None, width: int | None = None,
                  temperature: float = 0.7, seed: int = 0, batch_size: int = 16,
                  progress: Progress = None) -> np.ndarray:
    """n samples, uint8 (n, H, W, C); H, W default to the training size. The flow is
    convolutional, so any size that is a multiple of 2^(L−1) works (extrapolation)."""
    if n < 1:
        raise ShapeError(f"the number of samples must be ≥ 1, got {n}")
    height = height or flow.config.image_size
    width = width or height
    zs = flow.sample_latents(n, height, width, temperature, make_generator(seed))
    return decode_images(flow, zs, batch_size, progress)


def extrapolation_images(flow: RealNVP, scale: int, n: int = 1, temperature: float = 0.7, seed: int = 0,
                         progress: Progress = None) -> np.ndarray:
    """n canvases ``scale`` times the training size, decoded one at a time (a 20×
    canvas is the memory-heavy case, so never batch them)."""
    if scale < 1:
        raise ShapeError(f"the scale must be ≥ 1, got {scale}")
    side = flow.config.image_size * int(scale)
    return sample_images(flow, n, side, side, temperature, seed, batch_size=1, progress=progress)


def sample_grid(flow: RealNVP, n: int = 64, cols: int | None = None, temperature: float = 0.7, seed: int = 0,
                height: int | None = None, width: int | None = None, zoom: int = 1, pad: int = 2,
                batch_size: int = 16, progress: Progress = None) -> np.ndarray:
    """One picture of n samples, ``cols`` per row (square-ish by default)."""
    images = sample_images(flow, n, height, width, temperature, seed, batch_size, progress)
    cols = cols or math.ceil(math.sqrt(n))
    return grid(upscale(images, zoom), cols=min(cols, n), pad=pad)


# ---------------------------------------------------------------- information loss
def infoloss_level_sets(levels: int, include_all: bool = False) -> list[list[int]]:
    """Level sets of the seed figure's columns: [], [1], [1, 2], …, [1..L−1] (and [1..L]).

    The coarsest level is kept by default: it is what carries the image's identity
    in the figure; replacing it too gives a plain sample.
    """
    last = levels if include_all else levels - 1
    return [list(range(1, k + 1)) for k in range(0, last + 1)]


def infoloss_labels(levels: int, include_all: bool = False) -> list[str]:
    """Short ASCII column titles ("g(z)", "new z1", "new z1-2", …)."""
    out = []
    for s in infoloss_level_sets(levels, include_all):
        out.append("g(z)" if not s else ("new z1" if len(s) == 1 else f"new z1-{s[-1]}"))
    return out


def infoloss_images(flow: RealNVP, images: np.ndarray, temperature: float = 1.0, seed: int = 0,
                    mode: str = "noise", include_all: bool = False, batch_size: int = 16,
                    progress: Progress = None) -> np.ndarray:
    """uint8 (N, K, H, W, C): per image, the reconstruction g(f(x)) and then its
    decodes with z^(1), z^(1..2), … replaced by fresh ε ~ N(0, T²I) (or zeros).

    Every column uses the same seed, and :func:`nvp_core.resample` draws the noise of
    each level in order whether it is used or not, so ε^(1) is the same in every
    column: the columns degrade one level at a time, as in the seed figure.
    """
    zs = encode_images(flow, images, batch_size)
    sets = infoloss_level_sets(len(zs), include_all)
    cols = []
    for levels in sets:
        z = resample(zs, levels, temperature=temperature, generator=make_generator(seed), mode=mode)
        cols.append(decode_images(flow, z, batch_size, progress))
    return np.stack(cols, axis=1)


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


def manifold_angles(rows: int = 8, cols: int = 8, phi2: float = 0.0, span: float = TWO_PI,
                    endpoint: bool = False) -> list[tuple[float, float, float]]:
    """Row-major (φ, φ′, φ″) for a rows×cols grid: φ down the rows, φ′ across.

    ``span`` 2π without the end point covers the whole great circle once (the
    seed's [0, 2π)); span π/2 with the end point puts z1, z3, z5, z7 in the corners.
    """
    def axis(k: int) -> np.ndarray:
        return np.linspace(0.0, span, k, endpoint=endpoint) if k > 1 else np.zeros(1)

    return [(float(a), float(b), float(phi2)) for a in axis(rows) for b in axis(cols)]


def sweep_angles(angle: str = "phi2", frames: int = 40,
                 base: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list[tuple[float, float, float]]:
    """``frames`` points sweeping one angle over [0, 2π) from ``base`` (a seamless loop)."""
    if angle not in ANGLES:
        raise ValueError(f"angle must be one of {ANGLES}, got {angle!r}")
    if frames < 1:
        raise ShapeError(f"the number of frames must be ≥ 1, got {frames}")
    i = ANGLES.index(angle)
    out = []
    for t in np.linspace(0.0, TWO_PI, frames, endpoint=False):
        a = list(base)
        a[i] = base[i] + float(t)
        out.append((a[0], a[1], a[2]))
    return out


def sphere_images(flow: RealNVP, anchors: Sequence[Latents], angles: Sequence[tuple[float, float, float]],
                  batch_size: int = 16, progress: Progress = None) -> np.ndarray:
    """Decode the sphere points at ``angles``: uint8 (len(angles), H, W, C). The
    latents of a chunk are mixed just before decoding, so memory holds one chunk."""
    out = []
    for i, j in _chunks(len(angles), batch_size):
        out.append(decode_images(flow, sphere_batch(anchors, angles[i:j]), batch_size, progress))
    return np.concatenate(out)


def manifold_grid(flow: RealNVP, anchors: Sequence[Latents], phi2: float = 0.0, size: int = 8,
                  span: float = TWO_PI, endpoint: bool = False, zoom: int = 1, pad: int = 2,
                  batch_size: int = 16, progress: Progress = None) -> np.ndarray:
    """The size×size picture over (φ, φ′) at φ″ (φ down, φ′ across)."""
    angles = manifold_angles(size, size, phi2, span, endpoint)
    tiles = sphere_images(flow, anchors, angles, batch_size, progress)
    return grid(upscale(tiles, zoom), cols=size, pad=pad)


def manifold_sweep(flow: RealNVP, anchors: Sequence[Latents], frames: int = 32, size: int = 8,
                   span: float = TWO_PI, endpoint: bool = False, zoom: int = 1, pad: int = 2,
                   batch_size: int = 16, progress: Progress = None) -> np.ndarray:
    """Frames of the (φ, φ′) grid as φ″ turns once over [0, 2π): (frames, H, W, C)."""
    return np.stack([
        manifold_grid(flow, anchors, phi2, size, span, endpoint, zoom, pad, batch_size, progress)
        for _, _, phi2 in sweep_angles("phi2", frames)
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
