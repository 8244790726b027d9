"""The explorer's encoded images: an :class:`ImageEntry` per picture, fitted to the model's
size (centre crop or a chosen box) and encoded, with its reconstruction, bits/dim and level maps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

import nvp_core as nc
from nvp_core.errors import DataError
from nvp_core.images import center_crop_box, fit_image
from nvp_core.latents import Latents
from nvp_core.pipeline import Progress, part_progress

# An image to encode: (name, original uint8 (H, W, 3), source path or None[, (width, height) of the file])
Item = tuple


@dataclass
class ImageEntry:
    """One loaded image, fitted to the model's size and encoded."""

    name: str
    original: np.ndarray  # uint8 (H0, W0, 3), capped at image_files.ORIGINAL_MAX_SIDE
    pixels: np.ndarray  # uint8 (H, W, 3) at the model's size
    latents: Latents  # [z^(1)…z^(L)], each (1, C_k, H_k, W_k), on the flow's device
    recon: np.ndarray  # uint8 (H, W, 3): decode(encode(x))
    bpd: float  # bits/dim with midpoint dequantization
    levels: list[np.ndarray]  # per level, float32 (C_in, h_k, w_k): z^(k) in the input's layout
    source: str | None = None
    z_norm: float = 0.0  # ‖z‖ over all levels (≈ √D for a typical sample)
    box: tuple[int, int, int, int] | None = None  # a chosen crop of ``original``; None = centre crop
    original_size: tuple[int, int] | None = None  # (width, height) of the file itself; None = original's
    # The flow whose latents these are: after a model change, work asked for before the
    # re-encode lands would decode old latents with the new flow (a spurious "expected 2
    # latent levels, got 4"); such work is dropped instead (see ``session.StaleLatents``).
    encoded_by: Any = field(default=None, repr=False, compare=False)

    @property
    def true_size(self) -> tuple[int, int]:
        """(width, height) of the image as the file has it (``original`` may be decoded reduced and capped)."""
        return self.original_size or (int(self.original.shape[1]), int(self.original.shape[0]))


def level_maps(zs: Latents) -> list[np.ndarray]:
    """Per level, float32 (C_in, h_k, w_k): z^(k) in the input's layout (nc.level_images), sample 0."""
    with torch.inference_mode():
        return [lv[0].float().cpu().numpy() for lv in nc.level_images([z[:1].float().cpu() for z in zs])]


def encode_pixels(
    flow: nc.RealNVP, pixels: np.ndarray, progress: Progress | None = None
) -> tuple[list[Latents], np.ndarray, np.ndarray]:
    """uint8 (N,H,W,3) → (per-image latents, reconstructions uint8, bits/dim (N,)).

    Midpoint dequantization: the same picture always gives the same latents, and
    uint8 → encode → decode → uint8 is exact. Latents and bits/dim come from one pass.
    """
    zs, bpds = nc.encode_and_score(flow, pixels, progress=_half(progress, 0))
    recons = nc.decode_images(flow, zs, progress=_half(progress, 1))
    return [nc.select(zs, j) for j in range(len(pixels))], recons, bpds


def _half(progress: Progress | None, part: int) -> Progress | None:
    return None if progress is None else part_progress(progress, part, 2)


def model_size(flow: nc.RealNVP) -> tuple[int, int]:
    s = flow.config.image_size
    return s, s


def check_box(box: Sequence[int], original: np.ndarray) -> tuple[int, int, int, int]:
    """A crop (left, top, right, bottom) clipped to the image; DataError if nothing is left."""
    h, w = original.shape[:2]
    left, top, right, bottom = (int(round(v)) for v in box)
    left, right = max(0, min(left, w)), max(0, min(right, w))
    top, bottom = max(0, min(top, h)), max(0, min(bottom, h))
    if right - left < 1 or bottom - top < 1:
        raise DataError(f"the crop {tuple(box)} does not overlap the {w}×{h} image")
    return left, top, right, bottom


def encode_items(
    flow: nc.RealNVP, items: Sequence[Item], progress: Progress | None = None,
    boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
) -> list[ImageEntry]:
    """(name, original, source[, (width, height)]) items → encoded :class:`ImageEntry` objects at the model's size.

    Each original is centre-cropped to the model's aspect and resized, or cropped
    to its entry of ``boxes`` (left, top, right, bottom in the original's pixels).
    """
    if not items:
        return []
    items = [tuple(it) + (None,) * (4 - len(it)) for it in items]
    h, w = model_size(flow)
    boxes = list(boxes or [])[:len(items)]
    boxes += [None] * (len(items) - len(boxes))
    boxes = [None if b is None else check_box(b, it[1]) for b, it in zip(boxes, items)]
    fitted = np.stack([fit_image(it[1], h, w, box=b) for b, it in zip(boxes, items)])
    latents, recons, bpds = encode_pixels(flow, fitted, progress)
    return [
        ImageEntry(name=name, original=orig, pixels=fitted[i], latents=latents[i], recon=recons[i],
                   bpd=float(bpds[i]), levels=level_maps(latents[i]), source=src,
                   z_norm=float(torch.sqrt(sum((z.float() ** 2).sum() for z in latents[i]))), box=boxes[i],
                   original_size=tuple(size) if size else None, encoded_by=flow)
        for i, (name, orig, src, size) in enumerate(items)
    ]


def default_box(original: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """The centre crop :func:`fit_image` takes by default (where a crop editor starts)."""
    return center_crop_box(original.shape[1], original.shape[0], width / height)


def fit_caption(entry: ImageEntry) -> str:
    """What the model sees of an image, in words: "32×32, centre crop of 15000×15000 (kept at 512×512)".

    Sizes are the file's true ones (the kept original may be decoded reduced and
    capped), and an image smaller than the model's input says it was enlarged.
    """
    h, w = entry.pixels.shape[:2]
    tw, th = entry.true_size
    kh, kw = entry.original.shape[:2]
    left, top, right, bottom = entry.box or default_box(entry.original, h, w)
    text = f"{w}×{h}, {'chosen crop' if entry.box else 'centre crop'} of {tw}×{th}"
    if (kw, kh) != (tw, th):
        text += f" (kept at {kw}×{kh})"
    crop_w, crop_h = (right - left) * tw / kw, (bottom - top) * th / kh  # the crop in the file's pixels
    factor = max(w / crop_w, h / crop_h)
    if factor > 1.0 + 1e-6:
        text += f"; enlarged {factor:.3g}× (smaller than the model's {w}×{h} input)"
    return text


def size_text(entry: ImageEntry) -> str:
    """The file's true size, "W×H" (the Encode list's second line)."""
    tw, th = entry.true_size
    return f"{tw}×{th}"
