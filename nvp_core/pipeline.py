"""The flow's work on many images: encode, decode, sample, sphere points, information loss.

One headless implementation under the CLI, the figures and the explorer. Every
call decodes in chunks (memory stays bounded whatever N is; eval mode makes the
result chunk-independent), and takes two optional callables:

* ``progress(fraction)``: called with the fraction of the work done, in (0, 1],
  after every scale of every chunk decoded (so one large canvas still moves);
* ``cancel()``: asked between those steps; when it returns True the call raises
  :class:`nvp_core.errors.Cancelled`. A ``progress`` callback may also raise
  ``Cancelled`` itself, which is how the explorer's render worker stops a stale task.

Noise is drawn on the CPU from a seed, so a picture is the same on CPU and CUDA
and does not depend on the chunk size.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .angles import Angles3
from .density import bits_per_dim_from_log_prob
from .errors import Cancelled, ShapeError
from .flow import RealNVP
from .latents import Latents, concat, make_generator, resample, sphere_batch
from .preprocess import dequantize, from_numpy_image, to_numpy_image

Progress = Callable[[float], None]
Cancel = Callable[[], bool]
# Pixels per decode chunk when no batch size is given: 16 images at 32×32, fewer
# when they are larger, so a grid of big tiles does not take all the memory.
PIXELS_PER_CHUNK = 16 * 32 * 32


class _Steps:
    """Counts units of work, reports them as fractions and stops on a cancel."""

    def __init__(self, total: int, progress: Progress | None = None, cancel: Cancel | None = None) -> None:
        self.total = max(1, int(total))
        self.done = 0
        self.progress = progress
        self.cancel = cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("stopped on request")

    def step(self) -> None:
        """One unit finished: report, then stop here if a cancel came meanwhile."""
        self.done += 1
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total))
        self.check()


def chunk_size(height: int, width: int, batch_size: int | None = None) -> int:
    """Images per chunk: ``batch_size`` when given, else what fits :data:`PIXELS_PER_CHUNK`."""
    if batch_size is not None:
        return max(1, int(batch_size))
    return max(1, PIXELS_PER_CHUNK // max(1, height * width))


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def image_size_of(zs: Sequence[torch.Tensor]) -> tuple[int, int]:
    """The (height, width) whose latents these are (the last level is 2^(L−1) times smaller)."""
    m = 2 ** (len(zs) - 1)
    return zs[-1].shape[2] * m, zs[-1].shape[3] * m


def decode_images(flow: RealNVP, zs: Sequence[torch.Tensor], batch_size: int | None = None,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """Latents (N, …) per level → uint8 (N, H, W, C), decoded a chunk at a time."""
    n = zs[0].shape[0]
    if n == 0:
        raise ShapeError("nothing to decode: the latents hold no images")
    chunks = _chunks(n, chunk_size(*image_size_of(zs), batch_size))
    steps = _Steps(len(chunks) * len(zs), progress, cancel)
    steps.check()
    out = []
    dev = flow.device
    with torch.inference_mode(), flow.evaluating():
        for i, j in chunks:
            out.append(to_numpy_image(flow.decode([z[i:j].to(dev) for z in zs], steps.step)))
    return np.concatenate(out)


def encode_and_score(flow: RealNVP, images: np.ndarray, batch_size: int | None = None,
                     progress: Progress | None = None, cancel: Cancel | None = None) -> tuple[Latents, np.ndarray]:
    """uint8 (N, H, W, C) → (latents [z^(1) … z^(L)] on the flow's device, bits/dim (N,)).

    One forward pass per chunk gives both: the latents and the log-determinant it
    returns are all the density needs. Midpoint dequantization, so one image always
    has one latent and uint8 → encode → decode → uint8 is exact.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ShapeError(f"expected a non-empty batch of images (N, H, W, C), got shape {images.shape}")
    flow.check_size(images.shape[1], images.shape[2])
    chunks = _chunks(images.shape[0], chunk_size(images.shape[1], images.shape[2], batch_size))
    steps = _Steps(len(chunks), progress, cancel)
    steps.check()
    parts: list[Latents] = []
    bpds = []
    with torch.inference_mode(), flow.evaluating():
        for i, j in chunks:
            x = dequantize(from_numpy_image(images[i:j]).to(flow.device), noise=False)
            zs, logdet = flow(x)
            lp = flow.prior_log_prob(zs) + logdet
            bpds.append(bits_per_dim_from_log_prob(lp, x[0].numel()).float().cpu().numpy())
            parts.append(zs)
            steps.step()
    return concat(parts), np.concatenate(bpds)


def encode_images(flow: RealNVP, images: np.ndarray, batch_size: int | None = None,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> Latents:
    """uint8 (N, H, W, C) → latents [z^(1) … z^(L)] on the flow's device (see :func:`encode_and_score`)."""
    return encode_and_score(flow, images, batch_size, progress, cancel)[0]


def sample_images(flow: RealNVP, n: int, height: int | None = None, width: int | None = None,
                  temperature: float = 0.7, seed: int = 0, batch_size: int | None = None,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """n samples from one seed, uint8 (n, H, W, C); H, W default to the training size.

    The flow is convolutional, so any size that is a multiple of 2^(L−1) works (extrapolation).
    """
    if n < 1:
        raise ShapeError(f"the number of samples must be ≥ 1, got {n}")
    height = height or flow.config.image_size
    width = width or height
    zs = flow.sample_latents(n, height, width, temperature, make_generator(seed))
    return decode_images(flow, zs, batch_size, progress, cancel)


def seeded_latents(flow: RealNVP, seeds: Iterable[int], height: int | None = None, width: int | None = None,
                   temperature: float = 0.7) -> list[Latents]:
    """One latent list (batch of one) per seed, each from its own generator, so a
    sample never depends on the others drawn with it (anchors, canvas ``seed + i``)."""
    height = height or flow.config.image_size
    width = width or height
    return [flow.sample_latents(1, height, width, temperature, int(s)) for s in seeds]


def sample_seeded(flow: RealNVP, seeds: Sequence[int], height: int | None = None, width: int | None = None,
                  temperature: float = 0.7, batch_size: int | None = None,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """One sample per seed, uint8 (len(seeds), H, W, C): image i is the single sample of seed i.
    Latents are drawn a chunk at a time, so 64 canvases of 512×512 never sit in memory at once."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ShapeError("the number of samples must be ≥ 1, got 0")
    height = height or flow.config.image_size
    width = width or height

    def latents(i: int, j: int) -> Latents:
        return concat(seeded_latents(flow, seeds[i:j], height, width, temperature))

    return _decode_in_chunks(flow, len(seeds), chunk_size(height, width, batch_size), latents, progress, cancel)


def sphere_images(flow: RealNVP, anchors: Sequence[Latents], angles: Sequence[Angles3],
                  batch_size: int | None = None, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> np.ndarray:
    """The sphere points at ``angles`` (radians, (φ, φ′, φ″) each) through eight anchors:
    uint8 (len(angles), H, W, C). Latents are mixed a chunk at a time just before
    decoding, so memory holds one chunk whatever the number of angles."""
    angles = list(angles)
    if not angles:
        raise ShapeError("nothing to decode: no angles given")

    def latents(i: int, j: int) -> Latents:
        with torch.inference_mode():
            return sphere_batch(anchors, angles[i:j])

    size = chunk_size(*image_size_of(anchors[0]), batch_size)
    return _decode_in_chunks(flow, len(angles), size, latents, progress, cancel)


def _decode_in_chunks(flow: RealNVP, n: int, size: int, latents: Callable[[int, int], Latents],
                      progress: Progress | None, cancel: Cancel | None) -> np.ndarray:
    """Decode n images whose latents ``latents(i, j)`` makes only when chunk [i, j) is due."""
    chunks = _chunks(n, size)
    parts = []
    for c, (i, j) in enumerate(chunks):
        sub = None if progress is None else part_progress(progress, c, len(chunks))
        parts.append(decode_images(flow, latents(i, j), size, sub, cancel))
    return np.concatenate(parts)


def part_progress(progress: Progress, part: int, parts: int) -> Progress:
    """Part ``part`` of ``parts`` equal parts of one piece of work, as fractions of the whole."""
    return lambda f: progress((part + f) / parts)


def infoloss_level_sets(levels: int, include_all: bool = False) -> list[list[int]]:
    """Level sets of the seed figure's columns: [], [1], [1, 2], …, [1..L−1] (and [1..L]).

    The coarsest level is kept by default: it is what carries the image's identity
    in the figure; replacing it too gives a plain sample.
    """
    last = levels if include_all else levels - 1
    return [list(range(1, k + 1)) for k in range(0, last + 1)]


def infoloss_columns(flow: RealNVP, zs: Sequence[torch.Tensor], level_sets: Sequence[Iterable[int]],
                     temperature: float = 1.0, seed: int = 0, mode: str = "noise",
                     batch_size: int | None = None, progress: Progress | None = None,
                     cancel: Cancel | None = None) -> np.ndarray:
    """uint8 (N, K, H, W, C): the N encoded images decoded with each level set of
    ``level_sets`` replaced by fresh ε ~ N(0, T²I) (or zeros); the empty set is g(z).

    Every column uses the same seed, and :func:`nvp_core.resample` draws the noise of
    each level in order whether it is used or not, so ε^(1) is the same in every
    column: the columns degrade one level at a time, as in the seed figure.
    """
    with torch.inference_mode():
        batch = concat([resample(zs, sorted(levels), temperature=temperature, generator=make_generator(seed),
                                 mode=mode) for levels in level_sets])
    frames = decode_images(flow, batch, batch_size, progress, cancel)  # column-major: K blocks of N
    n, k = zs[0].shape[0], len(level_sets)
    return frames.reshape(k, n, *frames.shape[1:]).swapaxes(0, 1)
