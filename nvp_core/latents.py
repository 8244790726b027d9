"""Operations on multi-scale latents: the seed page's figures as functions.

A latent is a list ``[z^(1), …, z^(L)]`` of (N, C_k, H_k, W_k) tensors, finest first.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from .errors import ShapeError
from .layers.squeeze import unsqueeze_ordered

Latents = list[torch.Tensor]


def make_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A CPU generator from a seed (ints are the common case in the UI and CLI)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(generator))
    return gen


def _randn_like(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)


def resample(
    zs: Sequence[torch.Tensor],
    levels: Iterable[int],
    temperature: float = 1.0,
    generator: torch.Generator | int | None = None,
    mode: str = "noise",
) -> Latents:
    """Replace the chosen levels (1-based) by fresh ε^(k) ~ N(0, T²I) — or zeros with ``mode="zero"``.

    Untouched levels are returned as the very same tensors, so they stay bit-identical.
    Noise is drawn for every level in order, whether replaced or not, so toggling
    one level never changes the noise of another under the same seed.
    """
    if mode not in ("noise", "zero"):
        raise ValueError(f"mode must be 'noise' or 'zero', got {mode!r}")
    chosen = set(int(k) for k in levels)
    bad = [k for k in chosen if not 1 <= k <= len(zs)]
    if bad:
        raise ShapeError(f"levels {sorted(bad)} out of range 1..{len(zs)}")
    gen = make_generator(generator)
    out = []
    for k, z in enumerate(zs, start=1):
        eps = _randn_like(z, gen) if mode == "noise" else None
        if k in chosen:
            out.append(torch.zeros_like(z) if eps is None else eps * float(temperature))
        else:
            out.append(z)
    return out


def sphere_weights(phi: float, phi1: float, phi2: float) -> list[float]:
    """Coefficients of z1…z8 on the sphere; their squares sum to 1."""
    c, s = math.cos(phi), math.sin(phi)
    c1, s1 = math.cos(phi1), math.sin(phi1)
    c2, s2 = math.cos(phi2), math.sin(phi2)
    return [
        c * c1 * c2, c * c1 * s2, c * s1 * c2, c * s1 * s2,
        s * c1 * c2, s * c1 * s2, s * s1 * c2, s * s1 * s2,
    ]


def sphere(anchors: Sequence[Sequence[torch.Tensor]], phi: float, phi1: float, phi2: float) -> Latents:
    """The point at angles (φ, φ′, φ″) on the sphere through eight latents.

    z = cos φ (cos φ′ (z1 cos φ″ + z2 sin φ″) + sin φ′ (z3 cos φ″ + z4 sin φ″))
      + sin φ (cos φ′ (z5 cos φ″ + z6 sin φ″) + sin φ′ (z7 cos φ″ + z8 sin φ″))

    (``sin φ`` on the second line; the seed page's ``cos φ`` never reaches z5…z8.)
    """
    if len(anchors) != 8:
        raise ShapeError(f"the sphere needs 8 anchors, got {len(anchors)}")
    levels = len(anchors[0])
    for a in anchors:
        if len(a) != levels or any(x.shape != y.shape for x, y in zip(a, anchors[0])):
            raise ShapeError("all 8 anchors must have the same level shapes")
    w = sphere_weights(phi, phi1, phi2)
    return [sum(wi * a[k] for wi, a in zip(w, anchors)) for k in range(levels)]


def sphere_batch(
    anchors: Sequence[Sequence[torch.Tensor]], angles: Sequence[tuple[float, float, float]]
) -> Latents:
    """Many sphere points at once (one batch to decode: grids and animations)."""
    w = torch.tensor([sphere_weights(*a) for a in angles], dtype=anchors[0][0].dtype)
    out = []
    for k in range(len(anchors[0])):
        stack = torch.cat([a[k] for a in anchors], dim=0)  # (8, C, H, W), one image per anchor
        flat = stack.flatten(1)
        out.append((w.to(flat.device) @ flat).view(len(angles), *stack.shape[1:]))
    return out


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation; keeps the norm on the Gaussian's shell, unlike a straight line."""
    a, b = z0.flatten(1), z1.flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.acos(cos.clamp(-1.0, 1.0)).view(-1, *([1] * (z0.dim() - 1)))
    so = torch.sin(omega)
    lin = (1 - t) * z0 + t * z1
    ws = torch.where(so.abs() < 1e-6, lin, (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / so)
    return ws


def flatten(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N, D) concatenation of all levels."""
    return torch.cat([z.flatten(1) for z in zs], dim=1)


def unflatten(flat: torch.Tensor, shapes: Sequence[tuple[int, int, int]]) -> Latents:
    out, i = [], 0
    for c, h, w in shapes:
        n = c * h * w
        out.append(flat[:, i:i + n].reshape(flat.shape[0], c, h, w))
        i += n
    return out


def select(zs: Sequence[torch.Tensor], index: int) -> Latents:
    """One sample's latents (batch of one) from a batch."""
    return [z[index:index + 1] for z in zs]


def concat(latents: Sequence[Sequence[torch.Tensor]]) -> Latents:
    """Stack several latent lists along the batch dimension."""
    return [torch.cat([zs[k] for zs in latents], dim=0) for k in range(len(latents[0]))]


def spatial_layout(zs: Sequence[torch.Tensor], fill: float = float("nan")) -> list[torch.Tensor]:
    """Each level put back where its values came from in the input: (N, C, H, W) per level.

    Undoes the squeezes as the inverse pass does, with the other levels set to
    ``fill``, so level k's entries sit on the input pixels they were factored
    out of (z^(1) on one checkerboard colour, z^(2) on a quarter of the rest…).
    """
    levels = len(zs)
    out = []
    for k in range(levels):
        h = zs[-1] if k == levels - 1 else torch.full_like(zs[-1], fill)
        for j in range(levels - 2, -1, -1):
            z = zs[j] if j == k else torch.full_like(zs[j], fill)
            h = unsqueeze_ordered(torch.cat([h, z], dim=1))
        out.append(h)
    return out


def level_images(zs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Level k in the input's layout, pooled to its own resolution: (N, C_in, H/2^s, W/2^s).

    ``s = min(k, L−1)`` is the number of squeezes above level k, so each output
    pixel averages the level's values inside one s-fold 2×2 block of the input,
    per colour channel: a picture of z^(k) in the image's own coordinates.
    """
    layouts = spatial_layout(zs)
    levels = len(zs)
    out = []
    for k, full in enumerate(layouts):
        s = min(k + 1, levels - 1)
        b = 2**s
        n, c, h, w = full.shape
        blocks = full.reshape(n, c, h // b, b, w // b, b)
        present = ~torch.isnan(blocks)
        total = torch.where(present, blocks, torch.zeros_like(blocks)).sum(dim=(3, 5))
        count = present.sum(dim=(3, 5)).clamp_min(1)
        out.append(total / count)
    return out
