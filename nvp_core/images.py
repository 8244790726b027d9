"""Reading user images into uint8 RGB arrays, whatever their mode or depth.

Users drop anything: grayscale scans, RGBA screenshots, palette GIFs, CMYK
JPEGs, 16-bit PNGs and TIFFs. Each is converted the way a person would expect
(alpha composited on white, 16-bit scaled, not clipped) and a file that cannot
be decoded raises DataError with the file's name, never a PIL traceback.
"""
from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError
from .paths import regular_file_stat

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Picture files we cannot read but recognise, so "this is an image" can be said where a
# model is expected (`nvp encode vector.svg …` must not call an SVG a truncated model).
OTHER_IMAGE_EXTENSIONS = (".svg", ".svgz", ".heic", ".heif", ".avif", ".jxl", ".ico", ".psd", ".xcf",
                          ".pbm", ".pgm", ".ppm", ".pnm", ".tga", ".exr", ".hdr", ".dng", ".cr2", ".nef",
                          ".arw", ".raw", ".jp2", ".j2k", ".eps", ".qoi")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
                b"\x00\x00\x01\x00", b"8BPS", b"\xff\x0a", b"\x00\x00\x00\x0cJXL ", b"qoif")

# One project-wide limit on the pixels an image may have, checked from the file's
# header *before* anything is decoded. Pillow's own guard only raises above twice
# its MAX_IMAGE_PIXELS, and a 95 KB palette PNG of 28000² pixels decoded to 14 GB
# under it. 100 megapixels covers any camera photo; the limit can be raised with
# the environment variable NVP_MAX_IMAGE_PIXELS.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000


def _env_limit() -> int:
    text = os.environ.get("NVP_MAX_IMAGE_PIXELS", "")
    try:
        value = int(float(text)) if text else DEFAULT_MAX_IMAGE_PIXELS
    except ValueError:
        value = DEFAULT_MAX_IMAGE_PIXELS
    return value if value > 0 else DEFAULT_MAX_IMAGE_PIXELS


MAX_IMAGE_PIXELS = _env_limit()
# A baseline JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT domain (Pillow's
# ``draft``), so it may be up to 64× larger than the limit when the reduced image
# fits under it. Progressive JPEGs buffer every coefficient at full size whatever
# the scale, so they get the plain limit.
JPEG_DRAFT_FACTOR = 64

# Pillow's guard stays as a backstop behind ours (it raises above twice this).
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS * JPEG_DRAFT_FACTOR // 2


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def looks_like_image(path: str | os.PathLike) -> bool:
    """True for a picture file, readable or not (by extension, else by its first bytes).

    For telling a user who gave an image where a model was expected what went
    wrong. Only regular files are opened (a FIFO would block).
    """
    p = Path(path)
    if p.suffix.lower() in IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS:
        return True
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):
            return False
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    if head[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1"):
        return True
    text = head.lstrip().lower()
    return text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text)


def find_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursively), sorted for reproducibility."""
    root = Path(root)
    if root.is_file():
        return [root] if is_image_path(root) else []
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Integer or float pixels → uint8 by what the values are, not by a guess.

    Float images in [0, 1] are scaled by 255 (they were black before); values in
    [0, 255] kept; 16-bit data (I;16, or 'I' within 0..65535) scaled by 65535;
    anything wider (int32, floats outside [0, 255]) by its real range. Non-finite
    values become 0; an image with no finite value is refused.
    """
    arr = np.asarray(arr)
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        if not finite.any():
            raise DataError("the image holds no finite pixel values (all NaN or infinite)")
        arr = np.where(finite, arr, 0)
    if arr.size == 0:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    if mode.startswith("I;16"):
        lo, hi = 0.0, 65535.0
    elif lo >= 0 and hi <= 1.0 and arr.dtype.kind == "f":
        lo, hi = 0.0, 1.0
    elif lo >= 0 and hi <= 255:
        lo, hi = 0.0, 255.0
    elif lo >= 0 and hi <= 65535 and arr.dtype.kind in "iu":
        lo, hi = 0.0, 65535.0
    out = np.empty(arr.shape, np.uint8)
    span = hi - lo if hi > lo else 1.0
    rows = max(1, 4_000_000 // max(1, arr.shape[-1]))  # bounded temporaries for big images
    for i in range(0, arr.shape[0], rows):
        part = (arr[i:i + rows].astype(np.float64) - lo) * (255.0 / span) + 0.5
        out[i:i + rows] = np.clip(part, 0, 255).astype(np.uint8)
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I") or img.mode.startswith("F"):
        img = Image.fromarray(_scale_to_uint8(np.asarray(img), img.mode), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


class LoadedImage(NamedTuple):
    """A decoded RGB image and the size the file really has (it may have been decoded reduced)."""

    image: Image.Image
    width: int
    height: int

    @property
    def reduced(self) -> bool:
        return self.image.size != (self.width, self.height)


def _min_size(min_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if min_size is None:
        return None
    if isinstance(min_size, int):
        return (max(1, min_size), max(1, min_size))
    return (max(1, int(min_size[0])), max(1, int(min_size[1])))


def _check_pixels(img: Image.Image, name: str, max_pixels: int) -> None:
    """Refuse from the header alone; says which limit was hit."""
    w, h = img.size
    if w < 1 or h < 1:
        raise DataError(f"{name}: the image is empty ({w}×{h} pixels)")
    pixels = w * h
    if pixels <= max_pixels:
        return
    if img.format == "JPEG" and not img.info.get("progressive") and not img.info.get("progression") \
            and -(-w // 8) * -(-h // 8) <= max_pixels:
        return  # decoded at 1/8 scale or less (see _jpeg_scale)
    raise DataError(f"{name}: {w}×{h} pixels ({pixels / 1e6:,.0f} megapixels) is over {_limit_text(max_pixels)}")


def _limit_text(max_pixels: int) -> str:
    return (f"the limit of {max_pixels / 1e6:,.0f} megapixels per image (nvp_core.images.MAX_IMAGE_PIXELS; "
            f"raise it with NVP_MAX_IMAGE_PIXELS if the image is genuine)")


def _jpeg_scale(w: int, h: int, want: tuple[int, int] | None, limit: int) -> int:
    """The JPEG DCT scale (1, 2, 4, 8): as much reduction as ``want`` allows (with the
    2× margin of :func:`_reduce`), at least as much as the pixel limit needs."""
    scale = 1
    for s in (2, 4, 8):
        if want is not None and w // s >= 2 * want[0] and h // s >= 2 * want[1]:
            scale = s
    for s in (1, 2, 4, 8):
        if s >= scale and -(-w // s) * -(-h // s) <= limit:
            return s
    return 8


def _reduce(img: Image.Image, want: tuple[int, int] | None, max_pixels: int) -> Image.Image:
    """Shrink a loaded image by an integer factor, keeping at least ``want`` in both
    dimensions; also under ``max_pixels`` whatever is wanted."""
    w, h = img.size
    # A 2× margin: the box filter of ``reduce`` then Lanczos down to the final size
    # looks like Lanczos from the full image.
    factor = 1 if want is None else max(1, min(w // (2 * want[0]), h // (2 * want[1])))
    while (w // factor) * (h // factor) > max_pixels:
        factor += 1
    if factor < 2:
        return img
    if img.mode in ("P", "1") or img.mode.startswith("I;16") or img.mode == "PA":
        img = _to_rgb(img)
    return img.reduce(factor)


def _decode(fp: Any, name: str, min_size: int | tuple[int, int] | None, max_pixels: int | None) -> LoadedImage:
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    want = _min_size(min_size)
    try:
        with Image.open(fp) as img:
            img.seek(0)  # first frame of animations
            _check_pixels(img, name, limit)
            width, height = img.size
            if img.format == "JPEG":
                scale = _jpeg_scale(width, height, want, limit)
                if scale > 1:  # DCT-domain reduction: decodes at 1/2..1/8 scale, never the full image
                    img.draft(None, (max(1, width // scale), max(1, height // scale)))
            img.load()
            orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
            img = _reduce(img, want, limit)
            img = ImageOps.exif_transpose(img) or img
            if orientation in (5, 6, 7, 8):  # rotated by 90°: the true size is the rotated one
                width, height = height, width
            return LoadedImage(_to_rgb(img), width, height)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except MemoryError:
        raise DataError(f"{name}: too large to decode (out of memory)") from None
    except Image.DecompressionBombError as exc:  # Pillow's backstop, far above ours
        raise DataError(f"{name}: {exc}; over {_limit_text(limit)}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            EOFError, struct.error, IndexError, TypeError, ZeroDivisionError) as exc:
        raise DataError(f"{name}: not a readable image ({exc.__class__.__name__}: {exc})") from None


def read_image(path: str | os.PathLike, min_size: int | tuple[int, int] | None = None,
               max_pixels: int | None = None) -> LoadedImage:
    """Decode an image file, bounded in memory, with its true size.

    The header is checked against the project's pixel limit (``max_pixels``,
    default :data:`MAX_IMAGE_PIXELS`) before anything is decoded, and anything
    that is not a regular file (a FIFO, a device) is refused before it is opened.
    ``min_size`` (width, height) is what the caller will shrink the image to at
    most: the image is decoded reduced — JPEG at 1/2…1/8 scale, others by an
    integer ``reduce`` — while it still covers twice ``min_size``. A 15000²
    JPEG wanted at 512 decodes as 1875² instead of 225 megapixels.
    """
    path = Path(path)
    regular_file_stat(path, "image", DataError)
    return _decode(path, path.name, min_size, max_pixels)


def decode_image_bytes(data: bytes, name: str, min_size: int | tuple[int, int] | None = None,
                       max_pixels: int | None = None) -> LoadedImage:
    """:func:`read_image` for bytes already in memory (e.g. an image inside a session file)."""
    return _decode(io.BytesIO(data), name, min_size, max_pixels)


def open_image(path: str | os.PathLike, min_size: int | tuple[int, int] | None = None) -> Image.Image:
    """An RGB PIL image, EXIF orientation applied; DataError if unreadable, too large
    or not a regular file. See :func:`read_image` for ``min_size``."""
    return read_image(path, min_size).image


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
            arrays.append(fit_image(open_image(p, (width or height, height)), height, width))
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
