"""Information loss without waiting: every level subset of an image decoded in one batch.

A toggle of the Information-loss tab asks for g(z with the chosen levels
replaced). With L levels there are only 2^L subsets (16 at 32×32, 32 at
64×64), and one batched decode of all of them costs about as much as four
single ones. So the panel decodes the asked-for subset at once (high
priority), then every other subset of the same image, noise and seed in one
batched call; later toggles, and the seed figure's strip (the subsets
{}, {1}, {1,2}, …), are then lookups. The encoded latents are kept by the
session, so nothing is encoded again.

The noise of a subset does not depend on which other subsets are decoded with
it: ``nc.resample`` draws ε for every level in order under one seed.
"""
from __future__ import annotations

from collections import OrderedDict
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

import nvp_core as nc

LevelSet = frozenset[int]


def all_level_sets(levels: int) -> list[LevelSet]:
    """Every subset of 1..L, smallest first ({} first, then singletons, …)."""
    out: list[LevelSet] = []
    for k in range(levels + 1):
        out += [frozenset(c) for c in combinations(range(1, levels + 1), k)]
    return out


def strip_sets(levels: int) -> list[LevelSet]:
    """The seed page's figure: {}, {1}, {1, 2}, … {1..L−1} (L columns)."""
    return [frozenset(range(1, k + 1)) for k in range(levels)]


def decode_level_sets(flow: Any, zs: Sequence[Any], sets: Sequence[LevelSet], temperature: float, seed: int,
                      mode: str, progress: Callable[[float], None] = lambda f: None) -> np.ndarray:
    """uint8 (len(sets), H, W, 3): g(z) of one image with each set of levels replaced by ε (or
    zeros), in one batch — nvp_core's information-loss columns, the CLI's and the figures' too."""
    return nc.infoloss_columns(flow, zs, sets, temperature=temperature, seed=int(seed), mode=mode,
                               progress=progress)[0]


class InfoLossCache:
    """Decoded subsets per (image, temperature, seed, mode); the last ``max_keys`` settings are kept."""

    def __init__(self, max_keys: int = 8) -> None:
        self.max_keys = max_keys
        self._items: OrderedDict[tuple, tuple[object, dict[LevelSet, np.ndarray]]] = OrderedDict()

    @staticmethod
    def key(entry: object, temperature: float, seed: int, mode: str) -> tuple:
        return (id(entry), round(float(temperature), 6) if mode == "noise" else None, int(seed), mode)

    def frames(self, entry: object, key: tuple) -> dict[LevelSet, np.ndarray]:
        """The decoded subsets for this image and settings (a live dict; empty if none yet)."""
        item = self._items.get(key)
        if item is None or item[0] is not entry:  # ids are reused once an entry is gone
            item = (entry, {})
            self._items[key] = item
            while len(self._items) > self.max_keys:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return item[1]

    def put(self, entry: object, key: tuple, sets: Sequence[LevelSet], images: np.ndarray) -> None:
        d = self.frames(entry, key)
        for s, img in zip(sets, images):
            d[frozenset(s)] = img

    def clear(self) -> None:
        self._items.clear()


__all__ = ["InfoLossCache", "LevelSet", "all_level_sets", "decode_level_sets", "strip_sets"]
