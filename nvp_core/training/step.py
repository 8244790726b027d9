"""One optimizer step of the Trainer, usable on its own (the throughput benchmark times this).

The loss is the flow's bits/dim of the dequantized batch: the flow's own prior
(``RealNVP.prior_log_prob``) plus its log-determinant, in bits per dimension
with the 8-bit discretisation term, exactly as ``RealNVP.bits_per_dim`` scores
test images — but with gradients, through the (possibly DDP-wrapped or
compiled) training module, and with the Trainer's seeded dequantization noise.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..density import bits_per_dim_from_log_prob
from ..flow import RealNVP
from .config import TrainConfig
from .ema import EMA


def scale_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(scale/magnitude parameters, the rest).

    The paper puts L2 (5e-5) on "the weight scale parameters": here the couplings'
    tanh bounds (``bound.scale``), the normalisations' log-scales and the weight-norm
    magnitudes ``g`` of every convolution.
    """
    scale, rest = [], []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith("bound.scale") or leaf in ("log_gamma", "log_scale") or name.endswith("weight.original0"):
            scale.append(p)
        else:
            rest.append(p)
    return scale, rest


def make_optimizer(model: nn.Module, config: TrainConfig, fused: bool | None = None) -> torch.optim.Adam:
    """Adam with L2 on the scale parameters only (the paper's setting)."""
    scale, rest = scale_parameters(model)
    return torch.optim.Adam(
        [{"params": scale, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.999), eps=1e-8, fused=fused,
    )


def bits_per_dim_loss(zs: Sequence[torch.Tensor], ldj: torch.Tensor) -> torch.Tensor:
    """Mean bits/dim of a batch from the flow's output, with the flow's own prior and the
    one bits/dim formula that ``RealNVP.bits_per_dim`` uses (the loss needs gradients and the
    DDP-wrapped forward, so it cannot call that no-grad method itself)."""
    d = sum(z[0].numel() for z in zs)
    log_p = RealNVP.prior_log_prob([z.float() for z in zs]) + ldj.float()
    return bits_per_dim_from_log_prob(log_p, d).mean()


class TrainStep:
    """Forward + backward over the micro-batches of one step, gradient clipping, Adam, EMA.

    ``module`` is what runs the forward pass (the model, or its DDP wrapper); with
    ``compile`` it runs through ``torch.compile``, and where compiling fails on the
    first call (no compiler on this machine) the step says so through
    ``on_fallback`` and continues uncompiled — tracing has no side effects.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, grad_clip: float,
                 module: nn.Module | None = None, amp: bool = False, compile: bool = False,
                 ema: EMA | None = None, on_fallback: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.module = module if module is not None else model
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.amp = amp
        self.ema = ema
        self.on_fallback = on_fallback
        self.params = list(model.parameters())
        self.forward: Callable = self.module
        if compile:
            try:
                self.forward = torch.compile(self.module)
            except Exception as exc:  # noqa: BLE001 - no compiler here: train uncompiled
                self._fall_back(exc)

    def __call__(self, batches: Iterable[torch.Tensor], n_batches: int, lr: float, step: int) -> torch.Tensor:
        """Run optimizer step ``step`` on ``n_batches`` micro-batches; returns the loss (on the device)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = None
        for i, x in enumerate(batches):
            # DDP all-reduces gradients on the last micro-batch only.
            sync = i == n_batches - 1 or not hasattr(self.module, "no_sync")
            with contextlib.nullcontext() if sync else self.module.no_sync():
                micro = self._loss(x) / n_batches
                micro.backward()
            loss = torch.zeros((), device=micro.device) if loss is None else loss
            loss = loss + micro.detach()
        torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(step)
        return loss

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            try:
                zs, ldj = self.forward(x)
            except Exception as exc:
                if self.forward is self.module:
                    raise
                self._fall_back(exc)
                zs, ldj = self.forward(x)
        return bits_per_dim_loss(zs, ldj)

    def _fall_back(self, exc: Exception) -> None:
        self.forward = self.module
        if self.on_fallback is not None:
            self.on_fallback(f"torch.compile failed ({exc.__class__.__name__}); training without it")
