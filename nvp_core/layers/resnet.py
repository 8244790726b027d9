"""The s/t network of a coupling: a small ResNet, identity at initialisation.

Weight norm on convolutions and batch norm inside the blocks follow the paper;
the output convolution starts at zero so every coupling starts as the identity,
which is what lets deep flows train from step one.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _conv(cin: int, cout: int, k: int) -> nn.Module:
    return weight_norm(nn.Conv2d(cin, cout, k, padding=k // 2, bias=True))


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), _conv(width, width, 3),
            nn.BatchNorm2d(width), nn.ReLU(), _conv(width, width, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    def __init__(self, cin: int, cout: int, width: int, blocks: int) -> None:
        super().__init__()
        self.stem = _conv(cin, width, 3)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.head_norm = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, cout, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return self.head(torch.relu(self.head_norm(h)))
