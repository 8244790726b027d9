"""Normalisation layers that are bijections with a log-determinant.

Batch norm (the paper) uses batch statistics while training and running averages
in eval mode and in every inverse pass, so a trained model's encode/decode is
deterministic and independent of the batch. ActNorm (Glow) is the batch-free
option: a per-channel affine initialised from the first batch.
"""
from __future__ import annotations

import torch
from torch import nn


class BatchNormFlow(nn.Module):
    def __init__(self, channels: int, momentum: float = 0.05, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.log_gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("running_mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("running_var", torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), keepdim=True, correction=0)  # one pass
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = torch.rsqrt(var + self.eps)
        # y = (x − mean)·inv_std·γ + β as one fused pass over x; the per-channel
        # factors are (1, C, 1, 1) and cost nothing.
        scale = inv_std * torch.exp(self.log_gamma)
        y = torch.addcmul(self.beta - mean * scale, x, scale)
        per_pixel = (self.log_gamma + torch.log(inv_std)).sum()
        ldj = per_pixel * (x.shape[2] * x.shape[3])
        return y, ldj.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt(self.running_var + self.eps) * torch.exp(-self.log_gamma)
        return torch.addcmul(self.running_mean - self.beta * scale, y, scale)


def _reread_initialized(module: "ActNorm", incompatible_keys) -> None:
    module._known_initialized = False  # a loaded state may or may not be initialised


class ActNorm(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        # Python mirror of ``initialized``: reading the buffer every training step would
        # be a device→host sync per layer on a GPU (and a graph break under torch.compile).
        self._known_initialized = False
        self.register_load_state_dict_post_hook(_reread_initialized)

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.bias.copy_(-mean / (std + 1e-6))
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self._known_initialized:
            if not bool(self.initialized):  # one sync, until the first batch has set it
                self._init(x)
            self._known_initialized = True
        y = x * torch.exp(self.log_scale) + self.bias
        ldj = self.log_scale.sum() * (x.shape[2] * x.shape[3])
        return y, ldj.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.bias) * torch.exp(-self.log_scale)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y


def make_norm(kind: str, channels: int, momentum: float, eps: float) -> nn.Module:
    if kind == "batch":
        return BatchNormFlow(channels, momentum, eps)
    if kind == "actnorm":
        return ActNorm(channels)
    return Identity()
