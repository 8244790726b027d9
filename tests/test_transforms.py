"""Every bijection on its own, in the manner of zuko's transform tests.

Each transform must invert exactly, report the log-determinant of its own
Jacobian (checked against autograd, not only for the whole flow), and — for
couplings — leave the conditioning half unchanged while making the transformed
half depend on it. The layout tests pin the bug fixed in issue 9: with the
ordered squeeze the channel-wise couplings repeated the checkerboard split.
"""
from __future__ import annotations

import pytest
import torch

import nvp_core as nc
from conftest import randomize
from nvp_core.layers import (
    ActNorm, BatchNormFlow, ChannelCoupling, CheckerboardCoupling, LogitTransform, checkerboard, squeeze,
)

SHAPE = (2, 4, 6, 6)


def _perturbed(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere (zero-initialised heads would make couplings the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
        for name, b in module.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5 if "var" in name else torch.randn(b.shape, generator=gen) * 0.3)
    return module.double().eval()


TRANSFORMS = {
    "checkerboard-0": lambda: CheckerboardCoupling(4, 8, 1, parity=0),
    "checkerboard-1": lambda: CheckerboardCoupling(4, 8, 1, parity=1),
    "channel": lambda: ChannelCoupling(4, 8, 1, flip=False),
    "channel-flip": lambda: ChannelCoupling(4, 8, 1, flip=True),
    "batchnorm": lambda: BatchNormFlow(4, 0.05, 1e-4),
    "actnorm": lambda: ActNorm(4),
    "logit": lambda: LogitTransform(0.05),
}


def _input(name: str) -> torch.Tensor:
    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return x * 0.9 + 0.05 if name == "logit" else (x - 0.5) * 4


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_inverts_and_its_log_det_matches_autograd(name):
    t = _perturbed(TRANSFORMS[name]())
    x = _input(name)
    y, ldj = t(x)
    assert y.shape == x.shape and ldj.shape == (SHAPE[0],)
    assert torch.allclose(t.inverse(y), x, atol=1e-10)
    for i in range(SHAPE[0]):
        jac = torch.autograd.functional.jacobian(lambda v: t(v.view(1, *SHAPE[1:]))[0].flatten(), x[i].flatten())
        _, logabsdet = torch.linalg.slogdet(jac)
        assert ldj[i].item() == pytest.approx(logabsdet.item(), abs=1e-8)
        assert abs(ldj[i].item()) > 1e-3  # the perturbed transform really scales


def _coupling_masks(name: str, t: torch.nn.Module) -> torch.Tensor:
    """1 where an element conditions the coupling (passes unchanged), 0 where it is transformed."""
    n, c, h, w = SHAPE
    if name.startswith("checkerboard"):
        return checkerboard(h, w, t.parity, torch.zeros(1))[0, 0].double().expand(c, h, w)
    cond = torch.zeros(c, h, w, dtype=torch.float64)
    (cond[c // 2:] if t.flip else cond[:c // 2]).fill_(1)
    return cond


@pytest.mark.parametrize("name", ["checkerboard-0", "checkerboard-1", "channel", "channel-flip"])
def test_coupling_keeps_its_condition_and_moves_the_rest_with_it(name):
    t = _perturbed(TRANSFORMS[name]())
    x = _input(name)
    y, _ = t(x)
    cond = _coupling_masks(name, t).bool().expand(SHAPE)
    assert torch.equal(y[cond], x[cond])
    assert (y[~cond] - x[~cond]).abs().min() > 0
    jac = torch.autograd.functional.jacobian(lambda v: t(v.view(1, *SHAPE[1:]))[0].flatten(), x[0].flatten())
    c = cond[0].flatten()
    # Conditioning rows are identity rows; the transformed half depends on the conditioning half.
    assert torch.equal(jac[c], torch.eye(c.numel(), dtype=torch.float64)[c])
    assert jac[~c][:, c].abs().sum(1).min() > 0


def _colour_of_squeezed(channels: int, size: int) -> torch.Tensor:
    """Checkerboard colour (0/1) of every element after the plain squeeze."""
    colour = checkerboard(size, size, 1, torch.zeros(1)).expand(1, channels, size, size).contiguous()
    return squeeze(colour)[0]


def test_channel_couplings_condition_on_both_checkerboard_colours():
    """The official layout: each half of the plainly squeezed channels mixes both colours."""
    flow = nc.RealNVP(nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1))
    for step in flow.scales[0].channel:
        half = 4 * 3 // 2
        colours = _colour_of_squeezed(3, 8)
        cond = colours[half:] if step.coupling.flip else colours[:half]
        assert 0 < cond.mean().item() < 1


def _cross_colour_blocks(layout: str) -> list[float]:
    """|∂ out / ∂ in| summed over colour-A outputs w.r.t. colour-B inputs (and B←A) for the
    last checkerboard coupling followed by the first channel-wise one, in pixel space."""
    cfg = nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, layout=layout,
                        channel_width_factor=2 if layout == "official" else 1)
    torch.manual_seed(0)
    scale = randomize(nc.RealNVP(cfg), seed=3).double().scales[0]

    def f(v: torch.Tensor) -> torch.Tensor:
        x, _ = scale.checker[-1](v.view(1, 3, 8, 8))
        y, _ = scale.channel[0](scale._to_channels(x))
        return scale._from_channels(y).flatten()

    x = torch.rand(3 * 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    jac = torch.autograd.functional.jacobian(f, x)
    colour = checkerboard(8, 8, 0, torch.zeros(1))[0, 0].bool().expand(3, 8, 8).flatten()
    return [jac[colour][:, ~colour].abs().sum().item(), jac[~colour][:, colour].abs().sum().item()]


def test_official_layout_mixes_what_the_ordered_layout_left_apart():
    ordered = _cross_colour_blocks("ordered")
    official = _cross_colour_blocks("official")
    assert min(ordered) == 0.0  # one colour never sees the other across the two couplings
    assert min(official) > 1e-3


@pytest.mark.parametrize("layout", ["official", "ordered"])
def test_each_scale_inverts_and_matches_autograd(layout):
    cfg = nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, layout=layout)
    torch.manual_seed(0)
    scale = randomize(nc.RealNVP(cfg), seed=5).double().scales[0]
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    keep, ldj, z = scale(x)
    assert torch.allclose(scale.inverse(keep, z), x, atol=1e-10)

    def f(v):
        k, _, zz = scale(v.view(1, 3, 8, 8))
        return torch.cat([k.flatten(), zz.flatten()])

    _, logabsdet = torch.linalg.slogdet(torch.autograd.functional.jacobian(f, x.flatten()))
    assert ldj.item() == pytest.approx(logabsdet.item(), abs=1e-8)


def test_channel_width_factor_widens_only_the_channel_nets():
    one = nc.RealNVP(nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, channel_width_factor=1))
    two = nc.RealNVP(nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, channel_width_factor=2))
    assert two.scales[0].checker[0].coupling.net.stem.weight.shape[0] == 4
    assert one.scales[0].channel[0].coupling.net.stem.weight.shape[0] == 4
    assert two.scales[0].channel[0].coupling.net.stem.weight.shape[0] == 8
