"""Affine coupling layers (checkerboard and channel-wise masks).

y = b⊙x + (1−b)⊙(x⊙exp(s) + t) with s, t computed from b⊙x only, so the
Jacobian is triangular and log|det| = Σ (1−b)⊙s. Scales are bounded as
s = scale·tanh(raw): exp(s) cannot explode, the usual cure for NaNs early on.
"""
from __future__ import annotations

import torch
from torch import nn

from .masks import checkerboard
from .resnet import ResNet


class _BoundedScale(nn.Module):
    """s = scale·tanh(raw); ``scale`` is a learned per-channel magnitude (L2-regularised)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(raw)


class CheckerboardCoupling(nn.Module):
    """Transforms the pixels where (i+j) % 2 != parity, conditioned on the others."""

    def __init__(self, channels: int, width: int, blocks: int, parity: int) -> None:
        super().__init__()
        self.parity = int(parity)
        # Input: the masked image and the mask itself, so the net knows which pixels are given.
        self.net = ResNet(channels + 1, 2 * channels, width, blocks)
        self.bound = _BoundedScale(channels)

    def _st(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = checkerboard(x.shape[2], x.shape[3], self.parity, x)
        xb = x * b
        h = self.net(torch.cat([xb, b.expand(x.shape[0], 1, -1, -1)], dim=1))
        raw, t = h.chunk(2, dim=1)
        inv = 1.0 - b
        return self.bound(raw) * inv, t * inv, b

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t, _ = self._st(x)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t, _ = self._st(y)  # b⊙y == b⊙x: the conditioning pixels pass unchanged
        return (y - t) * torch.exp(-s)


class ChannelCoupling(nn.Module):
    """Transforms one half of the channels conditioned on the other half."""

    def __init__(self, channels: int, width: int, blocks: int, flip: bool) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError("channel-wise coupling needs an even number of channels")
        self.flip = bool(flip)
        half = channels // 2
        self.net = ResNet(half, 2 * half, width, blocks)
        self.bound = _BoundedScale(half)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.chunk(2, dim=1)
        return (b, a) if self.flip else (a, b)

    def _join(self, cond: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        return torch.cat([moved, cond] if self.flip else [cond, moved], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond, moved = self._split(x)
        raw, t = self.net(cond).chunk(2, dim=1)
        s = self.bound(raw)
        return self._join(cond, moved * torch.exp(s) + t), s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        cond, moved = self._split(y)
        raw, t = self.net(cond).chunk(2, dim=1)
        s = self.bound(raw)
        return self._join(cond, (moved - t) * torch.exp(-s))
