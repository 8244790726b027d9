"""Latent operations: resampling levels and the sphere of the seed page."""
from __future__ import annotations

import math

import pytest
import torch

import nvp_core as nc


def _latents(seed: int, n: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, h, w, generator=g) for c, h, w in ((6, 8, 8), (12, 4, 4), (12, 4, 4))]


def test_resample_leaves_untouched_levels_bit_identical():
    zs = _latents(0)
    out = nc.resample(zs, [1], temperature=0.5, generator=3)
    assert out[1] is zs[1] and out[2] is zs[2]
    assert not torch.equal(out[0], zs[0])
    assert out[0].std().item() == pytest.approx(0.5, rel=0.2)


def test_resample_noise_of_a_level_does_not_depend_on_other_toggles():
    zs = _latents(0)
    a = nc.resample(zs, [1, 2], generator=7)
    b = nc.resample(zs, [2], generator=7)
    assert torch.equal(a[1], b[1])


def test_resample_zero_mode_and_errors():
    zs = _latents(0)
    out = nc.resample(zs, [2, 3], mode="zero")
    assert torch.count_nonzero(out[1]) == 0 and torch.count_nonzero(out[2]) == 0
    with pytest.raises(nc.ShapeError):
        nc.resample(zs, [4])
    with pytest.raises(ValueError):
        nc.resample(zs, [1], mode="blur")


@pytest.mark.parametrize("angles, index", [((0, 0, 0), 0), ((0, 0, math.pi / 2), 1),
                                           ((0, math.pi / 2, 0), 2), ((math.pi / 2, 0, 0), 4),
                                           ((math.pi / 2, math.pi / 2, math.pi / 2), 7)])
def test_sphere_hits_anchors(angles, index):
    anchors = [_latents(i) for i in range(8)]
    out = nc.sphere(anchors, *angles)
    for a, b in zip(out, anchors[index]):
        assert torch.allclose(a, b, atol=1e-6)


def test_sphere_stays_on_the_shell():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        angles = (torch.rand(3, generator=g) * 2 * math.pi).tolist()
        w = nc.sphere_weights(*angles)
        assert sum(x * x for x in w) == pytest.approx(1.0)
    # With orthogonal unit anchors the point keeps unit norm.
    basis = torch.eye(8)
    anchors = [[basis[i].view(1, 8, 1, 1)] for i in range(8)]
    z = nc.sphere(anchors, 0.3, 1.1, 2.0)[0]
    assert z.norm().item() == pytest.approx(1.0, abs=1e-6)


def test_sphere_batch_matches_sphere():
    anchors = [_latents(i) for i in range(8)]
    angles = [(0.1, 0.2, 0.3), (1.0, 2.0, 3.0)]
    batch = nc.sphere_batch(anchors, angles)
    for j, a in enumerate(angles):
        single = nc.sphere(anchors, *a)
        for x, y in zip(batch, single):
            assert torch.allclose(x[j:j + 1], y, atol=1e-5)


def test_sphere_needs_eight_matching_anchors():
    with pytest.raises(nc.ShapeError):
        nc.sphere([_latents(i) for i in range(7)], 0, 0, 0)


def test_spatial_layout_puts_every_value_back_once(tiny_flow):
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        zs = tiny_flow.encode(x)
    layouts = nc.spatial_layout(zs)
    present = torch.stack([~torch.isnan(lay) for lay in layouts]).sum(0)
    assert torch.equal(present, torch.ones_like(present))
    # Level 1 sits on one checkerboard colour of the input.
    mask = ~torch.isnan(layouts[0][0, 0])
    ij = torch.arange(16)
    assert torch.equal(mask, (ij.view(-1, 1) + ij.view(1, -1)) % 2 == 1)
    images = nc.level_images(zs)
    assert [tuple(i.shape) for i in images] == [(1, 3, 8, 8), (1, 3, 4, 4), (1, 3, 4, 4)]
    assert all(torch.isfinite(i).all() for i in images)


def test_flatten_unflatten_and_slerp():
    zs = _latents(0, n=2)
    flat = nc.flatten(zs)
    back = nc.unflatten(flat, [tuple(z.shape[1:]) for z in zs])
    assert all(torch.equal(a, b) for a, b in zip(zs, back))
    a, b = flat[:1], flat[1:]
    assert torch.allclose(nc.slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(nc.slerp(a, b, 1.0), b, atol=1e-5)
