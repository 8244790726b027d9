"""Start a larger flow from a trained smaller one, scale by scale.

Every scale of Real NVP is convolutional and sees the image at a fixed
resolution relative to its input, so the first scales of a model trained at
32×32 fit the first scales of a model at 64×64 exactly when the data's local
statistics are the same (photo-crops at 64 are crops resized by the same
factors as at 32). Copying them lets a CPU-bound run spend its steps on the new
coarse scales instead of re-learning the fine ones. The final scale of the
source (checkerboard couplings only) is not a regular scale of the target, so
copying stops before it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConfigError
from .flow import RealNVP

# What must agree for a scale's weights to mean the same function in both models.
_SAME = ("channels", "layout", "channel_width_factor", "blocks", "norm", "alpha")


@dataclass(frozen=True)
class WarmStart:
    """What :func:`warm_start` copied: the scale indices and the parameter counts."""

    scales: tuple[int, ...]
    copied_parameters: int
    total_parameters: int

    def describe(self, source: str) -> str:
        first, last = self.scales[0] + 1, self.scales[-1] + 1
        span = f"scale {first}" if first == last else f"scales {first}–{last}"
        return (f"started {span} from {source} ({self.copied_parameters / 1e6:.2f} M of "
                f"{self.total_parameters / 1e6:.2f} M parameters); the rest from scratch")


def warm_start(target: RealNVP, source: RealNVP) -> WarmStart:
    """Copy the source's non-final scales into the target's matching non-final scales.

    Copies parameters and buffers (batch-norm running statistics too) of scale k
    for k = 0, 1, … while both models have a regular scale k with identical
    tensor shapes; raises :class:`ConfigError` if the models differ in anything
    that changes what a scale computes, or if no scale fits.
    """
    diff = [f"{k} {getattr(source.config, k)!r} vs {getattr(target.config, k)!r}"
            for k in _SAME if getattr(source.config, k) != getattr(target.config, k)]
    if diff:
        raise ConfigError("cannot start from that model: its scales compute a different function (" +
                          "; ".join(diff) + ")")
    copied: list[int] = []
    n_copied = 0
    for k, (src, dst) in enumerate(zip(source.scales, target.scales)):
        if src.final or dst.final:
            break
        src_state, dst_state = src.state_dict(), dst.state_dict()
        if src_state.keys() != dst_state.keys() or any(src_state[n].shape != dst_state[n].shape for n in src_state):
            break
        with torch.no_grad():
            dst.load_state_dict({n: t.to(dst_state[n].device) for n, t in src_state.items()})
        copied.append(k)
        n_copied += sum(p.numel() for p in dst.parameters())
    if not copied:
        raise ConfigError("cannot start from that model: its first scale differs in width from this one's "
                          f"(source width {source.config.width}, this model {target.config.width})")
    return WarmStart(tuple(copied), n_copied, sum(p.numel() for p in target.parameters()))
