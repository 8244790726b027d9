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
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

import nvp_core
from ..errors import DataError, ModelFileError, NVPError
from ..flow import RealNVP
from ..images import IMAGE_EXTENSIONS, find_images, is_image_path, load_images, looks_like_image, save_image
from ..io import WEIGHTS_NAME, atomic_write_bytes, load, resolve_device
from .. import limits
from ..paths import model_inputs, refuse_overwriting_inputs
# Argument types and shared options live in the light options module (parsing must not import
# torch); re-exported here for the subcommands' run() code and older imports.
from .options import (  # noqa: F401
    add_batch_arg, add_device_arg, add_model_arg, add_seed_arg, add_size_args, add_zoom_arg, finite_float,
    non_negative_float, positive_int,
)


def resolve_size(args: argparse.Namespace, flow: RealNVP) -> tuple[int, int]:
    """(height, width) from --size/--height/--width, checked against the model."""
    base = args.size or flow.config.image_size
    h, w = args.height or base, args.width or base
    flow.check_size(h, w)
    return h, w


# ---------------------------------------------------------------- model
def load_sized_model(model: str | os.PathLike | None, args: argparse.Namespace) -> tuple[RealNVP, int, int]:
    """The model on ``args.device`` and the (height, width) its --size/--height/--width ask for."""
    flow = load_model(model, args.device)
    h, w = resolve_size(args, flow)
    return flow, h, w


def model_and_images(args: argparse.Namespace) -> tuple[RealNVP, int, int, list[Path]]:
    """The preamble of the ``[MODEL] IMAGES...`` commands: model, size, then the image paths
    (folders expanded), in that order so a bad model fails before any folder is listed."""
    model, image_paths = split_model_and_images(args.paths)
    flow, h, w = load_sized_model(model, args)
    return flow, h, w, expand_image_paths(image_paths)


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
    if p.is_file() and looks_like_image(p):
        raise ModelFileError(f"{p} is an image, not a model: give a model folder or .safetensors file "
                             f"(or leave the model out to use the shipped one)")
    if p.is_dir() and not (p / WEIGHTS_NAME).exists():
        if (p / "model" / WEIGHTS_NAME).exists():  # a training run folder: its final model
            p = p / "model"
        else:
            raise ModelFileError(f"{p} is a folder without {WEIGHTS_NAME}; is it a model folder?")
    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError):
        raise NVPError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    try:
        flow = load(p, device=dev)
    except MemoryError:
        raise ModelFileError(f"not enough memory to load the model {p}") from None
    flow.inputs = model_inputs(p) + model_inputs(flow.source)  # never written over (see check_outputs)
    return flow


# ---------------------------------------------------------------- limits checked before the work
def check_outputs(outputs: Sequence[str | os.PathLike | None], flow: RealNVP | None = None,
                  inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Refuse, before any work, an output path that is one of the inputs (the model's files or
    an input image; symlinks followed): it would be destroyed."""
    refuse_overwriting_inputs(outputs, [*getattr(flow, "inputs", []), *inputs], NVPError)


def check_picture(height: int, width: int, what: str) -> None:
    """One picture we write must stay under the pixel limit (we could not read it back)."""
    pixels = height * width
    if pixels > limits.MAX_OUTPUT_PIXELS:
        raise limits.LimitError(
            f"{what} would be {width:,}×{height:,} = {pixels / 1e6:,.0f} megapixels, above the limit of "
            f"{limits.MAX_OUTPUT_PIXELS / 1e6:,.0f} megapixels for one picture")


def check_grid(rows: int, cols: int, height: int, width: int, zoom: int, what: str) -> None:
    """check_picture for a grid of rows × cols tiles of height × width at ``zoom``
    (2-pixel gutters, as images.grid draws them)."""
    check_picture(rows * (height * zoom + 2) + 2, cols * (width * zoom + 2) + 2, what)


def check_memory(nbytes: int, what: str, device: str = "cpu") -> None:
    """Refuse up front what would not fit in memory (the estimate says which request is at fault)."""
    free = limits.available_memory(device)
    if free is not None and nbytes > 0.8 * free:
        raise limits.LimitError(f"{what} needs about {limits.gib(nbytes)} of memory, more than the "
                                f"{limits.gib(0.8 * free)} available")


def plan_batch(flow: RealNVP, height: int, width: int, batch_size: int) -> int:
    """``batch_size`` or less, so that the estimated activations fit the device's free memory;
    says so when it lowers it. A LimitError when one image alone cannot fit (the size is at fault)."""
    planned = limits.plan_batch(flow.config, height, width, batch_size, flow.device)
    if planned < batch_size:
        warn(f"--batch-size {batch_size} would not fit in memory at {height}×{width}; using {planned}")
    return planned


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


_OOM_HINT = "out of memory while computing: lower --batch-size (or --scale / --size / --n), or use another --device"


def _looks_like_model(path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    if path.is_dir():
        return (path / WEIGHTS_NAME).exists() or (path / "model" / WEIGHTS_NAME).exists()
    return not is_image_path(path) and not looks_like_image(path)


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
