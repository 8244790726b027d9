"""An exponential moving average of the weights, kept as a model of its own.

torch's ``AveragedModel`` holds the copy and ``get_ema_multi_avg_fn`` does the
update (one fused lerp over all parameters). What is ours is the warm-up of the
decay, as in TensorFlow's ExponentialMovingAverage with ``num_updates``: a fixed
0.999 would keep 5 % of the random initialisation after 3000 steps.

The copy's batch-norm buffers follow the live model's (``use_buffers=False``) and
are wrong for the averaged weights; :func:`nvp_core.recalibrate.recalibrate`
re-estimates them before the EMA model scores, samples or is saved.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA:
    """EMA weights of ``model``; :attr:`module` is a full model carrying them."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self._decay_now = self.decay
        self.averaged = AveragedModel(model, multi_avg_fn=self._lerp)
        self.averaged.update_parameters(model)  # the first update copies: the average starts at the weights

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    def decay_at(self, step: int) -> float:
        """min(decay, (1 + step) / (10 + step)): short memory while the weights move fast."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    def _lerp(self, ema_params: list[torch.Tensor], params: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        get_ema_multi_avg_fn(self._decay_now)(ema_params, params, n_averaged)

    def update(self, model: nn.Module, step: int) -> None:
        """Fold in ``model``'s weights after optimizer step ``step`` (0-based)."""
        self._decay_now = self.decay_at(step)
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged parameters by the live model's parameter names (the checkpoint's ``ema.*``)."""
        return {name: p.detach() for name, p in self.module.named_parameters()}

    def load(self, tensors: dict[str, torch.Tensor], step: int) -> bool:
        """Restore averaged parameters saved at ``step``; False (nothing changed) if any is missing."""
        params = dict(self.module.named_parameters())
        if not all(name in tensors for name in params):
            return False
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(tensors[name])
        self.averaged.n_averaged.fill_(step + 1)  # one copy + one update per step, as in an unbroken run
        return True
