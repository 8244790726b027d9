"""Training data: user image folders and the built-in ``photo-crops`` set.

Everything is decoded once, up front, into uint8 tensors held in memory, so the
training loop only indexes and slices tensors — no PIL work per step, no worker
processes to keep fed. Batches are a pure function of ``(seed, step)``: the data
order, the crop positions, the flips and the dequantization noise of step ``t``
are the same whether the run was interrupted and resumed or not, and whether
one process or ``world`` processes (each taking its slice of the global batch)
train.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .errors import DataError
from .images import find_images, fit_image, open_image
from .preprocess import dequantize

log = logging.getLogger(__name__)

PHOTO_CROPS = "photo-crops"
SHAPES = "shapes"  # procedural scenes with known factors (nvp_core.shapes)
# The built-in data sets, by the name `nvp train` and the Training tab accept.
BUILTIN_DATASETS: tuple[str, ...] = (PHOTO_CROPS, SHAPES)
CROP_MODES = ("center", "random")

# Colour photographs that ship inside pip packages (no download, no pooch):
# (package, path inside the package, name). Grayscale test images (camera, moon,
# brick…) are left out: an RGB model of gray pictures learns a different thing.
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "astronaut"),
    ("skimage", "data/chelsea.png", "chelsea"),
    ("skimage", "data/coffee.png", "coffee"),
    ("skimage", "data/rocket.jpg", "rocket"),
    ("skimage", "data/hubble_deep_field.jpg", "hubble_deep_field"),
    ("skimage", "data/motorcycle_left.png", "motorcycle_left"),
    ("skimage", "data/motorcycle_right.png", "motorcycle_right"),
    ("skimage", "data/retina.jpg", "retina"),
    ("skimage", "data/ihc.png", "ihc"),
    ("sklearn", "datasets/images/china.jpg", "china"),
    ("sklearn", "datasets/images/flower.jpg", "flower"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper"),
)
DATA_EXTRA_HINT = "install the optional data packages with `pip install -e .[data]` (scikit-image, scikit-learn, matplotlib)"


# --------------------------------------------------------------------------- seeding
def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from (seed, step, purpose…): independent streams without shared state.

    Hashing makes every (seed, step, tag) stream unrelated to its neighbours, and a
    resumed run re-derives exactly the same numbers.
    """
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def generator(*parts: int | str) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(*parts))
    return gen


class _Order:
    """Sample order: one fixed permutation per (seed, epoch), read at global positions."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        perm = self._cache.get(epoch)
        if perm is None:
            perm = torch.randperm(self.n, generator=generator(self.seed, epoch, "order"))
            if len(self._cache) > 2:
                self._cache.clear()
            self._cache[epoch] = perm
        return perm

    def indices(self, start: int, count: int) -> torch.Tensor:
        pos = torch.arange(start, start + count)
        epochs = pos // self.n
        out = torch.empty(count, dtype=torch.long)
        for e in torch.unique(epochs).tolist():
            sel = epochs == e
            out[sel] = self._perm(int(e))[pos[sel] % self.n]
        return out


# --------------------------------------------------------------------------- data sets
@dataclass
class TrainData:
    """What the Trainer needs: a deterministic batch source and a fixed test set.

    ``test`` is uint8 (N, 3, S, S) from images or regions never used for training.
    """

    name: str
    size: int
    test: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:  # samples per epoch
        raise NotImplementedError

    def _gather(self, start: int, count: int, step: int, seed: int, offset: int, total: int) -> torch.Tensor:
        """Samples at global positions [start, start+count): the slice [offset, offset+count)
        of step ``step``'s global batch of ``total``."""
        raise NotImplementedError

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
              flip: bool = True) -> torch.Tensor:
        """uint8 (batch_size, 3, S, S): shard ``rank`` of ``world`` of global batch ``step``.

        The global batch (``batch_size × world`` samples) is the same however it is
        sharded, so 2 DDP processes see exactly the samples of 1 process with two
        accumulation micro-batches (or one batch twice as large).
        """
        global_bs = batch_size * world
        x = self._gather(step * global_bs + rank * batch_size, batch_size, step, seed, rank * batch_size, global_bs)
        if flip:
            mask = torch.rand(global_bs, generator=generator(seed, step, "flip")) < 0.5
            mask = mask[rank * batch_size:(rank + 1) * batch_size]
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        return x


class TensorData(TrainData):
    """A fixed set of uint8 training images held in memory (centre crops, photo crops)."""

    def __init__(self, name: str, train: torch.Tensor, test: torch.Tensor, info: dict | None = None) -> None:
        if train.dtype != torch.uint8 or train.dim() != 4 or train.shape[1] != 3:
            raise DataError(f"training images must be uint8 (N, 3, H, W), got {train.dtype} {tuple(train.shape)}")
        if len(train) == 0:
            raise DataError(f"{name}: no training images")
        super().__init__(name=name, size=int(train.shape[-1]), test=test, info=dict(info or {}))
        self.train = train.contiguous()
        self._orders: dict[int, _Order] = {}

    def __len__(self) -> int:
        return len(self.train)

    def _gather(self, start: int, count: int, step: int, seed: int, offset: int, total: int) -> torch.Tensor:
        order = self._orders.setdefault(seed, _Order(len(self.train), seed))
        return self.train[order.indices(start, count)]


class RandomCropData(TrainData):
    """Random crops of whole images kept in memory (texture sets).

    Each sample picks an image and a crop position from its (seed, step) stream and
    slices the uint8 tensor: no resampling per step. An epoch is nominally one crop
    per image.
    """

    def __init__(self, name: str, images: Sequence[torch.Tensor], size: int, test: torch.Tensor,
                 info: dict | None = None) -> None:
        images = [im for im in images if im.shape[1] >= size and im.shape[2] >= size]
        if not images:
            raise DataError(f"{name}: no image is at least {size}×{size} pixels after the train/test split")
        super().__init__(name=name, size=size, test=test, info=dict(info or {}))
        self.images = [im.contiguous() for im in images]
        self._orders: dict[int, _Order] = {}

    def __len__(self) -> int:
        return max(len(self.images), 1)

    def _gather(self, start: int, count: int, step: int, seed: int, offset: int, total: int) -> torch.Tensor:
        order = self._orders.setdefault(seed, _Order(len(self.images), seed))
        which = order.indices(start, count)
        # Crop positions drawn for the whole global batch, then sliced: any sharding
        # of the step sees the same crops.
        u = torch.rand(total, 2, generator=generator(seed, step, "crop"), dtype=torch.float64)[offset:offset + count]
        s = self.size
        out = torch.empty(count, 3, s, s, dtype=torch.uint8)
        for i, k in enumerate(which.tolist()):
            im = self.images[k]
            top = int(u[i, 0] * (im.shape[1] - s + 1))
            left = int(u[i, 1] * (im.shape[2] - s + 1))
            out[i] = im[:, top:top + s, left:left + s]
        return out


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------- folders
def _is_test_file(rel: str, fraction: float) -> bool:
    """Stable held-out membership by a hash of the relative path: adding files never moves others."""
    h = int.from_bytes(hashlib.blake2b(rel.encode(), digest_size=8).digest(), "little")
    return (h / 2**64) < fraction


def _decode_all(paths: Sequence[Path], fn, workers: int) -> tuple[list, list[str]]:
    """Decode with a thread pool (PIL releases the GIL while decoding and resizing).

    Returns (one result or None per path, in order; one message per failed file).
    """
    def one(p: Path):
        try:
            return fn(p), None
        except DataError as exc:
            return None, str(exc)
        except Exception as exc:  # a decoder bug on one odd file must not end the run
            return None, f"{p.name}: {exc.__class__.__name__}: {exc}"

    if workers > 1 and len(paths) > 8:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, paths))
    else:
        results = [one(p) for p in paths]
    return [r for r, _ in results], [err for _, err in results if err is not None]


def _report_skipped(name: str, errors: list[str], stacklevel: int = 3) -> None:
    if errors:
        msg = f"{name}: skipped {len(errors)} unreadable file(s), e.g. {errors[0]}"
        log.warning(msg)
        warnings.warn(msg, stacklevel=stacklevel)


def _default_workers(workers: int) -> int:
    """``workers``, or when 0 a decoding thread per core, at most 8 (decoding runs in C, off the GIL)."""
    return workers or min(8, os.cpu_count() or 1)


def _decode_folder(root: Path, paths: Sequence[Path], decode, workers: int) -> tuple[list[tuple[Path, np.ndarray]], int]:
    """(path, array) of every file ``decode`` could read, in order, and how many it could not.
    The skipped ones are reported once (the warning points at load_folder's caller); a
    DataError when none could be read."""
    results, errors = _decode_all(paths, decode, workers)
    _report_skipped(str(root), errors, stacklevel=5)  # _decode_folder ← _folder_* ← load_folder ← caller
    decoded = [(p, a) for p, a in zip(paths, results) if a is not None]
    if not decoded:
        raise DataError(f"{root}: none of the {len(paths)} image file(s) could be read ({errors[0]})")
    return decoded, len(errors)


def load_folder(
    root: str | os.PathLike,
    size: int,
    crop: str = "center",
    test_fraction: float = 0.05,
    seed: int = 0,
    workers: int = 0,
    max_side: int | None = None,
    n_test_crops: int = 512,
) -> TrainData:
    """A user folder (any tree of images) as training data.

    ``crop="center"``: every image centre-cropped and resized to size×size; a stable
    hashed ``test_fraction`` of files is held out. ``crop="random"`` (textures):
    images are downscaled so the shorter side is at most ``max_side`` (default 4×size)
    and each image's bottom ``test_fraction`` strip (at least ``size`` rows) is held
    out, so train and test crops come from disjoint regions.
    """
    root = Path(root)
    if crop not in CROP_MODES:
        raise DataError(f"crop mode must be one of {CROP_MODES}, got {crop!r}")
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    paths = find_images(root)
    if not paths:
        raise DataError(f"{root} holds no image files ({', '.join(e[1:] for e in _exts())})")
    workers = _default_workers(workers)
    if crop == "center":
        return _folder_center(root, paths, size, test_fraction, workers)
    return _folder_random(root, paths, size, test_fraction, workers, max_side, n_test_crops, seed)


def _folder_center(root: Path, paths: Sequence[Path], size: int, test_fraction: float, workers: int) -> TensorData:
    """load_folder's ``crop="center"``: whole images, a hashed split of the files."""
    name = str(root)
    decoded, skipped = _decode_folder(root, paths, lambda p: fit_image(open_image(p, size), size), workers)
    pairs = [(str(p.relative_to(root)) if root.is_dir() else p.name, a) for p, a in decoded]
    is_test = [_is_test_file(rel, test_fraction) for rel, _ in pairs]
    if all(is_test) or not any(is_test):
        # Too few files for a hashed split: hold out the last file when possible.
        is_test = [False] * len(pairs)
        if len(pairs) >= 2:
            is_test[-1] = True
    train = [a for (_, a), t in zip(pairs, is_test) if not t]
    test = [a for (_, a), t in zip(pairs, is_test) if t]
    if not test:
        warnings.warn(f"{name}: only one image, the test bits/dim is measured on the training image",
                      stacklevel=3)  # load_folder's caller
        test = train
    info = {"files": len(pairs), "skipped": skipped, "train_images": len(train),
            "test_images": len(test), "crop": "center", "test_split": f"hashed {test_fraction:.0%} of files"}
    return TensorData(name, torch.stack([_chw(a) for a in train]), torch.stack([_chw(a) for a in test]), info)


def _folder_random(root: Path, paths: Sequence[Path], size: int, test_fraction: float, workers: int,
                   max_side: int | None, n_test_crops: int, seed: int) -> RandomCropData:
    """load_folder's ``crop="random"``: downscaled images, each one's bottom strip held out."""
    cap = max_side or 4 * size

    def decode(p: Path) -> np.ndarray:
        img = open_image(p, cap)  # decoded reduced when much larger than needed
        short = min(img.size)
        if short > cap:
            scale = cap / short
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8).copy()

    decoded, skipped = _decode_folder(root, paths, decode, workers)
    arrays = [a for _, a in decoded]
    train_imgs, test_regions = [], []
    for a in arrays:
        h = a.shape[0]
        band = max(size, int(round(h * test_fraction)))
        if h - band >= size:
            train_imgs.append(_chw(a[: h - band]))
            test_regions.append(_chw(a[h - band:]))
        elif h >= size:  # too small to split: train only
            train_imgs.append(_chw(a))
    if not test_regions:
        raise DataError(f"{root}: images are too small to hold out a test strip at size {size} "
                        f"(need at least {2 * size} rows)")
    test = _crops_from_regions(test_regions, size, n_test_crops, seed, "test", scales=1.0)
    info = {"files": len(arrays), "skipped": skipped, "train_images": len(train_imgs),
            "crop": "random", "test_split": f"bottom {test_fraction:.0%} strip of each image",
            "test_crops": len(test)}
    return RandomCropData(str(root), train_imgs, size, test, info)


def _exts() -> tuple[str, ...]:
    from .images import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


def _crops_from_regions(regions: Sequence[torch.Tensor], size: int, n: int, seed: int, tag: str,
                        scales: float) -> torch.Tensor:
    """``n`` crops spread equally over regions, at native scale, deterministic for ``seed``."""
    gen = generator(seed, tag)
    out = []
    per = [n // len(regions) + (1 if i < n % len(regions) else 0) for i in range(len(regions))]
    for reg, k in zip(regions, per):
        _, h, w = reg.shape
        if h < size or w < size or k == 0:
            continue
        tops = torch.randint(0, h - size + 1, (k,), generator=gen)
        lefts = torch.randint(0, w - size + 1, (k,), generator=gen)
        for t, l in zip(tops.tolist(), lefts.tolist()):
            out.append(reg[:, t:t + size, l:l + size])
    return torch.stack(out)


# --------------------------------------------------------------------------- photo-crops
def photo_paths() -> list[tuple[str, Path]]:
    """(name, file) of the shipped photos, located without importing the packages."""
    found, missing_pkgs, missing_files = [], set(), []
    for pkg, rel, name in PHOTOS:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            missing_pkgs.add(pkg)
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            found.append((name, path))
        else:
            missing_files.append(name)
    if missing_pkgs:
        raise DataError(f"the {PHOTO_CROPS} data set needs {', '.join(sorted(missing_pkgs))}: {DATA_EXTRA_HINT}")
    if missing_files:
        warnings.warn(f"{PHOTO_CROPS}: photos missing from the installed packages: {', '.join(missing_files)}",
                      stacklevel=2)
    if len(found) < 2:
        raise DataError(f"the {PHOTO_CROPS} data set found only {len(found)} photo(s); {DATA_EXTRA_HINT}")
    return found


def _random_boxes(gen: torch.Generator, n: int, top: int, bottom: int, width: int, size: int,
                  max_side: int) -> list[tuple[int, int, int, int]]:
    """Square boxes inside rows [top, bottom), sides log-uniform in [size, max_side]."""
    u = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    ratio = math.log2(max_side / size) if max_side > size else 0.0
    boxes = []
    for a, b, c in u.tolist():
        side = min(max_side, max(size, int(round(size * 2.0 ** (a * ratio)))))
        y = top + int(b * (bottom - top - side + 1))
        x = int(c * (width - side + 1))
        boxes.append((x, y, x + side, y + side))
    return boxes


def _usable_photos(photos: list[tuple[str, Path]], size: int, test_fraction: float,
                   max_scale: float) -> list[tuple[str, Image.Image, int, int]]:
    """(name, image, test strip height, largest crop side) of each photo big enough for size×size crops."""
    imgs = [(name, open_image(p)) for name, p in photos]
    usable = []
    for name, img in imgs:
        band = int(round(img.height * test_fraction))
        max_side = int(min(max_scale * size, band, img.width))
        if max_side < size:
            # stacklevel 3: the warning points at load_photo_crops' caller, as before it was split
            warnings.warn(f"{PHOTO_CROPS}: {name} is too small for {size}×{size} crops; left out", stacklevel=3)
            continue
        usable.append((name, img, band, max_side))
    if len(usable) < 2:
        raise DataError(f"{PHOTO_CROPS}: too few photos are large enough for size {size}")
    return usable


def _photo_crops(seed: int, size: int, name: str, img: Image.Image, band: int, max_side: int, split: str,
                 n: int) -> np.ndarray:
    """``n`` crops of one photo from its ``split`` region, resized to size×size: uint8 (n, size, size, 3)."""
    gen = generator(seed, size, name, split)
    top, bottom = (0, img.height - band) if split == "train" else (img.height - band, img.height)
    boxes = _random_boxes(gen, n, top, bottom, img.width, size, max_side)
    # Resize from the split's own region: PIL's filter taps reach past a box's
    # edge, and must not read pixels of the other split.
    region = img.crop((0, top, img.width, bottom))
    return np.stack([np.asarray(region.resize((size, size), Image.Resampling.LANCZOS,
                                              box=(l, t - top, r, b - top)), np.uint8)
                     for l, t, r, b in boxes])


def _photo_split(usable: list[tuple[str, Image.Image, int, int]], split: str, total: int, seed: int, size: int,
                 workers: int) -> np.ndarray:
    """``total`` crops of ``split``, shared out evenly over the photos (on ``workers`` threads when > 1)."""
    k = len(usable)
    per = [total // k + (1 if i < total % k else 0) for i in range(k)]
    jobs = [(seed, size, *u, split, per[i]) for i, u in enumerate(usable) if per[i] > 0]
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda j: _photo_crops(*j), jobs))
    else:
        parts = [_photo_crops(*j) for j in jobs]
    return np.concatenate(parts)


def load_photo_crops(
    size: int = 32,
    n_train: int = 50000,
    n_test: int = 2000,
    seed: int = 0,
    test_fraction: float = 0.25,
    max_scale: float = 4.0,
    workers: int = 0,
) -> TensorData:
    """The built-in natural-image set: square crops of photos that ship in pip packages.

    Each photo is split into disjoint regions: its top ``1 − test_fraction`` rows give
    training crops, its bottom strip gives test crops only, so test bits/dim measures
    unseen image content. Crop sides are log-uniform between ``size`` and
    ``min(max_scale·size, strip height)`` — the same range for train and test of a
    photo — and are resized to size×size (antialiased). Every photo contributes the
    same number of crops. Deterministic for ``seed``.
    """
    photos = photo_paths()
    workers = _default_workers(workers)
    usable = _usable_photos(photos, size, test_fraction, max_scale)
    train = torch.from_numpy(_photo_split(usable, "train", n_train, seed, size, workers)).permute(0, 3, 1, 2).contiguous()
    test = torch.from_numpy(_photo_split(usable, "test", n_test, seed, size, workers)).permute(0, 3, 1, 2).contiguous()
    info = {
        "photos": [u[0] for u in usable], "train_crops": len(train), "test_crops": len(test),
        "test_split": f"bottom {test_fraction:.0%} strip of each photo (train crops never touch it)",
        "crop_sides": f"log-uniform in [{size}, min({max_scale:g}x{size}, strip height)] px, resized",
        "seed": seed,
    }
    return TensorData(PHOTO_CROPS, train, test, info)


def load_data(
    source: str | os.PathLike,
    size: int,
    crop: str = "center",
    seed: int = 0,
    workers: int = 0,
    n_train: int = 50000,
    n_test: int = 2000,
) -> TrainData:
    """A built-in set (BUILTIN_DATASETS) or a folder path → TrainData; DataError before any training if unusable."""
    if str(source) == PHOTO_CROPS:
        return load_photo_crops(size, n_train=n_train, n_test=n_test, seed=seed, workers=workers)
    if str(source) == SHAPES:
        from .shapes import load_shapes  # shapes builds on TrainData: a module-level import would be a cycle

        return load_shapes(size, n_train=n_train, n_test=n_test, seed=seed, workers=_default_workers(workers))
    return load_folder(source, size, crop=crop, seed=seed, workers=workers)


@dataclass(frozen=True)
class HeldOut:
    """Which held-out images a model is judged on: the built-in set, seed and test-split size it
    trained with (from its metadata), so a card, a benchmark, a figure and a test all score the
    same images the trainer's own evaluation used. A model trained on a folder (or with no
    record) is compared on photo-crops with the trainer's defaults."""

    data: str = PHOTO_CROPS
    seed: int = 0
    n_test: int = 2000

    @classmethod
    def of(cls, metadata: object) -> "HeldOut":
        meta = metadata if isinstance(metadata, dict) else {}
        tc = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else {}
        name = meta.get("data", tc.get("data"))
        try:
            seed, n_test = int(tc.get("seed", 0)), int(tc.get("n_test_crops", 2000))
        except (TypeError, ValueError):
            seed, n_test = 0, 2000
        return cls(name if name in BUILTIN_DATASETS else PHOTO_CROPS, seed, max(1, n_test))

    def describe(self) -> str:
        return f"{self.data} test split (seed {self.seed}, {self.n_test} images)"

    def load(self, size: int, n_test: int | None = None) -> torch.Tensor:
        """The first ``n_test`` (default: all) test images at ``size``, uint8 (N, C, H, W).

        Always generated at the model's full split size, then sliced: photo-crops spreads its
        split over the photos, so a split of 512 is not the first 512 crops of a split of 2000."""
        n = self.n_test if n_test is None else max(1, min(int(n_test), self.n_test))
        return load_data(self.data, size, n_train=1, n_test=self.n_test, seed=self.seed).test[:n]


def dequantize_batch(x_uint8: torch.Tensor, step: int, seed: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Noise-dequantized float batch whose noise is a function of (seed, step) and the rank's slice.

    The noise of the whole global batch is drawn and sliced, so a rank's samples get
    the same u as in a single-process run over the global batch.
    """
    n = x_uint8.shape[0]
    u = torch.rand((n * world, *x_uint8.shape[1:]), generator=generator(seed, step, "noise"))
    return dequantize(x_uint8, noise=u[rank * n:(rank + 1) * n])


def png_bits_per_dim(images: torch.Tensor | np.ndarray, optimize: bool = True) -> float:
    """Mean size of each image as a lossless PNG, in bits per sub-pixel.

    The sanity anchor for a density model's test bits/dim: a model that does not
    beat PNG on the same images has not learned much. Each image is its own file,
    so the ~70 bytes of PNG headers and chunks count, as they would for a codec
    applied per image.
    """
    import io as _io

    arr = images.permute(0, 2, 3, 1).numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise DataError(f"png_bits_per_dim expects uint8 images (N, 3, H, W) or (N, H, W, 3), got {arr.shape}")
    total = 0.0
    for a in arr:
        buf = _io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", optimize=optimize, compress_level=9)
        total += 8.0 * buf.tell() / a.size
    return total / len(arr)
