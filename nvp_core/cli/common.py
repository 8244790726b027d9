"""What the inference subcommands share: model and device options, image sizes,
reading images (skipping bad ones with a message), atomic output, progress bars.

Every failure a user can cause ends as an NVPError or OSError with one clear
line; the dispatcher turns those into exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io as _io
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

import nvp_core
from ..errors import DataError, ModelFileError, NVPError
from ..flow import RealNVP
from ..images import IMAGE_EXTENSIONS, find_images, is_image_path, load_images, save_image
from ..io import WEIGHTS_NAME, atomic_write_bytes, load, resolve_device


# ---------------------------------------------------------------- argument types
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


# ---------------------------------------------------------------- options
def add_model_arg(parser: argparse.ArgumentParser) -> None:
    """Optional positional MODEL: a model folder or .safetensors file; the shipped
    default model when left out."""
    parser.add_argument(
        "model", nargs="?", default=None, metavar="MODEL",
        help=f"model folder or .safetensors file (default: the shipped model, {nvp_core.default_model_path()})",
    )


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (cuda when available; default: auto)")


def add_size_args(parser: argparse.ArgumentParser, what: str = "images") -> None:
    parser.add_argument("--size", type=positive_int, default=None,
                        help=f"side of square {what} (default: the model's training size)")
    parser.add_argument("--height", type=positive_int, default=None, help="height (overrides --size)")
    parser.add_argument("--width", type=positive_int, default=None, help="width (overrides --size)")


def add_batch_arg(parser: argparse.ArgumentParser, default: int = 16) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=default,
                        help=f"images per forward pass; lower it to save memory (default: {default})")


def add_zoom_arg(parser: argparse.ArgumentParser, default: int = 1) -> None:
    parser.add_argument("--zoom", type=positive_int, default=default,
                        help=f"nearest-neighbour enlargement of each image so small ones stay visible "
                             f"(default: {default})")


def resolve_size(args: argparse.Namespace, flow: RealNVP) -> tuple[int, int]:
    """(height, width) from --size/--height/--width, checked against the model."""
    base = args.size or flow.config.image_size
    h, w = args.height or base, args.width or base
    flow.check_size(h, w)
    return h, w


# ---------------------------------------------------------------- model
def load_model(path: str | os.PathLike | None, device: str = "auto") -> RealNVP:
    """The model at ``path`` (or the default one) on ``device``, in eval mode."""
    if path is None:
        default = nvp_core.default_model_path()
        if not (default / WEIGHTS_NAME).exists() and not (default.is_file()):
            raise ModelFileError(
                f"no model given and the default model is missing ({default}); pass a model folder or "
                f".safetensors file, or train one with `nvp train photo-crops --out runs/x` and pass runs/x"
            )
        path = default
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"no model at {p}")
    if p.is_dir() and not (p / WEIGHTS_NAME).exists():
        if (p / "model" / WEIGHTS_NAME).exists():  # a training run folder: its final model
            p = p / "model"
        else:
            raise ModelFileError(f"{p} is a folder without {WEIGHTS_NAME}; is it a model folder?")
    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError):
        raise NVPError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    return load(p, device=dev)


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn running out of memory into one clear line with what to lower, not a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except MemoryError:
            raise NVPError(_OOM_HINT) from None
        except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError too
            text = str(exc).lower()
            if "out of memory" in text or "not enough memory" in text or "can't allocate memory" in text:
                raise NVPError(_OOM_HINT) from None
            raise

    return wrapper


_OOM_HINT = "out of memory: lower --batch-size (or --scale / --size / --n), or use another --device"


def _looks_like_model(path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    if path.is_dir():
        return (path / WEIGHTS_NAME).exists() or (path / "model" / WEIGHTS_NAME).exists()
    return not is_image_path(path)


def split_model_and_images(paths: Sequence[str]) -> tuple[str | None, list[str]]:
    """``[MODEL] IMAGES...``: the first path is the model unless it is an image or an
    image folder, so `nvp encode a.png b.png` uses the default model."""
    if paths and _looks_like_model(Path(paths[0])):
        return paths[0], list(paths[1:])
    return None, list(paths)


def expand_image_paths(paths: Sequence[str]) -> list[Path]:
    """Files as given (any extension: a bad one is reported when read), folders expanded."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = find_images(p)
            if not found:
                warn(f"{p}: no images in this folder ({', '.join(IMAGE_EXTENSIONS)})")
            out.extend(found)
        else:
            out.append(p)
    return out


def read_images(paths: Sequence[str | os.PathLike], height: int, width: int) -> tuple[np.ndarray, list[Path]]:
    """Load and fit (centre crop + resize) every readable image; report each skipped
    one on stderr; DataError only when none could be read."""
    images, ok, skipped = load_images(expand_image_paths([str(p) for p in paths]), height, width)
    for msg in skipped:
        warn(f"skipped {msg}")
    if not ok:
        raise DataError("none of the given images could be read" if paths or skipped else "no images given")
    return images, ok


# ---------------------------------------------------------------- output
def warn(message: str) -> None:
    print(f"nvp: {message}", file=sys.stderr)


def write_image(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Atomic write (a full disk keeps any old file); the format follows the extension."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, expected an image file name", str(path))
    save_image(image, path)
    return path


def write_frames(frames: np.ndarray, folder: str | os.PathLike, prefix: str = "frame") -> list[Path]:
    """Numbered PNGs (frame_000.png, …), zero-padded so they sort."""
    folder = Path(folder)
    digits = max(3, len(str(len(frames) - 1)))
    paths = []
    for i, frame in enumerate(frames):
        p = folder / f"{prefix}_{i:0{digits}d}.png"
        save_image(frame, p)
        paths.append(p)
    return paths


def write_animation(frames: np.ndarray, path: str | os.PathLike, fps: float = 12.0) -> Path:
    """Looping animated GIF or WebP (by extension), written atomically."""
    path = Path(path)
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path.name}: animations are written as .gif or .webp")
    pil = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    duration = max(20, int(round(1000.0 / fps)))
    buf = _io.BytesIO()
    extra = {"lossless": True, "method": 4} if fmt == "WEBP" else {"optimize": False, "disposal": 1}
    pil[0].save(buf, format=fmt, save_all=True, append_images=pil[1:], duration=duration, loop=0, **extra)
    atomic_write_bytes(path, buf.getvalue())
    return path


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str = "img") -> Iterator[Callable[[float], None]]:
    """A tqdm bar of ``total`` items on stderr, yielding the ``progress(fraction)`` that
    nvp_core.pipeline calls; hidden when stderr is not a terminal (tqdm's
    ``disable=None``), so logs and tests stay clean."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False, file=sys.stderr)
    try:
        yield lambda fraction: bar.update(round(fraction * total) - bar.n)
    finally:
        bar.close()


def describe(flow: RealNVP) -> str:
    cfg = flow.config
    return (f"{getattr(flow, 'source', 'model')} ({cfg.scales} levels, width {cfg.width}, "
            f"{cfg.blocks} blocks, trained at {cfg.image_size}×{cfg.image_size}, {flow.device})")
