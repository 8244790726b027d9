"""Bits per dimension: the unit every density number of the project is reported in."""
from __future__ import annotations

import math

import torch


def bits_per_dim_from_log_prob(log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """(N,) bits/dim of 8-bit images from the log density of their dequantized x_in ∈ [0,1)^D.

    ``(−log p(x_in) + D log 256) / (D log 2)``: the density over [0,1)^D becomes a
    probability of the 256-level image, per sub-pixel, in bits. One formula, so the
    flow's own score, the trainer's evaluation and the explorer's one-pass encode agree.
    """
    return (-log_prob + dims * math.log(256.0)) / (dims * math.log(2.0))
