"""Procedural 3D scenes with known factors of variation: the built-in ``shapes`` data set.

Why: photographs teach a small flow textures; a latent-space explorer is more telling
on a world with a few recognisable things that vary along named factors. In the
spirit of DeepMind's 3D Shapes, every image shows a floor and a back wall, each of
its own hue, and one object — sphere, cube, cylinder, cone or torus — of its own
hue, size, position and orientation, lit by one directional light that shades it
and casts a soft shadow.

The renderer is a small numpy ray caster: a fixed pinhole camera; the floor and
the wall are planes (their intersections are the same for every image, so they
are computed once per size); the object is a signed distance function (SDF)
sphere-traced only on the rays that hit its bounding sphere; the shadow is the
usual SDF soft shadow (min of k·d/t along the ray to the light), again only on
floor and wall points whose light ray passes near the object. Shading is
``albedo × intensity`` (+ a white highlight on the object), so a surface's hue is
exactly its factor's hue wherever it is not blended with another surface — which
the tests check. Images are rendered at ``supersample``× the size and box-filtered,
so even 32×32 scenes have clean edges.

Image ``i`` of split ``s`` is a pure function of ``(seed, s, i)``: its factors are
drawn from a random stream seeded by exactly those three numbers, so any subset of
scenes can be rendered in any order, in any batch, and come out identical (bit for
bit on one machine; numpy's float32 sin/exp kernels differ by CPU, so on another
machine a rare pixel may differ by one level).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch

from .data import SHAPES, TrainData, _Order
from .errors import DataError

SHAPE_NAMES: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus")
SPLITS: dict[str, int] = {"train": 0, "test": 1}

# Continuous factors, each drawn uniformly in [low, high). Angles in radians.
# x: left (−1) to right (+1) as far as the object stays whole in the picture at its
# depth (world x = x · that margin); z: depth in world units (larger is farther);
# scale: object size relative to the typical one; yaw: turn about the vertical axis
# (the cube repeats every 90°, the sphere, cylinder and cone do not change);
# light_azimuth: 0 is light from behind the camera, >0 from the right;
# light_elevation: the light's angle above the floor.
FACTOR_RANGES: dict[str, tuple[float, float]] = {
    "object_hue": (0.0, 1.0),
    "floor_hue": (0.0, 1.0),
    "wall_hue": (0.0, 1.0),
    "scale": (0.75, 1.25),
    "x": (-1.0, 1.0),
    "z": (-0.6, 0.9),
    "yaw": (-math.pi / 2, math.pi / 2),
    "light_azimuth": (-math.pi / 3, math.pi / 3),
    "light_elevation": (math.pi / 6, math.pi / 3),
}
FACTOR_NAMES: tuple[str, ...] = ("shape", *FACTOR_RANGES)
FACTOR_DTYPE = np.dtype([("shape", np.uint8)] + [(k, np.float32) for k in FACTOR_RANGES])

# Saturations: the object is vivid, floor and wall are muted so the object stands out.
OBJECT_SATURATION = 0.85
FLOOR_SATURATION = 0.55
WALL_SATURATION = 0.45
AMBIENT = 0.3

# World: floor y = 0, back wall z = WALL_Z; camera in front, looking slightly down.
WALL_Z = 2.0
CAMERA = np.array([0.0, 1.7, -4.2])
LOOK_AT = np.array([0.0, 0.55, 1.0])
FOV_DEG = 38.0
UNIT = 0.6  # world size of one local SDF unit at scale 1

# Per shape, in local units: (height of its centre above the floor, bounding radius,
# horizontal half-width: how far it can reach sideways at any yaw).
_TORUS_R, _TORUS_r, _TORUS_TILT = 0.68, 0.36, math.radians(60)
_SHAPE_GEOMETRY = np.array([
    (1.0, 1.0, 1.0),                                        # sphere, radius 1
    (0.8, 0.8 * math.sqrt(3), 0.8 * math.sqrt(2)),          # cube, half side 0.8
    (0.8, 0.8 * math.sqrt(2), 0.8),                         # cylinder, radius 0.8, half height 0.8
    (0.95, math.hypot(1.0, 0.95), 1.0),                     # cone, base radius 1, height 1.9
    (_TORUS_R * math.sin(_TORUS_TILT) + _TORUS_r, _TORUS_R + _TORUS_r, _TORUS_R + _TORUS_r),  # torus tilted 60°
])


# --------------------------------------------------------------------------- factors
def scene_factors(seed: int, split: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Structured array (FACTOR_DTYPE) of the scenes ``indices`` of ``split``.

    Each scene's stream is seeded by ``(seed, split, i)`` alone: the factors of a
    scene never depend on which other scenes are drawn with it.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise DataError("scene indices must be non-negative")
    k = len(FACTOR_RANGES)
    u = np.empty((len(idx), k + 1))
    s = int(seed) % 2**63
    for j, i in enumerate(idx.tolist()):
        u[j] = np.random.default_rng((s, SPLITS[split], i)).random(k + 1)
    out = np.empty(len(idx), FACTOR_DTYPE)
    out["shape"] = np.minimum((u[:, 0] * len(SHAPE_NAMES)).astype(np.int64), len(SHAPE_NAMES) - 1)
    for j, (name, (lo, hi)) in enumerate(FACTOR_RANGES.items()):
        out[name] = lo + (hi - lo) * u[:, j + 1]
    return out


def hsv_to_rgb(h: np.ndarray, s: float | np.ndarray, v: float | np.ndarray = 1.0) -> np.ndarray:
    """Vectorised HSV → RGB in [0, 1], shape (..., 3)."""
    h = np.asarray(h, np.float32)[..., None]
    n = np.array([5.0, 3.0, 1.0], np.float32)
    k = (n + h * 6.0) % 6.0
    s = np.asarray(s, np.float32)[..., None] if np.ndim(s) else np.float32(s)
    v = np.asarray(v, np.float32)[..., None] if np.ndim(v) else np.float32(v)
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


HUE_NAMES: tuple[str, ...] = ("red", "orange", "yellow", "lime", "green", "spring green", "cyan", "azure",
                              "blue", "violet", "magenta", "rose")


def hue_name(hue: float) -> str:
    """The nearest of twelve colour words for an HSV hue in [0, 1)."""
    return HUE_NAMES[int(round(float(hue) * 12)) % 12]


def factor_dict(record: np.void | np.ndarray) -> dict[str, str | float]:
    """One scene's factors as plain Python values (``shape`` as its name): for tables and JSON."""
    out: dict[str, str | float] = {"shape": SHAPE_NAMES[int(record["shape"])]}
    out.update({k: float(record[k]) for k in FACTOR_RANGES})
    return out


def describe(record: np.void | np.ndarray) -> str:
    """A scene in words, e.g. "large red cube, left front, turned 30°, on a blue floor before a
    yellow wall, light from the right": how the explorer can caption a test scene."""
    scale = float(record["scale"])
    size = "small " if scale < 0.92 else "large " if scale > 1.08 else ""
    x, z = float(record["x"]), float(record["z"])
    side = "left" if x < -0.33 else "right" if x > 0.33 else "centre"
    depth = "front" if z < -0.1 else "back" if z > 0.4 else "middle"
    az = float(record["light_azimuth"])
    light = "the left" if az < -0.35 else "the right" if az > 0.35 else "the front"
    shape = SHAPE_NAMES[int(record["shape"])]
    turn = "" if shape in ("sphere", "cylinder", "cone") else f", turned {math.degrees(float(record['yaw'])):.0f}°"
    floor, wall = hue_name(record["floor_hue"]), hue_name(record["wall_hue"])

    def a(word: str) -> str:
        return ("an " if word[0] in "aeiou" else "a ") + word

    return (f"{size}{hue_name(record['object_hue'])} {shape}, {side} {depth}{turn}, on {a(floor)} floor "
            f"before {a(wall)} wall, light from {light}")


# --------------------------------------------------------------------------- SDFs (local units)
def _length2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(a * a + b * b)


def _sd_sphere(p: np.ndarray) -> np.ndarray:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return np.sqrt(x * x + y * y + z * z) - 1.0


def _sd_cube(p: np.ndarray) -> np.ndarray:
    r = 0.06
    q = np.abs(p) - (0.8 - r)
    qx, qy, qz = q[:, 0], q[:, 1], q[:, 2]
    mx, my, mz = np.maximum(qx, 0.0), np.maximum(qy, 0.0), np.maximum(qz, 0.0)
    return np.sqrt(mx * mx + my * my + mz * mz) + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0) - r


def _sd_cylinder(p: np.ndarray) -> np.ndarray:
    dx = _length2(p[:, 0], p[:, 2]) - 0.8
    dy = np.abs(p[:, 1]) - 0.8
    return np.minimum(np.maximum(dx, dy), 0.0) + _length2(np.maximum(dx, 0.0), np.maximum(dy, 0.0))


def _sd_cone(p: np.ndarray) -> np.ndarray:
    """iq's exact capped cone with top radius 0: base radius 1 at y=-h, apex at y=+h."""
    h, r1 = 0.95, 1.0
    qx, qy = _length2(p[:, 0], p[:, 2]), p[:, 1]
    k2x, k2y = -r1, 2.0 * h
    cax = qx - np.minimum(qx, np.where(qy < 0.0, r1, 0.0))
    cay = np.abs(qy) - h
    f = np.clip(((-qx) * k2x + (h - qy) * k2y) / (k2x * k2x + k2y * k2y), 0.0, 1.0)
    cbx = qx + k2x * f
    cby = qy - h + k2y * f
    sign = np.where((cbx < 0.0) & (cay < 0.0), -1.0, 1.0)
    return sign * np.sqrt(np.minimum(cax * cax + cay * cay, cbx * cbx + cby * cby))


_CT, _ST = math.cos(_TORUS_TILT), math.sin(_TORUS_TILT)


def _sd_torus(p: np.ndarray) -> np.ndarray:
    """A ring tilted 60° from lying flat (its axis leans towards +z), so yaw shows."""
    y = _CT * p[:, 1] + _ST * p[:, 2]
    z = -_ST * p[:, 1] + _CT * p[:, 2]
    return _length2(_length2(p[:, 0], z) - _TORUS_R, y) - _TORUS_r


_SDFS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (_sd_sphere, _sd_cube, _sd_cylinder, _sd_cone, _sd_torus)
_TETRA = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], np.float32)


def _normals(sdf: Callable[[np.ndarray], np.ndarray], p: np.ndarray, h: float = 2e-3) -> np.ndarray:
    n = np.zeros_like(p)
    for k in _TETRA:
        n += k * sdf(p + h * k)[:, None]
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def _groups(keys: np.ndarray, n_groups: int) -> list[tuple[int, np.ndarray]]:
    """(key, indices) for every key present: lets each SDF run on one contiguous set."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n_groups + 1))
    return [(g, order[bounds[g]:bounds[g + 1]]) for g in range(n_groups) if bounds[g + 1] > bounds[g]]


def _march(sdf, o: np.ndarray, d: np.ndarray, t: np.ndarray, t_end: np.ndarray, steps: int = 48,
           eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Sphere tracing: (hit?, t) per ray, rays starting at ``t`` and giving up past ``t_end``.

    Finished rays are dropped every few steps, not every step: a ray on the surface
    stays there (its steps are ~0) and one past ``t_end`` can only move on, so letting
    them run a little longer changes nothing and saves the gathers.
    """
    t = t.copy()
    hit = np.zeros(len(t), bool)
    live = np.arange(len(t))
    o_l, d_l, t_l, e_l = o, d, t.copy(), t_end
    for it in range(steps):
        dist = sdf(o_l + t_l[:, None] * d_l)
        t_l = t_l + dist
        if it % 4 == 3 or it == steps - 1:
            done = dist < eps
            gone = t_l > e_l
            hit[live[done & ~gone]] = True
            t[live] = t_l
            keep = ~(done | gone)
            if not keep.all():
                live, o_l, d_l, t_l, e_l = live[keep], o_l[keep], d_l[keep], t_l[keep], e_l[keep]
            if not len(live):
                break
    return hit, t


def _soft_shadow(sdf, o: np.ndarray, d: np.ndarray, t: np.ndarray, t_end: np.ndarray, k: float = 5.0,
                 steps: int = 28) -> np.ndarray:
    """Light visibility in [0, 1] along rays (iq's soft shadow): min over the ray of k·d/t."""
    res = np.ones(len(t), np.float32)
    t = np.maximum(t, 0.02).astype(np.float32)
    live = np.arange(len(t))
    o_l, d_l, t_l, e_l = o, d, t, t_end
    for _ in range(steps):
        dist = sdf(o_l + t_l[:, None] * d_l)
        res[live] = np.minimum(res[live], k * dist / t_l)
        t_l = t_l + np.clip(dist, 0.02, 0.4)
        keep = (dist > 1e-4) & (t_l < e_l)
        if not keep.all():
            res[live[dist <= 1e-4]] = 0.0
            live, o_l, d_l, t_l, e_l = live[keep], o_l[keep], d_l[keep], t_l[keep], e_l[keep]
            if not len(live):
                break
    r = np.clip(res, 0.0, 1.0)
    return r * r * (3.0 - 2.0 * r)


# --------------------------------------------------------------------------- camera and room
@dataclass(frozen=True)
class _View:
    dirs: np.ndarray      # (P, 3) unit ray directions
    points: np.ndarray    # (P, 3) where each ray meets floor or wall
    floor: np.ndarray     # (P,) float32: 1 where the ray meets the floor, 0 on the wall
    normals: np.ndarray   # (P, 3)
    falloff: np.ndarray   # (P,) a gentle darkening with distance from the camera: a depth cue


@lru_cache(maxsize=8)
def _view(res: int) -> _View:
    """Rays of the fixed camera at res×res and their floor/wall hits (the same for every scene)."""
    fwd = LOOK_AT - CAMERA
    fwd /= np.linalg.norm(fwd)
    right = np.cross(np.array([0.0, 1.0, 0.0]), fwd)
    right /= np.linalg.norm(right)
    up = np.cross(fwd, right)
    half = math.tan(math.radians(FOV_DEG) / 2)
    c = ((np.arange(res) + 0.5) / res * 2 - 1) * half
    v, u = np.meshgrid(-c, c, indexing="ij")
    d = fwd + u[..., None] * right + v[..., None] * up
    d = (d / np.linalg.norm(d, axis=-1, keepdims=True)).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[:, 1] < 0, -CAMERA[1] / d[:, 1], np.inf)
        t_wall = np.where(d[:, 2] > 0, (WALL_Z - CAMERA[2]) / d[:, 2], np.inf)
    floor = t_floor < t_wall
    t = np.minimum(t_floor, t_wall)
    points = CAMERA + t[:, None] * d
    normals = np.where(floor[:, None], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0])
    falloff = 1.15 - 0.05 * np.linalg.norm(points - CAMERA, axis=-1)
    return _View(d.astype(np.float32), points.astype(np.float32), floor.astype(np.float32),
                 normals.astype(np.float32), falloff.astype(np.float32))


@dataclass(frozen=True)
class _Film:
    """A size×size picture sampled ss×ss per pixel: the rays, and per output pixel the
    box-filtered floor and wall terms that are the same for every scene."""

    view: _View               # the (size·ss)² supersample rays
    centres: _View            # one ray through each output pixel's centre
    pixel_of: np.ndarray      # (P,) output pixel of each supersample
    floor_cover: np.ndarray   # (size²,) fraction of each pixel's supersamples on the floor
    floor_falloff: np.ndarray  # (size²,) mean over supersamples of floor × fall-off
    wall_falloff: np.ndarray  # (size²,) the same for the wall


@lru_cache(maxsize=8)
def _film(size: int, ss: int) -> _Film:
    view = _view(size * ss)
    rows = np.arange(size * ss) // ss
    pixel_of = (rows[:, None] * size + rows[None, :]).reshape(-1)

    def down(a: np.ndarray) -> np.ndarray:
        return (np.bincount(pixel_of, weights=a, minlength=size * size) / (ss * ss)).astype(np.float32)

    return _Film(view, _view(size), pixel_of, down(view.floor), down(view.floor * view.falloff),
                 down((1 - view.floor) * view.falloff))


def _lateral_room(centre: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """How far left/right an object at this depth can stand and stay whole in the picture.

    The object's horizontal extent seen from the camera spans ``asin(r / distance)`` either
    side of its centre's direction; the room is where that span ends at the edge of the
    field of view (with 25% of air).
    """
    fwd = LOOK_AT - CAMERA
    fwd = fwd / np.linalg.norm(fwd)
    rel = centre - CAMERA
    depth = (rel * fwd).sum(-1)
    spread = np.arcsin(np.clip(1.25 * half_width / np.sqrt((rel * rel).sum(-1)), 0.0, 1.0))
    room = depth * np.tan(np.maximum(math.radians(FOV_DEG) / 2 - spread, 0.0))
    return room.astype(np.float32)


def _to_local(vecs: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """World → object frame: undo the yaw (rotation about +y)."""
    x, y, z = vecs[:, 0], vecs[:, 1], vecs[:, 2]
    return np.stack([cos * x - sin * z, y, sin * x + cos * z], -1)


def _to_world(vecs: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    x, y, z = vecs[:, 0], vecs[:, 1], vecs[:, 2]
    return np.stack([cos * x + sin * z, y, -sin * x + cos * z], -1)


def _sphere_hits(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: np.ndarray):
    """Rays (o, d) × spheres (c, r) that meet, broadcast to (N, P): (image, pixel, entry t, exit t).

    Component by component: numpy's reductions over a length-3 axis are slow.
    """
    ox, oy, oz = (o[..., k] - c[..., k] for k in range(3))
    b = ox * d[..., 0] + oy * d[..., 1] + oz * d[..., 2]
    disc = b * b - (ox * ox + oy * oy + oz * oz - r * r)
    ok = disc > 0
    ok &= b * np.abs(b) < disc  # the exit −b + √disc lies ahead (b < √disc)
    img_i, pix_i = np.nonzero(ok)
    bb, sq = b[img_i, pix_i], np.sqrt(disc[img_i, pix_i])
    return img_i, pix_i, np.maximum(-bb - sq, 0.0), -bb + sq


@dataclass
class Scenes:
    """Rendered scenes and what they show.

    ``images``: uint8 (N, S, S, 3); ``factors``: FACTOR_DTYPE (N,); ``object_mask`` and
    ``floor_mask``: float32 (N, S, S), the fraction of each pixel covered by the object
    and by visible floor (the wall covers the rest).
    """

    images: np.ndarray
    factors: np.ndarray
    object_mask: np.ndarray
    floor_mask: np.ndarray

    def chw(self) -> torch.Tensor:
        """The images as a uint8 (N, 3, S, S) tensor, the layout the trainer uses."""
        return torch.from_numpy(self.images).permute(0, 3, 1, 2).contiguous()


def default_supersample(size: int) -> int:
    """Rays per pixel side: 3×3 at 32×32 and below, 2×2 above (edges stay clean, cost stays low)."""
    return 3 if size <= 32 else 2


@dataclass
class _Pose:
    """Where each scene's object sits and where its light comes from (float32, one row per scene)."""

    shape: np.ndarray  # (N,) int64 index into _SDFS
    unit: np.ndarray  # (N,) the object's scale in world units
    radius: np.ndarray  # (N,) its bounding sphere
    centre: np.ndarray  # (N, 3)
    cos: np.ndarray  # (N,) of its yaw
    sin: np.ndarray
    light: np.ndarray  # (N, 3) unit direction towards the light


def _render_args(factors: np.ndarray, size: int, supersample: int | None) -> tuple[np.ndarray, int]:
    """The factors as an array and the supersampling, or a DataError naming the bad argument."""
    factors = np.asarray(factors)
    if factors.dtype != FACTOR_DTYPE:
        raise DataError("factors must be an array of shapes.FACTOR_DTYPE (see scene_factors)")
    if not isinstance(size, (int, np.integer)) or size < 4:
        raise DataError(f"scene size must be an integer of at least 4, got {size!r}")
    if supersample is not None and (not isinstance(supersample, (int, np.integer)) or supersample < 1):
        raise DataError(f"supersample must be a positive integer, got {supersample!r}")
    return factors, int(supersample or default_supersample(size))


def _pose(factors: np.ndarray) -> _Pose:
    """Object geometry, placement (kept inside the room) and light direction from the factors."""
    n = len(factors)
    f32 = np.float32
    shape = factors["shape"].astype(np.int64)
    geo = _SHAPE_GEOMETRY[shape]
    unit = (UNIT * factors["scale"]).astype(f32)
    radius = (geo[:, 1] * unit).astype(f32)
    centre = np.stack([np.zeros(n), geo[:, 0] * unit, factors["z"]], -1).astype(f32)
    centre[:, 0] = factors["x"] * _lateral_room(centre, (geo[:, 2] * unit).astype(f32))
    cos, sin = np.cos(factors["yaw"]).astype(f32), np.sin(factors["yaw"]).astype(f32)
    az, el = factors["light_azimuth"], factors["light_elevation"]
    light = np.stack([np.sin(az) * np.cos(el), np.sin(el), -np.cos(az) * np.cos(el)], -1).astype(f32)
    return _Pose(shape, unit, radius, centre, cos, sin, light)


def _surface_shadow(pose: _Pose, centres: np.ndarray) -> np.ndarray:
    """Soft shadow of the object on floor and wall at each pixel centre: (N, size²), 1 = lit."""
    shape, unit, centre, cos, sin, light = pose.shape, pose.unit, pose.centre, pose.cos, pose.sin, pose.light
    shadow = np.ones((len(shape), len(centres)), np.float32)
    # Shadow rays that pass near the object (its bounding sphere, widened for the penumbra).
    img_i, pix_i, t0, t1 = _sphere_hits(centres[None], light[:, None], centre[:, None], 1.5 * pose.radius[:, None])
    if len(img_i):
        o = _to_local((centres[pix_i] - centre[img_i]) / unit[img_i, None], cos[img_i], sin[img_i])
        d = _to_local(light[img_i], cos[img_i], sin[img_i])
        t_a, t_b = t0 / unit[img_i], t1 / unit[img_i]
        vis = np.ones(len(img_i), np.float32)
        for g, sel in _groups(shape[img_i], len(_SDFS)):
            vis[sel] = _soft_shadow(_SDFS[g], o[sel], d[sel], t_a[sel], t_b[sel])
        shadow[img_i, pix_i] = vis
    return shadow


def _contact_occlusion(pose: _Pose, centres: np.ndarray) -> np.ndarray:
    """Floor and wall darken where the object almost touches them: (N, size²), 1 = open."""
    shape, unit, centre, cos, sin = pose.shape, pose.unit, pose.centre, pose.cos, pose.sin
    occlusion = np.ones((len(shape), len(centres)), np.float32)
    reach = pose.radius + 1.0 * unit
    dx, dy, dz = (centres[None, :, k] - centre[:, k, None] for k in range(3))
    img_i, pix_i = np.nonzero(dx * dx + dy * dy + dz * dz < (reach * reach)[:, None])
    if len(img_i):
        o = _to_local((centres[pix_i] - centre[img_i]) / unit[img_i, None], cos[img_i], sin[img_i])
        occ = np.ones(len(img_i), np.float32)
        for g, sel in _groups(shape[img_i], len(_SDFS)):
            occ[sel] = 1.0 - 0.6 * np.exp(-4.0 * np.maximum(_SDFS[g](o[sel]), 0.0))
        occlusion[img_i, pix_i] = occ
    return occlusion


def _surface_light(pose: _Pose, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Light per unit albedo at each pixel centre (size², 3) on the floor and on the wall: (N, size²) each."""
    light = pose.light
    lit = np.clip(np.stack([light[:, 1], -light[:, 2]], -1), 0.0, 1.0)  # Lambert: floor normal +y, wall −z
    shadow = _surface_shadow(pose, centres)
    occlusion = _contact_occlusion(pose, centres)
    floor_i = (AMBIENT + (1 - AMBIENT) * lit[:, :1] * shadow) * occlusion
    wall_i = (AMBIENT + (1 - AMBIENT) * lit[:, 1:] * shadow) * occlusion
    return floor_i, wall_i


def _object_hits(pose: _Pose, view_dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sphere tracing on the view rays that meet the object's bounding sphere.

    Returns the (image, supersample) index of each ray that hits, and the world normal there."""
    shape, unit, centre, cos, sin = pose.shape, pose.unit, pose.centre, pose.cos, pose.sin
    f32 = np.float32
    img_i, pix_i, t0, t1 = _sphere_hits(CAMERA.astype(f32), view_dirs[None], centre[:, None], pose.radius[:, None])
    if not len(img_i):
        return img_i, pix_i, np.zeros((0, 3), f32)
    s_i = shape[img_i]
    o_w = (CAMERA.astype(f32) - centre[img_i]) / unit[img_i, None]
    o = _to_local(o_w, cos[img_i], sin[img_i])
    d = _to_local(view_dirs[pix_i], cos[img_i], sin[img_i])
    t_a, t_b = t0 / unit[img_i], t1 / unit[img_i]
    hit = np.zeros(len(img_i), bool)
    nrm = np.zeros((len(img_i), 3), f32)
    for g, sel in _groups(s_i, len(_SDFS)):
        h, t = _march(_SDFS[g], o[sel], d[sel], t_a[sel], t_b[sel])
        hs = sel[h]
        hit[hs] = True
        nrm[hs] = _normals(_SDFS[g], o[hs] + t[h, None] * d[hs])
    img_h, pix_h = img_i[hit], pix_i[hit]
    return img_h, pix_h, _to_world(nrm[hit], cos[img_h], sin[img_h])


def render_scenes(factors: np.ndarray, size: int, supersample: int | None = None) -> Scenes:
    """Render the scenes described by ``factors`` (FACTOR_DTYPE) at size×size."""
    factors, ss = _render_args(factors, size, supersample)
    view = _view(size * ss)
    n = len(factors)
    f32 = np.float32
    pose = _pose(factors)

    # ---- floor and wall: Lambert × soft shadow × contact occlusion × distance fall-off.
    # Floor and wall are planes under a directional light, so their Lambert term is one
    # number per image and surface; shadow and occlusion vary slowly, so they are computed
    # once per output pixel (at its centre) and shared by its supersamples. Everything
    # dense is thus at the output size; the supersamples the object covers are taken off
    # afterwards.
    film = _film(size, ss)
    floor_alb = hsv_to_rgb(factors["floor_hue"], FLOOR_SATURATION)
    wall_alb = hsv_to_rgb(factors["wall_hue"], WALL_SATURATION)
    floor_i, wall_i = _surface_light(pose, film.centres.points)
    floor_light = floor_i * film.floor_falloff  # box-filtered over the pixel's floor supersamples
    wall_light = wall_i * film.wall_falloff
    floor_cov = np.repeat(film.floor_cover[None], n, 0)

    # ---- the object: sphere tracing on rays that meet its bounding sphere
    obj_cov = np.zeros((n, size * size), f32)
    obj_light = np.zeros((n, size * size), f32)
    obj_spec = np.zeros((n, size * size), f32)
    img_h, pix_h, nw = _object_hits(pose, view.dirs)
    if len(img_h):
        lw = pose.light[img_h]
        lam = np.clip((nw * lw).sum(-1), 0.0, 1.0)
        half_v = lw - view.dirs[pix_h]
        half_v /= np.linalg.norm(half_v, axis=-1, keepdims=True)
        spec = 0.35 * np.clip((nw * half_v).sum(-1), 0.0, 1.0) ** 30 * (lam > 0)
        # Box filter of the sparse supersamples: sums into their output pixels.
        q = film.pixel_of[pix_h]
        flat = img_h * (size * size) + q
        w = f32(1.0 / (ss * ss))
        on_floor = film.view.floor[pix_h]
        fall = film.view.falloff[pix_h] * w

        def add(target: np.ndarray, weights: np.ndarray, sign: float = 1.0) -> None:
            target += sign * np.bincount(flat, weights=weights, minlength=target.size).reshape(target.shape)

        add(obj_cov, np.full(len(flat), w))
        add(obj_light, (AMBIENT + (1 - AMBIENT) * lam) * w)
        add(obj_spec, spec * w)
        # the floor and wall those supersamples hide
        add(floor_light, floor_i[img_h, q] * fall * on_floor, -1.0)
        add(wall_light, wall_i[img_h, q] * fall * (1.0 - on_floor), -1.0)
        add(floor_cov, w * on_floor, -1.0)

    obj_alb = hsv_to_rgb(factors["object_hue"], OBJECT_SATURATION)
    rgb = (floor_alb[:, None] * floor_light[..., None] + wall_alb[:, None] * wall_light[..., None]
           + obj_alb[:, None] * obj_light[..., None] + obj_spec[..., None])
    images = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8).reshape(n, size, size, 3)
    return Scenes(images, factors, obj_cov.reshape(n, size, size),
                  np.clip(floor_cov, 0.0, 1.0).reshape(n, size, size))


def generate_scenes(seed: int, split: str, indices: Sequence[int] | np.ndarray, size: int,
                    supersample: int | None = None) -> Scenes:
    """Scenes ``indices`` of ``split`` for ``seed`` (each a pure function of the three)."""
    return render_scenes(scene_factors(seed, split, indices), size, supersample)


# --------------------------------------------------------------------------- training data
class ShapesData(TrainData):
    """``n_train`` training scenes rendered on demand (and kept), plus a fixed test set.

    The training scenes are indices ``0 … n_train−1`` of the ``train`` stream, visited in
    the usual per-epoch permutation; a scene is rendered the first time a batch needs
    it and cached, so later epochs cost nothing. The test set is scenes
    ``0 … n_test−1`` of the separate ``test`` stream, rendered up front. ``workers`` > 1
    renders in that many threads (numpy releases the GIL in its array loops).
    """

    def __init__(self, size: int, n_train: int = 50000, n_test: int = 2000, seed: int = 0,
                 supersample: int | None = None, workers: int = 1) -> None:
        if n_train < 1 or n_test < 1:
            raise DataError(f"{SHAPES}: need at least one training and one test scene "
                            f"(got {n_train} and {n_test})")
        self.seed, self.supersample, self.n_train = int(seed), supersample, int(n_train)
        self.workers = max(1, int(workers))
        self.size = size
        test = self._render("test", np.arange(n_test))
        info = {
            "generator": "nvp_core.shapes", "shapes": list(SHAPE_NAMES), "train_scenes": n_train,
            "test_scenes": n_test, "seed": self.seed, "supersample": supersample or default_supersample(size),
            "test_split": "scenes 0..n_test-1 of the separate 'test' stream (seeded by (seed, 'test', i))",
            "factor_ranges": {k: [round(a, 4), round(b, 4)] for k, (a, b) in FACTOR_RANGES.items()},
        }
        super().__init__(name=SHAPES, size=size, test=test, info=info)
        self._cache = torch.empty((self.n_train, 3, size, size), dtype=torch.uint8)
        self._ready = np.zeros(self.n_train, bool)
        self._orders: dict[int, _Order] = {}

    def __len__(self) -> int:
        return self.n_train

    def scenes(self, indices: Sequence[int] | np.ndarray, split: str = "train") -> Scenes:
        """Render scenes of this data set with their factors and masks (for the explorer and tests)."""
        return generate_scenes(self.seed, split, indices, self.size, self.supersample)

    def _render(self, split: str, indices: np.ndarray, chunk: int = 256) -> torch.Tensor:
        """uint8 (N, 3, S, S) images of scenes ``indices``, in chunks over ``workers`` threads."""
        per = max(16, min(chunk, -(-len(indices) // self.workers)))
        parts = [indices[a:a + per] for a in range(0, len(indices), per)]

        def one(part: np.ndarray) -> torch.Tensor:
            return generate_scenes(self.seed, split, part, self.size, self.supersample).chw()

        if self.workers > 1 and len(parts) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                return torch.cat(list(pool.map(one, parts)))
        return torch.cat([one(p) for p in parts])

    def _gather(self, start: int, count: int, step: int, seed: int, offset: int, total: int) -> torch.Tensor:
        order = self._orders.setdefault(seed, _Order(self.n_train, seed))
        idx = order.indices(start, count)
        need = np.unique(idx.numpy()[~self._ready[idx.numpy()]])
        if len(need):
            self._cache[torch.from_numpy(need)] = self._render("train", need)
            self._ready[need] = True
        return self._cache[idx]


def load_shapes(size: int = 32, n_train: int = 50000, n_test: int = 2000, seed: int = 0,
                workers: int = 1) -> ShapesData:
    """The built-in ``shapes`` data set at size×size (see ShapesData)."""
    return ShapesData(size, n_train=n_train, n_test=n_test, seed=seed, workers=workers)
