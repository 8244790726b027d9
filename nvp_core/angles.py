"""Angle triples (φ, φ′, φ″) on the sphere through eight latents, in radians.

Radians are the one unit of the API; degrees belong to the explorer's sliders
and the CLI's flags, converted where they are read.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import ShapeError

ANGLES = ("phi", "phi1", "phi2")
TWO_PI = 2.0 * math.pi
Angles3 = tuple[float, float, float]


def manifold_angles(rows: int = 8, cols: int = 8, phi2: float = 0.0, span: float = TWO_PI,
                    endpoint: bool = False) -> list[Angles3]:
    """Row-major (φ, φ′, φ″) for a rows×cols grid: φ down the rows, φ′ across.

    ``span`` 2π without the end point covers the whole great circle once (the
    seed's [0, 2π)); span π/2 with the end point puts z1, z3, z5, z7 in the corners.
    """
    def axis(k: int) -> np.ndarray:
        return np.linspace(0.0, span, k, endpoint=endpoint) if k > 1 else np.zeros(1)

    return [(float(a), float(b), float(phi2)) for a in axis(rows) for b in axis(cols)]


def sweep_angles(angle: str = "phi2", frames: int = 40, base: Angles3 = (0.0, 0.0, 0.0),
                 span: float = TWO_PI) -> list[Angles3]:
    """``frames`` points moving one angle from ``base`` over ``span`` without the end
    point: with the default 2π, a seamless loop."""
    if angle not in ANGLES:
        raise ValueError(f"angle must be one of {ANGLES}, got {angle!r}")
    if frames < 1:
        raise ShapeError(f"the number of frames must be ≥ 1, got {frames}")
    i = ANGLES.index(angle)
    out = []
    for t in np.linspace(0.0, span, frames, endpoint=False):
        a = list(base)
        a[i] = base[i] + float(t)
        out.append((a[0], a[1], a[2]))
    return out
