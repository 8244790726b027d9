"""RealNVP: the multi-scale flow of Dinh et al. (2016), section 3.6.

One scale = 3 checkerboard couplings → squeeze → 3 channel-wise couplings →
factor out half of the channels as z^(k) (see ``_Scale`` for the two squeezes); the last scale is 4 checkerboard
couplings whose output is z^(L). Everything is convolutional and masks are built
per input size, so a model trained at 32×32 encodes and samples at any size that
is a multiple of 2^(L−1).
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .config import FlowConfig
from .errors import ShapeError
from .density import bits_per_dim_from_log_prob
from .latents import Latents, make_generator
from .layers import (
    ChannelCoupling, CheckerboardCoupling, LogitTransform, make_norm, squeeze, squeeze_ordered, unsqueeze,
    unsqueeze_ordered,
)
from .preprocess import dequantize

LOG_2PI = math.log(2.0 * math.pi)


class _Step(nn.Module):
    """A coupling followed by a normalisation bijection."""

    def __init__(self, coupling: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.coupling = coupling
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, ldj1 = self.coupling(x)
        y, ldj2 = self.norm(y)
        return y, ldj1 + ldj2

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.coupling.inverse(self.norm.inverse(y))


class _Scale(nn.Module):
    """One level of the multi-scale architecture (section 3.6 of the paper).

    Checkerboard couplings → squeeze → channel-wise couplings → factor out half.
    With the ``official`` layout the channel-wise couplings see the plain squeeze
    (each channel half holds both checkerboard colours, so they mix the image
    along a new split) and the factor-out re-orders to the ordered squeeze, so
    ``z^(k)`` is one checkerboard colour. The ``ordered`` layout (files written
    before the fix) used the ordered squeeze for both, which made the channel-wise
    couplings repeat the checkerboard split; it is kept bit-for-bit for those files.
    """

    def __init__(self, channels: int, width: int, cfg: FlowConfig, final: bool) -> None:
        super().__init__()
        self.final = final
        self.official = cfg.layout == "official"

        def norm(c: int) -> nn.Module:
            return make_norm(cfg.norm, c, cfg.norm_momentum, cfg.norm_eps)

        n_checker = 4 if final else 3
        self.checker = nn.ModuleList(
            _Step(CheckerboardCoupling(channels, width, cfg.blocks, parity=i % 2), norm(channels))
            for i in range(n_checker)
        )
        if final:
            self.channel = nn.ModuleList()
        else:
            channel_width = width * cfg.channel_width_factor
            self.channel = nn.ModuleList(
                _Step(ChannelCoupling(4 * channels, channel_width, cfg.blocks, flip=bool(i % 2)), norm(4 * channels))
                for i in range(3)
            )

    def _to_channels(self, x: torch.Tensor) -> torch.Tensor:
        return squeeze(x) if self.official else squeeze_ordered(x)

    def _factor_order(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-coupling layout → ordered squeeze (the factor-out's)."""
        return squeeze_ordered(unsqueeze(x)) if self.official else x

    def _coupling_order(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_factor_order`."""
        return squeeze(unsqueeze_ordered(x)) if self.official else x

    def _from_channels(self, x: torch.Tensor) -> torch.Tensor:
        return unsqueeze(x) if self.official else unsqueeze_ordered(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns (kept half, log-det, factored-out z or None for the final scale)."""
        ldj = x.new_zeros(x.shape[0])
        for step in self.checker:
            x, d = step(x)
            ldj = ldj + d
        if self.final:
            return x, ldj, None
        x = self._to_channels(x)
        for step in self.channel:
            x, d = step(x)
            ldj = ldj + d
        keep, z = self._factor_order(x).chunk(2, dim=1)
        return keep, ldj, z

    def inverse(self, keep: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        if not self.final:
            x = self._coupling_order(torch.cat([keep, z], dim=1))
            for step in reversed(self.channel):
                x = step.inverse(x)
            keep = self._from_channels(x)
        for step in reversed(self.checker):
            keep = step.inverse(keep)
        return keep


class RealNVP(nn.Module):
    """Real NVP density model over images in [0, 1).

    ``encode``/``decode``/``log_prob`` are plain differentiable functions (training
    and the Jacobian tests need gradients); ``sample`` and ``bits_per_dim`` run
    under ``torch.inference_mode``.
    """

    def __init__(self, config: FlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or FlowConfig()
        cfg = self.config
        self.preprocess = LogitTransform(cfg.alpha)
        scales = []
        channels = cfg.channels
        for k in range(cfg.scales):
            width = min(cfg.width * 2**k, cfg.max_width)
            scales.append(_Scale(channels, width, cfg, final=(k == cfg.scales - 1)))
            channels *= 2
        self.scales = nn.ModuleList(scales)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator["RealNVP"]:
        """Temporarily eval mode (running statistics), restoring the previous mode.

        Sampling or scoring in the middle of training must not use batch
        statistics nor update running averages.
        """
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    # ---------------------------------------------------------------- shapes
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def multiple(self) -> int:
        return self.config.multiple

    def check_size(self, height: int, width: int) -> None:
        m = self.multiple
        if height < m or width < m or height % m or width % m:
            raise ShapeError(
                f"image size {height}×{width} does not fit this model: both sides must be "
                f"positive multiples of 2^(L−1) = {m} (L = {self.config.scales} levels)"
            )

    def latent_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """[(C_k, H_k, W_k) for k = 1..L]; z^(1) is the finest."""
        self.check_size(height, width)
        shapes = []
        c, h, w = self.config.channels, height, width
        for k in range(self.config.scales):
            if k == self.config.scales - 1:
                shapes.append((c, h, w))
            else:
                c, h, w = 2 * c, h // 2, w // 2
                shapes.append((c, h, w))
        return shapes

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.channels:
            raise ShapeError(
                f"expected images shaped (N, {self.config.channels}, H, W), got {tuple(x.shape)}"
            )
        self.check_size(x.shape[2], x.shape[3])

    # ---------------------------------------------------------------- bijection
    def forward(self, x: torch.Tensor) -> tuple[Latents, torch.Tensor]:
        """x in [0,1) (dequantized) → (latents z^(1..L), log|det ∂z/∂x|) per sample."""
        self._check_input(x)
        h, ldj = self.preprocess(x)
        zs: Latents = []
        for scale in self.scales:
            h, d, z = scale(h)
            ldj = ldj + d
            zs.append(h if z is None else z)
        return zs, ldj

    def encode(self, x: torch.Tensor) -> Latents:
        """Images (N, C, H, W) in [0, 1] → [z^(1), …, z^(L)], finest first."""
        return self.forward(x)[0]

    def decode(self, zs: Sequence[torch.Tensor], after_scale: Callable[[], None] | None = None) -> torch.Tensor:
        """Exact inverse of :meth:`encode`; output clamped to [0, 1].

        ``after_scale`` is called after each scale's inverse: a canvas hundreds of
        times the training size reports progress and can stop (by raising) between
        scales instead of only when it is done.
        """
        if len(zs) != len(self.scales):
            raise ShapeError(f"expected {len(self.scales)} latent levels, got {len(zs)}")
        h = zs[-1]
        for k in range(len(self.scales) - 1, -1, -1):
            scale = self.scales[k]
            h = scale.inverse(h, None if scale.final else zs[k])
            if after_scale is not None:
                after_scale()
        return self.preprocess.inverse(h).clamp(0.0, 1.0)

    # ---------------------------------------------------------------- density
    @staticmethod
    def prior_log_prob(zs: Sequence[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for z in zs:
            total = total + (-0.5 * (z * z + LOG_2PI)).flatten(1).sum(1)
        return total

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) log density of x ∈ [0,1)^D in nats, logit Jacobian included."""
        zs, ldj = self.forward(x)
        return self.prior_log_prob(zs) + ldj

    def bits_per_dim(
        self,
        x_uint8: torch.Tensor,
        noise: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(N,) bits/dim of 8-bit images: (−log p(x_in) + D log 256) / (D log 2).

        ``noise=False`` uses the midpoint u = 0.5 (deterministic, for showing one
        image); ``noise=True`` draws u ~ U[0,1) (the unbiased evaluation).
        """
        with torch.inference_mode(), self.evaluating():
            x = dequantize(x_uint8.to(self.device), noise=noise, generator=generator)
            return bits_per_dim_from_log_prob(self.log_prob(x), x[0].numel())

    # ---------------------------------------------------------------- sampling
    def sample_latents(
        self,
        n: int,
        height: int,
        width: int,
        temperature: float = 1.0,
        generator: torch.Generator | int | None = None,
    ) -> Latents:
        """Gaussian latents N(0, T²I) with the level shapes of an H×W image.

        Noise is drawn on the CPU from ``generator`` (or a seed) and then moved,
        so a seed gives the same picture on CPU and CUDA.
        """
        gen = make_generator(generator)
        out = []
        for shape in self.latent_shapes(height, width):
            z = torch.randn((n, *shape), generator=gen) * float(temperature)
            out.append(z.to(self.device))
        return out

    def sample(
        self,
        n: int,
        height: int | None = None,
        width: int | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | int | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1]; H, W default to the training size."""
        height = height or self.config.image_size
        width = width or height
        with torch.inference_mode(), self.evaluating():
            zs = self.sample_latents(n, height, width, temperature, generator)
            return self.decode(zs)
