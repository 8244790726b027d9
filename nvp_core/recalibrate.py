"""Batch-norm statistics that match a given set of weights.

Running averages are collected while the weights move; other weights (an EMA of
them, or a model whose weights were edited) do not match them, and with batch
norm inside every coupling a mismatch is no small error — an EMA model scored
with the live running statistics measured 191 bits/dim where the live model
measured 4.4. Re-estimating the statistics with a few forward passes in training
mode, as stochastic weight averaging does, makes them consistent.

``torch.optim.swa_utils.update_bn`` does this for ``nn.BatchNorm*`` (the s/t
ResNets' norms) but does not see the flow's own ``BatchNormFlow`` bijections:
they are not ``_BatchNorm`` subclasses, so it neither resets them nor averages
over the batches, and they would keep 44 % of their old statistics after 16
batches at momentum 0.05. The batches are therefore fed to ``update_bn`` through
a generator that sets each BatchNormFlow's momentum to 1/n before batch n — a
lerp by 1/n is the equal-weight running average that ``momentum=None`` gives
``nn.BatchNorm``.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from .layers.norms import BatchNormFlow


@torch.no_grad()
def recalibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every running mean/variance by the equal-weight average over ``batches``.

    ``batches`` are model inputs (dequantized images in [0,1)). Returns the number
    of batches used; the model's train/eval mode is restored.
    """
    flow_norms = [m for m in model.modules() if isinstance(m, BatchNormFlow)]
    saved = [m.momentum for m in flow_norms]
    count = 0

    def counted() -> Iterator[torch.Tensor]:
        nonlocal count
        for x in batches:
            count += 1
            for m in flow_norms:
                m.momentum = 1.0 / count  # the first batch overwrites: no reset needed
            yield x

    try:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            update_bn(counted(), model)
        elif flow_norms:  # update_bn returns at once when it finds no nn.BatchNorm
            was_training = model.training
            model.train()
            for x in counted():
                model(x)
            model.train(was_training)
    finally:
        for m, momentum in zip(flow_norms, saved):
            m.momentum = momentum
    return count
