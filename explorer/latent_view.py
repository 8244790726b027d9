"""Latent levels shown as they are: true elements, one colour scale, values on hover.

Each level z^(k) of an encoded image is a (C_k, h_k, w_k) array. Averaging its
channels (the old default) shrinks a Gaussian's ±2 to ±0.3 and gives each map
its own colour scale, so z(3) and z(4) looked as quiet as z(1). The views here:

* ``"channel"`` (default) — one channel of each level, its true elements, at
  the level's own resolution; a stepper walks the channels (napari-style);
* ``"rms"`` — |z| per position: the root mean square over the C_k channels
  at each (y, x) (≈ 1 for a typical sample, whatever C_k);
* ``"mean"``, ``"r"``, ``"g"``, ``"b"``, ``"abs"`` — the level put back in the
  input's layout (``nc.level_images``) and averaged per colour channel, as
  before, for where-in-the-picture questions.

One symmetric scale shared by all levels (default) — ±max|z| over every element
of every level, so no value is clipped and levels compare by eye — or the
fixed ±3 of a standard normal (colour = how many σ; the rare larger values
saturate), or a scale per level. Hover names the element and its value (z(k)[c, y, x]).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF

from .widgets import ImageView, fmt

MODES = (
    ("channel", "one channel"),
    ("rms", "|z| per position"),
    ("mean", "in image: mean RGB"),
    ("r", "in image: R"),
    ("g", "in image: G"),
    ("b", "in image: B"),
    ("abs", "in image: mean |z|"),
)
SCALES = (("shared", "shared ±max"), ("sigma", "shared ±3"), ("level", "per level"))
SIGMA_RANGE = 3.0  # a N(0, 1) latent is inside ±3 but for 0.3 % of its elements


@dataclass
class LevelMap:
    """What one level view shows: values (h, w), what an element is called, its colour range."""

    values: np.ndarray
    name: str  # e.g. "z(2)[c=3]" or "RMS z(2)[:]"
    channel: int | None
    signed: bool


def level_map(raw: np.ndarray, pooled: np.ndarray, level: int, mode: str, channel: int = 0) -> LevelMap:
    """``raw``: the level's (C, h, w) latents; ``pooled``: its (C_in, h', w') input-layout map (1-based ``level``)."""
    if mode == "channel":
        c = min(max(int(channel), 0), raw.shape[0] - 1)
        return LevelMap(raw[c], f"z({level})[c={c}]", c, True)
    if mode == "rms":
        return LevelMap(np.sqrt((raw.astype(np.float64) ** 2).mean(axis=0)).astype(np.float32),
                        f"RMS over {raw.shape[0]} channels of z({level})", None, False)
    if mode == "mean":
        return LevelMap(pooled.mean(axis=0), f"mean of R, G, B of z({level})", None, True)
    if mode == "abs":
        return LevelMap(np.abs(pooled).mean(axis=0), f"mean |z({level})|", None, False)
    c = "rgb".index(mode)
    return LevelMap(pooled[min(c, pooled.shape[0] - 1)], f"z({level}) on {mode.upper()}", None, True)


def shared_scale(maps: list[LevelMap], raws: list[np.ndarray], mode: str, kind: str = "shared") -> tuple[float, float]:
    """One range for every level: ±max|z| over all elements (channel view) or over what is shown;
    ``kind="sigma"``: the fixed ±3 of a standard normal."""
    signed = any(x.signed for x in maps)
    if kind == "sigma":
        return (-SIGMA_RANGE, SIGMA_RANGE) if signed else (0.0, SIGMA_RANGE)
    if mode == "channel":
        m = max(float(np.abs(r).max()) for r in raws) if raws else 1.0
    else:
        m = max(float(np.abs(x.values).max()) for x in maps) if maps else 1.0
    m = max(m, 1e-6)
    return (-m, m) if signed else (0.0, m)


def own_scale(m: LevelMap) -> tuple[float, float]:
    v = m.values[np.isfinite(m.values)]
    top = max(float(np.abs(v).max()) if v.size else 0.0, 1e-6)
    return (-top, top) if m.signed else (0.0, top)


class LatentLevelView(ImageView):
    """An :class:`ImageView` of one level whose hover names the true element and its value."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.level_map: LevelMap | None = None

    def show_level(self, m: LevelMap, display_size: tuple[int, int], cmap: str, levels: tuple[float, float],
                   title: str) -> None:
        self.level_map = m
        v = m.values
        self.set_map(v, display_size=display_size, cmap=cmap, symmetric=m.signed)
        self.item.setLevels(levels)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        self._range_text = f"{v.shape[1]}×{v.shape[0]}  values {fmt(lo)} … {fmt(hi)}"
        self.info.setToolTip(f"colours span {fmt(levels[0])} … {fmt(levels[1])}")
        self.info.setText(self._range_text)
        self.set_title(title)

    def element_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(row, col) of the level element under a scene position, or None outside."""
        if self._data is None:
            return None
        p = self.view.mapSceneToView(pos)
        w, h = self._extent
        if not (0 <= p.x() < w and 0 <= p.y() < h):
            return None
        rows, cols = self._data.shape[:2]
        r, c = int(p.y() * rows / h), int(p.x() * cols / w)
        return min(max(r, 0), rows - 1), min(max(c, 0), cols - 1)

    def _on_mouse(self, pos: QPointF) -> None:
        if self.level_map is None or self._data is None:
            return super()._on_mouse(pos)
        rc = self.element_at(pos)
        if rc is None:
            self.info.setText(self._range_text)
            return
        r, c = rc
        m = self.level_map
        value = float(self._data[r, c])
        if m.channel is not None:
            text = f"{m.name.replace(']', '')}, y={r}, x={c}] = {value:+.5f}"
        else:
            text = f"{m.name} at y={r}, x={c}: {value:+.5f}"
        self.info.setText(text)
        self.hovered.emit(text)


__all__ = ["LatentLevelView", "LevelMap", "MODES", "SCALES", "SIGMA_RANGE", "level_map", "own_scale", "shared_scale"]
