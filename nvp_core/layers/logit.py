"""The data pre-processing of Real NVP: x ∈ [0,1] → logit(α + (1−2α)x), with its log-det.

Keeping it a bijection with an exact log-Jacobian is what makes bits/dim a
density of the 8-bit image rather than of some rescaled version of it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LogitTransform(nn.Module):
    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        # d/dx logit(p(x)) = (1 - 2α) / (p (1 - p))
        ldj = math.log(1.0 - 2.0 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, ldj.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)
