"""Exactness of the flow: invertibility, log-determinants, bits/dim, batch independence."""
from __future__ import annotations

import math

import pytest
import torch

import nvp_core as nc
from conftest import randomize, tiny_config


def _flow(**kw) -> nc.RealNVP:
    torch.manual_seed(1)
    return randomize(nc.RealNVP(tiny_config(**kw)), seed=2)


@pytest.mark.parametrize("hw, scales", [((32, 32), 4), ((64, 64), 5), ((32, 96), 4)])
def test_decode_inverts_encode(hw, scales):
    # float64: a randomised five-level flow has latents ~1e4 (nothing like a trained one),
    # where float32 round-off alone exceeds any useful tolerance; exactness is the point here.
    flow = _flow(scales=scales, image_size=32).double()
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.999
    with torch.inference_mode():
        zs = flow.encode(x)
        back = flow.decode(zs)
    assert [tuple(z.shape[1:]) for z in zs] == flow.latent_shapes(*hw)
    assert (back - x).abs().max().item() < 1e-7
    # The randomised flow really transforms: latents are not a rearranged image.
    assert nc.flatten(zs).std().item() > 0.1


def test_uint8_images_round_trip_exactly():
    flow = _flow()
    x8 = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    x8[0, :, :2] = 0
    x8[0, :, -2:] = 255
    with torch.inference_mode():
        back = nc.quantize(flow.decode(flow.encode(nc.dequantize(x8, noise=False))))
    assert torch.equal(back, x8)


def test_latent_dims_sum_to_input_dims():
    flow = nc.RealNVP(nc.FlowConfig(scales=5, image_size=64, width=4, blocks=1))
    shapes = flow.latent_shapes(64, 64)
    assert len(shapes) == 5
    assert sum(c * h * w for c, h, w in shapes) == 3 * 64 * 64
    assert shapes[-1][1:] == (4, 4)


def test_log_prob_matches_autograd_jacobian():
    """log p(x) = log N(f(x)) + log|det ∂f/∂x| with J from autograd, on 3×16×16."""
    flow = _flow(norm="batch").double()
    x = (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 0.9 + 0.05)

    def f(v: torch.Tensor) -> torch.Tensor:
        return nc.flatten(flow.encode(v.view(1, 3, 16, 16)))[0]

    jac = torch.autograd.functional.jacobian(f, x.flatten(), vectorize=True)
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign.item() != 0
    z = f(x.flatten())
    expected = (-0.5 * (z * z + math.log(2 * math.pi))).sum() + logabsdet
    got = flow.log_prob(x)[0]
    assert abs(got.item() - expected.item()) < 1e-6 * max(1.0, abs(expected.item()))
    # The flow's own log-det is far from zero: the test would catch a missing term.
    assert abs(logabsdet.item()) > 10


def test_log_prob_matches_jacobian_with_actnorm():
    flow = randomize(nc.RealNVP(tiny_config(norm="actnorm", scales=2, image_size=8)), seed=6).double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 0.9 + 0.05
    jac = torch.autograd.functional.jacobian(
        lambda v: nc.flatten(flow.encode(v.view(1, 3, 8, 8)))[0], x.flatten(), vectorize=True
    )
    z = nc.flatten(flow.encode(x))[0]
    expected = (-0.5 * (z * z + math.log(2 * math.pi))).sum() + torch.linalg.slogdet(jac)[1]
    assert flow.log_prob(x)[0].item() == pytest.approx(expected.item(), rel=1e-7, abs=1e-6)


def test_bits_per_dim_by_hand():
    flow = _flow()
    x8 = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    bpd = flow.bits_per_dim(x8, noise=False)
    x_in = (x8.double() + 0.5) / 256.0
    lp = flow.double().log_prob(x_in)
    d = 3 * 16 * 16
    hand = (-lp + d * math.log(256)) / (d * math.log(2))
    assert torch.allclose(bpd.double(), hand, atol=1e-4)
    # Noise dequantization is reproducible with a generator and close to the midpoint value.
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    flow = flow.float()
    n1 = flow.bits_per_dim(x8, noise=True, generator=g1)
    n2 = flow.bits_per_dim(x8, noise=True, generator=g2)
    assert torch.equal(n1, n2)
    assert not torch.equal(n1, bpd)


def test_identity_flow_bits_per_dim_of_uniform_logit():
    """An untrained flow is the logit map alone: check against the closed form."""
    flow = nc.RealNVP(tiny_config(norm="none")).eval()
    x8 = torch.full((1, 3, 16, 16), 128, dtype=torch.uint8)
    a = flow.config.alpha
    x = 128.5 / 256
    p = a + (1 - 2 * a) * x
    y = math.log(p / (1 - p))
    ldj = math.log(1 - 2 * a) - math.log(p) - math.log(1 - p)
    lp_dim = -0.5 * (y * y + math.log(2 * math.pi)) + ldj
    expected = (-lp_dim + math.log(256)) / math.log(2)
    assert flow.bits_per_dim(x8)[0].item() == pytest.approx(expected, abs=1e-4)


def test_eval_mode_is_batch_independent():
    flow = _flow()
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        full = flow.log_prob(x)
        single = torch.cat([flow.log_prob(x[i:i + 1]) for i in range(5)])
    assert torch.allclose(full, single, atol=1e-4)


def test_samples_at_larger_sizes_than_training():
    flow = _flow(scales=4, image_size=32)
    for h, w in ((32, 32), (64, 64), (320, 320)):
        s = flow.sample(1, h, w, temperature=0.7, generator=0)
        assert s.shape == (1, 3, h, w)
        assert torch.isfinite(s).all() and s.min() >= 0 and s.max() <= 1


def test_sample_is_reproducible_and_restores_mode():
    flow = _flow()
    flow.train()
    a = flow.sample(2, generator=5)
    b = flow.sample(2, generator=5)
    assert flow.training
    assert torch.equal(a, b)
    assert not torch.equal(a, flow.sample(2, generator=6))


def test_training_mode_log_prob_uses_batch_stats_and_updates_running():
    flow = nc.RealNVP(tiny_config()).train()
    before = flow.scales[0].checker[0].norm.running_mean.clone()
    x = torch.rand(4, 3, 16, 16)
    lp = flow.log_prob(x)
    lp.mean().backward()
    assert torch.isfinite(lp).all()
    assert not torch.equal(before, flow.scales[0].checker[0].norm.running_mean)
    grads = [p.grad for p in flow.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_bad_sizes_are_clear_errors():
    flow = _flow(scales=3)  # multiple of 4
    with pytest.raises(nc.ShapeError, match="multiples of 2\\^\\(L−1\\) = 4"):
        flow.encode(torch.rand(1, 3, 18, 16))
    with pytest.raises(nc.ShapeError, match="expected images shaped"):
        flow.encode(torch.rand(1, 1, 16, 16))
    with pytest.raises(nc.ShapeError):
        flow.decode([torch.zeros(1, 6, 8, 8)])


def test_squeezes_are_exact_permutations_with_the_official_orders():
    from nvp_core.layers import checkerboard, squeeze, squeeze_ordered, unsqueeze, unsqueeze_ordered

    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    for sq, unsq in ((squeeze, unsqueeze), (squeeze_ordered, unsqueeze_ordered)):
        y = sq(x)
        assert y.shape == (2, 12, 2, 3)
        assert torch.equal(unsq(y), x)
        assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    # Ordered: the first half of the channels is one checkerboard colour (the factor-out's split).
    b = checkerboard(4, 6, 0, x)
    assert torch.equal(squeeze_ordered(x * b)[:, 6:], torch.zeros(2, 6, 2, 3))
    # Plain (pixel_unshuffle): channel 4c + 2r + s holds offset (r, s) of channel c, so each
    # half of the channels holds pixels of both colours (what the channel-wise couplings split).
    plain = squeeze(x)
    assert torch.equal(plain[:, 4 * 1 + 2 * 1 + 0], x[:, 1, 1::2, 0::2])
    colours = squeeze(b.expand(2, 3, 4, 6).contiguous())
    for half in colours.chunk(2, dim=1):
        assert 0 < half.mean().item() < 1


def test_inference_fast_path_matches_autograd_path_and_follows_weight_changes():
    """ResNet folds weight norm and batch norm into cached kernels under no-grad eval;
    it must give the autograd path's numbers and notice when weights change."""
    flow = _flow()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        fast = flow.log_prob(x)
    slow = flow.log_prob(x).detach()  # grad enabled: the plain modules
    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-3)
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(1.01)
        changed = flow.log_prob(x)
    assert torch.allclose(changed, flow.log_prob(x).detach(), rtol=1e-5, atol=1e-3)
    assert not torch.allclose(changed, fast)


def test_inference_fast_path_sees_parameters_passed_by_functional_call():
    """The cached kernels must follow the tensors the modules hold at call time:
    functional_call swaps them in place of the module's own (issue 12: doubled
    parameters used to return the old output under no_grad)."""
    from torch.func import functional_call

    flow = _flow()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    params = {k: v * 1.1 for k, v in flow.named_parameters()}
    with torch.no_grad():
        own = flow.log_prob(x)
        swapped = functional_call(flow, params, (x,), strict=False)
        again = flow.log_prob(x)
    reference = functional_call(flow, params, (x,))  # grad enabled: the plain modules
    assert torch.allclose(nc.flatten(swapped[0]), nc.flatten(reference[0]).detach(), rtol=1e-4, atol=1e-3)
    assert not torch.allclose(nc.flatten(swapped[0]), nc.flatten(flow(x)[0]).detach(), rtol=1e-2)
    assert torch.equal(own, again)  # and back to the module's own weights afterwards
