"""Reading user images into uint8 RGB arrays, whatever their mode or depth.

Users drop anything: grayscale scans, RGBA screenshots, palette GIFs, CMYK
JPEGs, 16-bit PNGs and TIFFs. Each is converted the way a person would expect
(alpha composited on white, 16-bit scaled, not clipped) and a file that cannot
be decoded raises DataError with the file's name, never a PIL traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")

# Decompression bombs: refuse absurd images instead of eating all memory.
Image.MAX_IMAGE_PIXELS = 20000 * 20000


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def find_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursively), sorted for reproducibility."""
    root = Path(root)
    if root.is_file():
        return [root] if is_image_path(root) else []
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def open_image(path: str | os.PathLike) -> Image.Image:
    """An RGB PIL image, EXIF orientation applied; DataError if unreadable."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.seek(0)  # first frame of animations
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _to_rgb(img)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path.name}: not a readable image ({exc.__class__.__name__}: {exc})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) array."""
    return np.asarray(open_image(path), dtype=np.uint8).copy()


def center_crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """Largest centred box of the given aspect (w/h) inside a width×height image."""
    if width / height > aspect:
        w = max(1, round(height * aspect))
        left = (width - w) // 2
        return left, 0, left + w, height
    h = max(1, round(width / aspect))
    top = (height - h) // 2
    return 0, top, width, top + h


def fit_image(
    img: Image.Image | np.ndarray,
    height: int,
    width: int | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Centre-crop to the target aspect (or crop ``box``) and resize: uint8 (height, width, 3).

    Downscaling uses a box/antialiased filter (LANCZOS), so small training sizes
    see the photo rather than aliasing.
    """
    width = width or height
    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.ascontiguousarray(img.astype(np.uint8)))
    img = _to_rgb(img)
    if box is None:
        box = center_crop_box(img.width, img.height, width / height)
    out = img.resize((width, height), Image.Resampling.LANCZOS, box=box)
    return np.asarray(out, dtype=np.uint8).copy()


def load_images(
    paths: Iterable[str | os.PathLike], height: int, width: int | None = None
) -> tuple[np.ndarray, list[Path], list[str]]:
    """Load and fit many files; unreadable ones are skipped and reported.

    Returns (uint8 (N, H, W, 3), the paths loaded, one message per skipped file).
    """
    arrays, ok, skipped = [], [], []
    for p in paths:
        try:
            arrays.append(fit_image(open_image(p), height, width))
            ok.append(Path(p))
        except DataError as exc:
            skipped.append(str(exc))
    if arrays:
        return np.stack(arrays), ok, skipped
    return np.zeros((0, height, width or height, 3), np.uint8), ok, skipped


def save_image(arr: np.ndarray, path: str | os.PathLike) -> None:
    """uint8 (H, W, 3) → file by extension, atomically (a full disk keeps the old file)."""
    import io as _io

    from .io import atomic_write_bytes

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
           ".tiff": "TIFF", ".gif": "GIF"}.get(path.suffix.lower(), "PNG")
    buf = _io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())


def grid(images: Sequence[np.ndarray] | np.ndarray, cols: int, pad: int = 2, value: int = 255) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 images into one picture, row-major, with padding."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, c), value, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out
