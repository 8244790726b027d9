"""Binary masks for coupling layers, cached so the hot path never rebuilds them."""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=256)
def _checkerboard(height: int, width: int, parity: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # Built outside inference mode even when first asked for inside it: the
    # cached tensor is reused later by training, which autograd must accept.
    with torch.inference_mode(False):
        return _build(height, width, parity, device, dtype)


def _build(height: int, width: int, parity: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    mask = ((rows + cols) % 2 == parity).to(dtype)
    return mask.view(1, 1, height, width).to(device)


def checkerboard(height: int, width: int, parity: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) mask, 1 where (i + j) % 2 == parity: the pixels that condition.

    Cached per size/device/dtype: masks depend on the image size, which changes
    freely (extrapolation), so they cannot be buffers of the module.
    """
    return _checkerboard(height, width, parity, str(like.device), like.dtype)
