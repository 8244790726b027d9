"""Space-to-channel squeeze with the ordering of the official Real NVP code.

Each 2×2 block of a channel becomes four channels ordered (0,0), (1,1), (0,1),
(1,0). The first half of the squeezed channels is therefore one checkerboard
colour and the second half the other, so factoring out the second half removes
exactly the pixels that the last checkerboard coupling transformed.
"""
from __future__ import annotations

import torch

# (row, col) offsets inside a 2x2 block, in output order.
_ORDER = ((0, 0), (1, 1), (0, 1), (1, 0))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, 4C, H/2, W/2)."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
    parts = [blocks[:, :, :, r, :, s] for r, s in _ORDER]
    return torch.cat(parts, dim=1)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """(N, 4C, H, W) → (N, C, 2H, 2W); exact inverse of :func:`squeeze`."""
    n, c4, h, w = x.shape
    c = c4 // 4
    out = x.new_empty(n, c, h, 2, w, 2)
    for i, (r, s) in enumerate(_ORDER):
        out[:, :, :, r, :, s] = x[:, i * c:(i + 1) * c]
    return out.reshape(n, c, 2 * h, 2 * w)
