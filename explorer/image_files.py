"""Reading the user's pictures: files and folders (a bad file never stops the others) and
the example photos of optional packages. Originals are kept capped, not fitted: fitting
to a model's size happens when they are encoded (:mod:`explorer.entries`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from nvp_core.errors import DataError
from nvp_core.images import find_images, read_image

from .entries import Item

# Originals are kept (for re-fitting when a model of another size is opened) but
# capped, so a folder of 40-megapixel photos does not fill memory or a session file.
ORIGINAL_MAX_SIDE = 512


def cap_original(arr: np.ndarray, max_side: int = ORIGINAL_MAX_SIDE) -> np.ndarray:
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return np.ascontiguousarray(arr, dtype=np.uint8)
    ratio = max_side / max(h, w)
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
    img = img.resize((max(1, round(w * ratio)), max(1, round(h * ratio))), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def read_images(paths: Iterable[str | os.PathLike]) -> tuple[list[Item], list[str]]:
    """Read image files and folders: ([(name, original uint8, path, (width, height))], [one message per bad file]).

    A bad file never stops the others; a folder without images is reported once.
    Large images are decoded reduced (only ``ORIGINAL_MAX_SIDE`` is kept) and
    bounded by the project's pixel limit; the last element is the file's true size.
    """
    items: list[Item] = []
    errors: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = find_images(p)
            if not files:
                errors.append(f"{p.name}/: no images in this folder")
            candidates = files
        else:
            candidates = [p]
        for f in candidates:
            try:
                loaded = read_image(f, (ORIGINAL_MAX_SIDE, ORIGINAL_MAX_SIDE))
                arr = np.asarray(loaded.image, dtype=np.uint8)
                items.append((f.name, cap_original(arr), str(f), (loaded.width, loaded.height)))
            except DataError as exc:
                errors.append(str(exc))
            except MemoryError:
                errors.append(f"{f.name}: too large to load (out of memory)")
    return items, errors


def example_images() -> list[Item]:
    """A few photos that ship inside optional packages (scikit-image, scikit-learn), for a quick start:
    (name, original, None, (width, height)) items."""
    items: list[Item] = []
    try:
        from skimage import data as skdata  # type: ignore[import-not-found]

        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            try:
                arr = np.asarray(getattr(skdata, name)())
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
                items.append((name, cap_original(arr[:, :, :3].astype(np.uint8)), None, (arr.shape[1], arr.shape[0])))
            except Exception:  # noqa: BLE001 - a missing optional photo is simply skipped
                continue
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images  # type: ignore[import-not-found]

        for name, arr in zip(("china", "flower"), load_sample_images().images):
            items.append((name, cap_original(np.asarray(arr, dtype=np.uint8)), None, (arr.shape[1], arr.shape[0])))
    except Exception:  # noqa: BLE001 - optional package, optional data
        pass
    return items
