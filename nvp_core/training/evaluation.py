"""Scoring during training: test bits/dim with fixed noise, and the calibration batches
that give EMA weights their own batch-norm statistics."""
from __future__ import annotations

from typing import Iterator

import torch

from ..data import TrainData, dequantize_batch, derive_seed
from ..flow import RealNVP


def evaluate_bits_per_dim(model: RealNVP, images: torch.Tensor, seed: int = 0, batch_size: int = 256) -> float:
    """Mean bits/dim over uint8 test images: eval mode, noise dequantization, fixed noise.

    Fixed noise (from ``seed``) makes successive evaluations of a run comparable.
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, "eval") % 2**62)
    total, n = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        bpd = model.bits_per_dim(x, noise=True, generator=gen)
        total += float(bpd.double().sum())
        n += len(x)
    return total / max(1, n)


def calibration_batches(data: TrainData, batch_size: int, seed: int, device: torch.device,
                        n_batches: int = 16) -> Iterator[torch.Tensor]:
    """Fixed training batches (the same every call, so successive evaluations compare)."""
    for i in range(n_batches):
        x = data.batch(i, batch_size, seed=derive_seed(seed, "calibration") % 2**31, flip=False)
        yield dequantize_batch(x, i, seed=seed + 7919).to(device)
