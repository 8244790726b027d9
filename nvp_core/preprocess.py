"""Between 8-bit images and the continuous x_in ∈ [0,1) the flow models.

x_in = (x + u) / 256 with u ~ U[0,1) (training, honest evaluation) or u = ½
(showing one image). :func:`quantize` is the exact inverse of the midpoint
choice, so uint8 → encode → decode → uint8 is lossless.
"""
from __future__ import annotations

import numpy as np
import torch


def dequantize(
    x_uint8: torch.Tensor, noise: bool | torch.Tensor = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """uint8 (N,C,H,W) → float32 in [0,1).

    ``noise`` True draws u ~ U[0,1) (from ``generator`` on the CPU when given), False
    takes the midpoint u = ½, and a tensor is u itself: the trainer draws the noise
    of a whole distributed batch and passes each rank its slice.
    """
    x = x_uint8.to(torch.float32)
    if isinstance(noise, torch.Tensor):
        x = x + noise.to(x.device, torch.float32)
    elif noise:
        u = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
        x = x + u.to(x.device)
    else:
        x = x + 0.5
    return x / 256.0


def quantize(x: torch.Tensor) -> torch.Tensor:
    """float in [0,1] → uint8, the inverse of midpoint dequantization."""
    return torch.clamp(torch.floor(x * 256.0), 0, 255).to(torch.uint8)


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(C,H,W) or (N,C,H,W) float in [0,1] → uint8 (H,W,C) / (N,H,W,C) numpy for display and PIL."""
    q = quantize(x.detach().float().cpu())
    if q.dim() == 3:
        return q.permute(1, 2, 0).contiguous().numpy()
    return q.permute(0, 2, 3, 1).contiguous().numpy()


def from_numpy_image(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H,W,C) or (N,H,W,C) numpy → uint8 torch (N,C,H,W)."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() == 2:
        t = t[:, :, None]
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).contiguous()
