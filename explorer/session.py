"""What the explorer is looking at, as plain Python: no Qt here.

A user action changes a :class:`Session`; a panel then asks the session for a
*task* — a closure over a snapshot of the state it needs (the flow, some
latents, the angles) — and hands it to the render worker. Tasks never read the
session again, so the GUI thread may keep changing it while a task runs, and
the same code is testable without a window.

All the mathematics goes through ``nvp_core``: fitting images, encode/decode
under ``torch.inference_mode()``, ``nc.resample``, ``nc.sphere``,
``nc.sphere_batch`` and ``nc.level_images``.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

import nvp_core as nc
from nvp_core.errors import DataError, ModelFileError, NVPError
from nvp_core.images import find_images, fit_image, grid, is_image_path, read_image

from .session_file import (  # the file format lives there; these names stay importable from here
    N_ANCHORS, SESSION_FORMAT, SESSION_SUFFIX, SESSION_VERSION, SessionDocument, read_session,
    write_session,
)

Latents = list[torch.Tensor]
# An image to encode: (name, original uint8 (H, W, 3), source path or None[, (width, height) of the file])
Item = tuple
Progress = Callable[[float], None]
Task = Callable[[Progress], Any]

# Originals are kept (for re-fitting when a model of another size is opened) but
# capped, so a folder of 40-megapixel photos does not fill memory or a session file.
ORIGINAL_MAX_SIDE = 512
# Images per decode batch: bounds peak memory for grids and sweeps and gives the
# worker a point to report progress and notice a cancel between chunks.
DECODE_PIXELS_PER_CHUNK = 16 * 32 * 32


def _no_progress(_: float) -> None:
    return None


class StaleLatents(Exception):
    """Raised by a task whose latents belong to a model that has since been replaced.

    Between a model change and the re-encode that follows it, a view may still ask
    for a render of the old latents; the render worker drops such a task silently
    (like a cancelled one), and the re-encode's ``images_changed``/``anchors_changed``
    brings the fresh render.
    """


def _stale_task(progress: Progress) -> Any:
    raise StaleLatents("latents of a replaced model")


def _fits(flow: nc.RealNVP, owner: Any) -> bool:
    made_by = getattr(owner, "encoded_by", None)
    return made_by is None or made_by is flow


# ---------------------------------------------------------------- pieces of state
@dataclass
class ImageEntry:
    """One loaded image, fitted to the model's size and encoded."""

    name: str
    original: np.ndarray  # uint8 (H0, W0, 3), capped at ORIGINAL_MAX_SIDE
    pixels: np.ndarray  # uint8 (H, W, 3) at the model's size
    latents: Latents  # [z^(1)…z^(L)], each (1, C_k, H_k, W_k), on the flow's device
    recon: np.ndarray  # uint8 (H, W, 3): decode(encode(x))
    bpd: float  # bits/dim with midpoint dequantization
    levels: list[np.ndarray]  # per level, float32 (C_in, h_k, w_k): z^(k) in the input's layout
    source: str | None = None
    z_norm: float = 0.0  # ‖z‖ over all levels (≈ √D for a typical sample)
    box: tuple[int, int, int, int] | None = None  # a chosen crop of ``original``; None = centre crop
    original_size: tuple[int, int] | None = None  # (width, height) of the file itself; None = original's
    # The flow whose latents these are: after a model change, work asked for before the
    # re-encode lands would decode old latents with the new flow (a spurious "expected 2
    # latent levels, got 4"); such work is dropped instead (see :class:`StaleLatents`).
    encoded_by: Any = field(default=None, repr=False, compare=False)

    @property
    def true_size(self) -> tuple[int, int]:
        """(width, height) of the image as the file has it (``original`` may be decoded reduced and capped)."""
        return self.original_size or (int(self.original.shape[1]), int(self.original.shape[0]))


@dataclass
class Anchor:
    """One of the manifold's eight slots: an encoded image or a model sample."""

    kind: str  # "image" or "sample"
    label: str
    latents: Latents
    thumbnail: np.ndarray  # uint8 (H, W, 3): what the slot shows (the decoded anchor)
    original: np.ndarray | None = None  # kind "image": re-encoded when the model changes
    seed: int | None = None  # kind "sample": re-drawn when the model changes
    temperature: float | None = None
    encoded_by: Any = field(default=None, repr=False, compare=False)  # as ImageEntry.encoded_by


@dataclass
class Angles:
    """φ, φ′, φ″ in degrees (what the sliders show); the maths takes radians."""

    phi: float = 0.0
    phi1: float = 0.0
    phi2: float = 0.0

    def radians(self) -> tuple[float, float, float]:
        return (math.radians(self.phi), math.radians(self.phi1), math.radians(self.phi2))

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.phi, self.phi1, self.phi2)


@dataclass
class InfoLossSettings:
    """Which levels are replaced by ε^(k), how (noise at temperature T, or zeros) and with which seed."""

    levels: set[int] = field(default_factory=set)
    temperature: float = 1.0
    seed: int = 0
    mode: str = "noise"  # "noise" | "zero"


@dataclass
class CanvasSettings:
    """Extrapolation canvas; width/height 0 mean "the model's training size"."""

    width: int = 0
    height: int = 0
    temperature: float = 0.7
    seed: int = 0
    count: int = 1


# ---------------------------------------------------------------- pure helpers
def image_to_tensor(pixels: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (H,W,3) or (N,H,W,3) → uint8 torch (N,3,H,W)."""
    return nc.from_numpy_image(np.asarray(pixels, dtype=np.uint8))


def cap_original(arr: np.ndarray, max_side: int = ORIGINAL_MAX_SIDE) -> np.ndarray:
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return np.ascontiguousarray(arr, dtype=np.uint8)
    scale = max_side / max(h, w)
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
    img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given (any extension: a wrong file gets its own message), folders searched for images."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(find_images(p))
        else:
            out.append(p)
    return out


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


def _chunks(n: int, per: int) -> list[range]:
    per = max(1, per)
    return [range(i, min(n, i + per)) for i in range(0, n, per)]


def _chunk_size(height: int, width: int) -> int:
    return max(1, DECODE_PIXELS_PER_CHUNK // max(1, height * width))


def decode_images(flow: nc.RealNVP, zs: Latents, progress: Progress = _no_progress) -> np.ndarray:
    """Latents (batch N) → uint8 (N, H, W, 3), decoded in memory-bounded chunks."""
    n = zs[0].shape[0]
    h, w = _image_hw(zs)
    out = []
    chunks = _chunks(n, _chunk_size(h, w))
    dev = flow.device
    with torch.inference_mode(), flow.evaluating():
        for i, idx in enumerate(chunks):
            part = [z[idx.start:idx.stop].to(dev) for z in zs]
            out.append(nc.to_numpy_image(flow.decode(part)))
            progress((i + 1) / len(chunks))
    return np.concatenate(out, axis=0)


def _image_hw(zs: Latents) -> tuple[int, int]:
    """The image size whose latents these are (the last level is 2^(L−1) times smaller)."""
    m = 2 ** (len(zs) - 1)
    return zs[-1].shape[2] * m, zs[-1].shape[3] * m


def level_maps(zs: Latents) -> list[np.ndarray]:
    """Per level, float32 (C_in, h_k, w_k): z^(k) in the input's layout (nc.level_images), sample 0."""
    with torch.inference_mode():
        return [lv[0].float().cpu().numpy() for lv in nc.level_images([z[:1].float().cpu() for z in zs])]


def encode_pixels(
    flow: nc.RealNVP, pixels: np.ndarray, progress: Progress = _no_progress
) -> tuple[list[Latents], np.ndarray, np.ndarray]:
    """uint8 (N,H,W,3) → (per-image latents, reconstructions uint8, bits/dim (N,)).

    Midpoint dequantization: the same picture always gives the same latents, and
    uint8 → encode → decode → uint8 is exact.
    """
    n = pixels.shape[0]
    h, w = pixels.shape[1:3]
    latents: list[Latents] = []
    recons, bpds = [], []
    chunks = _chunks(n, _chunk_size(h, w))
    dev = flow.device
    with torch.inference_mode(), flow.evaluating():
        for i, idx in enumerate(chunks):
            x8 = image_to_tensor(pixels[idx.start:idx.stop]).to(dev)
            x = nc.dequantize(x8, noise=False)
            zs = flow.encode(x)
            bpds.append(flow.bits_per_dim(x8, noise=False).float().cpu().numpy())
            recons.append(nc.to_numpy_image(flow.decode(zs)))
            for j in range(len(idx)):
                latents.append(nc.select(zs, j))
            progress((i + 1) / len(chunks))
    return latents, np.concatenate(recons), np.concatenate(bpds)


def model_size(flow: nc.RealNVP) -> tuple[int, int]:
    s = flow.config.image_size
    return s, s


def check_box(box: Sequence[int], original: np.ndarray) -> tuple[int, int, int, int]:
    """A crop (left, top, right, bottom) clipped to the image; DataError if nothing is left."""
    h, w = original.shape[:2]
    left, top, right, bottom = (int(round(v)) for v in box)
    left, right = max(0, min(left, w)), max(0, min(right, w))
    top, bottom = max(0, min(top, h)), max(0, min(bottom, h))
    if right - left < 1 or bottom - top < 1:
        raise DataError(f"the crop {tuple(box)} does not overlap the {w}×{h} image")
    return left, top, right, bottom


def encode_items(
    flow: nc.RealNVP, items: Sequence[tuple[str, np.ndarray, str | None]], progress: Progress = _no_progress,
    boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
) -> list[ImageEntry]:
    """(name, original, source) triples → encoded :class:`ImageEntry` objects at the model's size.

    Each original is centre-cropped to the model's aspect and resized, or cropped
    to its entry of ``boxes`` (left, top, right, bottom in the original's pixels).
    """
    if not items:
        return []
    items = [tuple(it) + (None,) * (4 - len(it)) for it in items]
    h, w = model_size(flow)
    boxes = list(boxes or [])[:len(items)]
    boxes += [None] * (len(items) - len(boxes))
    boxes = [None if b is None else check_box(b, it[1]) for b, it in zip(boxes, items)]
    fitted = np.stack([fit_image(it[1], h, w, box=b) for b, it in zip(boxes, items)])
    latents, recons, bpds = encode_pixels(flow, fitted, progress)
    return [
        ImageEntry(name=name, original=orig, pixels=fitted[i], latents=latents[i], recon=recons[i],
                   bpd=float(bpds[i]), levels=level_maps(latents[i]), source=src,
                   z_norm=float(torch.sqrt(sum((z.float() ** 2).sum() for z in latents[i]))), box=boxes[i],
                   original_size=tuple(size) if size else None, encoded_by=flow)
        for i, (name, orig, src, size) in enumerate(items)
    ]


def default_box(original: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """The centre crop :func:`fit_image` takes by default (where a crop editor starts)."""
    from nvp_core.images import center_crop_box

    return center_crop_box(original.shape[1], original.shape[0], width / height)


def fit_caption(entry: ImageEntry) -> str:
    """What the model sees of an image, in words: "32×32, centre crop of 15000×15000 (kept at 512×512)".

    Sizes are the file's true ones (the kept original may be decoded reduced and
    capped), and an image smaller than the model's input says it was enlarged.
    """
    h, w = entry.pixels.shape[:2]
    tw, th = entry.true_size
    kh, kw = entry.original.shape[:2]
    left, top, right, bottom = entry.box or default_box(entry.original, h, w)
    text = f"{w}×{h}, {'chosen crop' if entry.box else 'centre crop'} of {tw}×{th}"
    if (kw, kh) != (tw, th):
        text += f" (kept at {kw}×{kh})"
    crop_w, crop_h = (right - left) * tw / kw, (bottom - top) * th / kh  # the crop in the file's pixels
    factor = max(w / crop_w, h / crop_h)
    if factor > 1.0 + 1e-6:
        text += f"; enlarged {factor:.3g}× (smaller than the model's {w}×{h} input)"
    return text


def size_text(entry: ImageEntry) -> str:
    tw, th = entry.true_size
    return f"{tw}×{th}"


def sample_anchor(flow: nc.RealNVP, seed: int, temperature: float, label: str | None = None) -> Anchor:
    """A model sample as a manifold anchor; its seed re-draws it for another model."""
    return sample_anchors(flow, [seed], temperature, [label])[0]


def sample_anchors(flow: nc.RealNVP, seeds: Sequence[int], temperature: float,
                   labels: Sequence[str | None] | None = None, progress: Progress = _no_progress) -> list[Anchor]:
    """One anchor per seed (each seed its own generator, so an anchor never depends on the
    others drawn with it), decoded as one batch."""
    h, w = model_size(flow)
    labels = list(labels) if labels is not None else [None] * len(seeds)
    with torch.inference_mode():
        per_seed = [flow.sample_latents(1, h, w, temperature=temperature, generator=int(s)) for s in seeds]
        zs = nc.concat(per_seed)
    thumbs = decode_images(flow, zs, progress)
    return [Anchor(kind="sample", label=lab or f"sample {seed}", latents=z, thumbnail=thumbs[i],
                   seed=int(seed), temperature=float(temperature), encoded_by=flow)
            for i, (seed, lab, z) in enumerate(zip(seeds, labels, per_seed))]


def image_anchor(entry: ImageEntry) -> Anchor:
    return Anchor(kind="image", label=entry.name, latents=entry.latents, thumbnail=entry.recon,
                  original=entry.original, encoded_by=entry.encoded_by)


def infoloss_image(
    flow: nc.RealNVP, zs: Latents, levels: Iterable[int], temperature: float, seed: int, mode: str
) -> np.ndarray:
    """Decode z with the chosen levels replaced by ε^(k) (or zeros): uint8 (H, W, 3)."""
    with torch.inference_mode(), flow.evaluating():
        z2 = nc.resample(zs, sorted(levels), temperature=temperature, generator=int(seed), mode=mode)
        return nc.to_numpy_image(flow.decode(z2))[0]


def infoloss_strip(
    flow: nc.RealNVP, zs: Latents, temperature: float, seed: int, mode: str,
    progress: Progress = _no_progress,
) -> list[np.ndarray]:
    """The seed page's figure for one image: [g(z), g(ε¹, z²…), g(ε¹, ε², z³…), …], L columns.

    Every column uses the same seed, so ε^(1) is the same noise in all of them and
    the strip shows only what each further level adds.
    """
    levels = len(zs)
    batch = []
    for k in range(levels):
        batch.append(nc.resample(zs, range(1, k + 1), temperature=temperature, generator=int(seed), mode=mode))
    with torch.inference_mode():
        frames = decode_images(flow, nc.concat(batch), progress)
    return list(frames)


def manifold_image(flow: nc.RealNVP, anchors: Sequence[Latents], angles: Angles) -> np.ndarray:
    """The decoded point of the sphere at the given angles: uint8 (H, W, 3)."""
    with torch.inference_mode(), flow.evaluating():
        zs = nc.sphere(anchors, *angles.radians())
        return nc.to_numpy_image(flow.decode(zs))[0]


def manifold_frames(
    flow: nc.RealNVP, anchors: Sequence[Latents], angles_deg: Sequence[tuple[float, float, float]],
    progress: Progress = _no_progress,
) -> np.ndarray:
    """Many sphere points (degrees) decoded in batches: uint8 (N, H, W, 3)."""
    rad = [tuple(math.radians(a) for a in t) for t in angles_deg]
    with torch.inference_mode():
        zs = nc.sphere_batch(anchors, rad)
    return decode_images(flow, zs, progress)


def manifold_grid_angles(phi2: float, n: int = 8) -> list[tuple[float, float, float]]:
    """Row-major n×n angles: rows step φ, columns step φ′ over [0°, 90°] (z1 top-left … z7 bottom-right)."""
    steps = [90.0 * i / (n - 1) for i in range(n)] if n > 1 else [0.0]
    return [(a, b, phi2) for a in steps for b in steps]


def sweep_angles(start: Angles, which: str, frames: int, span: float = 360.0) -> list[tuple[float, float, float]]:
    """``frames`` angle triples moving one angle (``"phi"``, ``"phi1"``, ``"phi2"``) over ``span`` degrees."""
    if which not in ("phi", "phi1", "phi2"):
        raise ValueError(f"unknown angle {which!r}")
    out = []
    for i in range(frames):
        a = Angles(*start.as_tuple())
        setattr(a, which, (getattr(start, which) + span * i / frames) % 360.0)
        out.append(a.as_tuple())
    return out


def model_summary(flow: nc.RealNVP) -> dict[str, Any]:
    """What the Model tab shows: config, parameter count, size on disk, device, metadata."""
    cfg = flow.config
    params = sum(p.numel() for p in flow.parameters())
    source = getattr(flow, "source", None)
    size = None
    if source and Path(source).exists():
        size = Path(source).stat().st_size
    raw = getattr(flow, "metadata", None)
    # Metadata comes from the file: a list, a string or NaN there must not break the card.
    meta = dict(raw) if isinstance(raw, dict) else {}
    return {
        "config": cfg.to_dict(),
        "parameters": params,
        "file_bytes": size,
        "source": source,
        "device": str(flow.device),
        "levels": cfg.scales,
        "latent_shapes": flow.latent_shapes(cfg.image_size, cfg.image_size),
        "metadata": meta,
        "test_bpd": find_test_bpd(meta),
        "metadata_problem": None if raw is None or isinstance(raw, dict)
        else f"the file's metadata is {type(raw).__name__}, not an object; ignored",
    }


def find_test_bpd(meta: dict[str, Any], _depth: int = 0) -> float | None:
    """The test bits/dim recorded by training, under any of the names the trainer may use."""
    if not isinstance(meta, dict) or _depth > 4:
        return None
    for key in ("test_bpd", "test_bits_per_dim", "bpd_test", "test/bpd"):
        v = meta.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v)
    for key in ("eval", "test", "metrics"):
        sub = meta.get(key)
        if isinstance(sub, dict):
            bpd = sub.get("bpd")
            found = find_test_bpd(sub, _depth + 1) or (
                bpd if isinstance(bpd, (int, float)) and not isinstance(bpd, bool) and math.isfinite(bpd) else None)
            if found is not None:
                return float(found)
    return None


def load_model(path: str | os.PathLike, device: str | None = "auto") -> nc.RealNVP:
    """nc.load with the device resolved; every failure is a ModelFileError with a clear message."""
    p = Path(path)
    if p.suffix.lower() == ".json" and p.parent.joinpath("model.safetensors").exists():
        p = p.parent  # a config.json next to the weights: open the model folder
    try:
        return nc.load(p, device=str(nc.resolve_device(device)))
    except NVPError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"cannot open {p.name}: {exc}") from None


def is_model_path(path: str | os.PathLike) -> bool:
    """A weights file or a model folder (has model.safetensors): what a drop onto the window opens as a model."""
    p = Path(path)
    if p.is_dir():
        return (p / "model.safetensors").exists()
    return p.suffix.lower() == ".safetensors"


def is_session_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == SESSION_SUFFIX


def example_images() -> list[tuple[str, np.ndarray, str | None]]:
    """A few photos that ship inside optional packages (scikit-image, scikit-learn), for a quick start."""
    items: list[tuple[str, np.ndarray, str | None]] = []
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


# ---------------------------------------------------------------- the session
class Session:
    """The explorer's state. Lives on the GUI thread; tasks snapshot what they need."""

    def __init__(self) -> None:
        self.flow: nc.RealNVP | None = None
        self.model_path: str | None = None
        self.model_generation = 0  # bumps on every model change; results of older models are dropped
        self.images: list[ImageEntry] = []
        self.current = -1
        self.anchors: list[Anchor | None] = [None] * N_ANCHORS
        self.angles = Angles()
        self.infoloss = InfoLossSettings()
        self.canvas = CanvasSettings()

    # ---- model
    @property
    def has_model(self) -> bool:
        return self.flow is not None

    @property
    def levels(self) -> int:
        return self.flow.config.scales if self.flow is not None else 0

    @property
    def image_size(self) -> tuple[int, int]:
        return model_size(self.require_flow())

    def require_flow(self) -> nc.RealNVP:
        if self.flow is None:
            raise ModelFileError("no model is open: open one with File ▸ Open model…")
        return self.flow

    def set_model(self, flow: nc.RealNVP, path: str | os.PathLike | None = None) -> None:
        """Switch models. Latents of the old model mean nothing to the new one, so they
        are dropped here and the caller re-encodes (:meth:`reencode_task`)."""
        self.flow = flow
        self.model_path = str(path) if path is not None else getattr(flow, "source", None)
        self.model_generation += 1
        self.infoloss.levels = {k for k in self.infoloss.levels if 1 <= k <= flow.config.scales}

    # ---- images
    def add_images(self, entries: Sequence[ImageEntry]) -> None:
        if not entries:
            return
        self.images.extend(entries)
        self.current = len(self.images) - len(entries)

    def remove_image(self, index: int) -> None:
        if 0 <= index < len(self.images):
            del self.images[index]
            self.current = min(self.current, len(self.images) - 1)

    def clear_images(self) -> None:
        self.images.clear()
        self.current = -1

    @property
    def current_image(self) -> ImageEntry | None:
        if 0 <= self.current < len(self.images):
            return self.images[self.current]
        return None

    # ---- anchors
    def set_anchor(self, slot: int, anchor: Anchor | None) -> None:
        if not 0 <= slot < N_ANCHORS:
            raise IndexError(f"anchor slot {slot + 1} out of 1..{N_ANCHORS}")
        self.anchors[slot] = anchor

    @property
    def anchors_complete(self) -> bool:
        return all(a is not None for a in self.anchors)

    def empty_slots(self) -> list[int]:
        return [i for i, a in enumerate(self.anchors) if a is None]

    def anchor_latents(self) -> list[Latents]:
        missing = self.empty_slots()
        if missing:
            names = ", ".join(f"z{i + 1}" for i in missing)
            raise DataError(f"the manifold needs all eight anchors; empty: {names}")
        return [a.latents for a in self.anchors]  # type: ignore[union-attr]

    # ---- tasks: closures over a snapshot, run on the render worker
    def encode_task(self, items: Sequence[tuple[str, np.ndarray, str | None]]) -> Task:
        flow = self.require_flow()
        items = list(items)
        return lambda progress: encode_items(flow, items, progress)

    def read_and_encode_task(self, paths: Sequence[str | os.PathLike]) -> Task:
        """Read files/folders and encode them: (entries, error messages)."""
        flow = self.require_flow()
        paths = list(paths)

        def run(progress: Progress) -> tuple[list[ImageEntry], list[str]]:
            items, errors = read_images(paths)
            return encode_items(flow, items, progress), errors

        return run

    def recrop_task(self, index: int, box: tuple[int, int, int, int] | None) -> Task:
        """Re-fit image ``index`` from its original with a chosen crop (None = centre): (index, entry)."""
        flow = self.require_flow()
        e = self.images[index]
        item = (e.name, e.original, e.source, e.original_size)
        return lambda progress: (index, encode_items(flow, [item], progress, boxes=[box])[0])

    def infoloss_task(self) -> Task:
        flow = self.require_flow()
        zs = self.subject_latents()
        if not _fits(flow, self.current_image):
            return _stale_task
        s = self.infoloss
        levels, t, seed, mode = sorted(s.levels), s.temperature, s.seed, s.mode
        return lambda progress: infoloss_image(flow, zs, levels, t, seed, mode)

    def infoloss_strip_task(self) -> Task:
        flow = self.require_flow()
        zs = self.subject_latents()
        if not _fits(flow, self.current_image):
            return _stale_task
        s = self.infoloss
        t, seed, mode = s.temperature, s.seed, s.mode
        return lambda progress: infoloss_strip(flow, zs, t, seed, mode, progress)

    def subject_latents(self) -> Latents:
        entry = self.current_image
        if entry is None:
            raise DataError("no image to work on: open or drop an image first")
        return entry.latents

    def manifold_task(self, angles: Angles | None = None) -> Task:
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not all(_fits(flow, a) for a in self.anchors):
            return _stale_task
        a = Angles(*(angles or self.angles).as_tuple())
        return lambda progress: manifold_image(flow, anchors, a)

    def manifold_grid_task(self, n: int = 8) -> Task:
        """The n×n grid over (φ, φ′) at the current φ″, decoded on the worker: (grid image, frames)."""
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not all(_fits(flow, a) for a in self.anchors):
            return _stale_task
        angles = manifold_grid_angles(self.angles.phi2, n)

        def run(progress: Progress) -> np.ndarray:
            frames = manifold_frames(flow, anchors, angles, progress)
            return grid(frames, cols=n, pad=1, value=24)

        return run

    def manifold_sweep_task(self, which: str, frames: int, span: float = 360.0) -> Task:
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not all(_fits(flow, a) for a in self.anchors):
            return _stale_task
        angles = sweep_angles(self.angles, which, frames, span)
        return lambda progress: list(manifold_frames(flow, anchors, angles, progress))

    def sample_anchors_task(self, slots: Sequence[int], seeds: Sequence[int], temperature: float) -> Task:
        flow = self.require_flow()
        pairs = list(zip(slots, seeds))

        def run(progress: Progress) -> list[tuple[int, Anchor]]:
            anchors = sample_anchors(flow, [seed for _, seed in pairs], temperature, progress=progress)
            return [(slot, a) for (slot, _), a in zip(pairs, anchors)]

        return run

    def samples_task(self, n: int, temperature: float, seed: int) -> Task:
        """n model samples at the training size as one uint8 grid (the Model tab's preview)."""
        flow = self.require_flow()
        h, w = model_size(flow)

        def run(progress: Progress) -> np.ndarray:
            with torch.inference_mode():
                zs = flow.sample_latents(n, h, w, temperature=temperature, generator=int(seed))
            frames = decode_images(flow, zs, progress)
            return grid(frames, cols=int(math.ceil(math.sqrt(n))), pad=1, value=24)

        return run

    def reencode_task(self) -> Task:
        """Everything model-dependent, recomputed for the current model: (entries, anchors).

        Images are re-fitted from their originals (the new model may have another
        size); image anchors are re-encoded, sample anchors re-drawn from their seeds.
        """
        flow = self.require_flow()
        items = [(e.name, e.original, e.source, e.original_size) for e in self.images]
        boxes = [e.box for e in self.images]
        anchors = list(self.anchors)

        def run(progress: Progress) -> tuple[list[ImageEntry], list[Anchor | None]]:
            entries = encode_items(flow, items, boxes=boxes)
            new_anchors: list[Anchor | None] = []
            for a in anchors:
                new_anchors.append(_rebuild_anchor(flow, a))
            progress(1.0)
            return entries, new_anchors

        return run

    # ---- persistence
    def to_document(self) -> dict[str, Any]:
        """The JSON part of a saved session (images are written beside it)."""
        return {
            "format": SESSION_FORMAT,
            "version": SESSION_VERSION,
            "model": self.model_path,
            "current": self.current,
            "angles": asdict(self.angles),
            "infoloss": {**asdict(self.infoloss), "levels": sorted(self.infoloss.levels)},
            "canvas": asdict(self.canvas),
            "images": [{"name": e.name, "file": f"images/{i:03d}.png", "source": e.source,
                        "box": list(e.box) if e.box else None, "size": list(e.true_size)}
                       for i, e in enumerate(self.images)],
            "anchors": [_anchor_doc(i, a) for i, a in enumerate(self.anchors)],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the session as one zip: session.json + the images as PNG (atomic)."""
        anchor_images = {i: a.original for i, a in enumerate(self.anchors)
                         if a is not None and a.kind == "image" and a.original is not None}
        return write_session(path, self.to_document(), [e.original for e in self.images], anchor_images)

    def apply_document(self, doc: "SessionDocument") -> None:
        """Take the plain settings of a loaded session; images and anchors come from
        :meth:`restore_task` (they need the model)."""
        self.angles = Angles(*doc.angles)
        self.infoloss = InfoLossSettings(**{**asdict(InfoLossSettings()), **doc.infoloss})
        self.canvas = CanvasSettings(**{**asdict(CanvasSettings()), **doc.canvas})

    def restore_task(self, doc: "SessionDocument") -> Task:
        """Encode a loaded session's images and anchors with the current model: (entries, anchors, current)."""
        flow = self.require_flow()

        def run(progress: Progress) -> tuple[list[ImageEntry], list[Anchor | None], int]:
            entries = encode_items(flow, doc.images, boxes=doc.boxes)
            anchors: list[Anchor | None] = []
            for spec in doc.anchors:
                if spec is None:
                    anchors.append(None)
                elif spec["kind"] == "image":
                    anchors.append(_rebuild_anchor(flow, Anchor("image", spec["label"], [], spec["original"],
                                                                 original=spec["original"])))
                else:
                    anchors.append(sample_anchor(flow, spec["seed"], spec["temperature"], spec["label"]))
            progress(1.0)
            return entries, anchors, doc.current

        return run


def _rebuild_anchor(flow: nc.RealNVP, a: Anchor | None) -> Anchor | None:
    if a is None:
        return None
    if a.kind == "sample":
        return sample_anchor(flow, a.seed or 0, a.temperature if a.temperature is not None else 1.0, a.label)
    if a.original is None:
        return None
    entry = encode_items(flow, [(a.label, a.original, None)])[0]
    return Anchor(kind="image", label=a.label, latents=entry.latents, thumbnail=entry.recon, original=a.original,
                  encoded_by=flow)


def _anchor_doc(i: int, a: Anchor | None) -> dict[str, Any] | None:
    if a is None:
        return None
    if a.kind == "sample":
        return {"kind": "sample", "label": a.label, "seed": a.seed, "temperature": a.temperature}
    if a.original is None:
        return None
    return {"kind": "image", "label": a.label, "file": f"anchors/{i + 1}.png"}


__all__ = [
    "Anchor", "Angles", "CanvasSettings", "ImageEntry", "InfoLossSettings", "N_ANCHORS", "SESSION_SUFFIX",
    "Session", "SessionDocument", "StaleLatents", "decode_images", "fit_caption", "size_text", "write_session", "encode_items", "example_images", "expand_paths",
    "image_anchor", "infoloss_image", "infoloss_strip", "is_image_path", "is_model_path", "is_session_path",
    "level_maps", "load_model", "manifold_frames", "manifold_grid_angles", "manifold_image", "model_summary",
    "read_images", "read_session", "sample_anchor", "sample_anchors", "sweep_angles",
]
