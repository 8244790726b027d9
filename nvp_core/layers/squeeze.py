"""The two space-to-channel squeezes of the official Real NVP code.

Both turn every 2×2 block of a channel into four channels; they differ only in
the order of those channels, and the order decides what a channel-wise mask
(first half / second half) splits:

* ``squeeze`` (the *plain* one, ``squeeze_2x2`` in the official code) is
  ``F.pixel_unshuffle``: channel ``4c + 2r + s`` holds offset (r, s) of input
  channel c. Each half of the channels then holds pixels of *both* checkerboard
  colours, so channel-wise couplings run on it mix the image along a split the
  checkerboard couplings never used.
* ``squeeze_ordered`` (``squeeze_2x2(alternate=True)``) puts offsets (0,0),
  (1,1), (0,1), (1,0) in that order, channel-major: the first half is one
  checkerboard colour, the second half the other. The factor-out uses it, so
  ``z^(k)`` is exactly one colour of each 2×2 block.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Offsets (r, s) of the ordered squeeze, as indices r*2+s into pixel_unshuffle's
# per-channel groups: (0,0) → 0, (1,1) → 3, (0,1) → 1, (1,0) → 2.
_ORDER = (0, 3, 1, 2)
_INVERSE = tuple(_ORDER.index(i) for i in range(4))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, 4C, H/2, W/2), channel 4c + 2r + s = x[c, 2i+r, 2j+s]."""
    return F.pixel_unshuffle(x, 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`squeeze`."""
    return F.pixel_shuffle(x, 2)


def squeeze_ordered(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, 4C, H/2, W/2), offsets (0,0),(1,1) first: one checkerboard colour per half."""
    n, c, h, w = x.shape
    y = F.pixel_unshuffle(x, 2).view(n, c, 4, h // 2, w // 2)
    return y[:, :, list(_ORDER)].transpose(1, 2).reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze_ordered(x: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`squeeze_ordered`."""
    n, c4, h, w = x.shape
    c = c4 // 4
    y = x.view(n, 4, c, h, w).transpose(1, 2)[:, :, list(_INVERSE)]
    return F.pixel_shuffle(y.reshape(n, c4, h, w), 2)
