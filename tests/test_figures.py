"""nvp_core.figures: the seed page's figures as arrays, on a tiny randomised flow."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nvp_core as nc
from nvp_core import angles as A
from nvp_core import figures as F
from nvp_core import pipeline as P



@pytest.fixture(scope="module")
def flow() -> nc.RealNVP:
    from conftest import randomize, tiny_config

    torch.manual_seed(0)
    return randomize(nc.RealNVP(tiny_config()))  # 16×16, L = 3


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Eight smooth, distinct 16×16 images (gradients in different directions and colours)."""
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    out = []
    for i in range(8):
        a = math.pi * i / 4
        ramp = (np.cos(a) * xx + np.sin(a) * yy + 1.5) / 3.0
        colour = np.array([(i * 37) % 255, (i * 91) % 255, (i * 53) % 255]) / 255.0
        out.append(np.clip(ramp[..., None] * (0.3 + 0.7 * colour), 0, 1) * 255)
    return np.stack(out).astype(np.uint8)


def test_upscale_is_nearest_neighbour():
    x = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    big = F.upscale(x, 3)
    assert big.shape == (6, 6, 3)
    assert (big[:3, :3] == x[0, 0]).all() and (big[3:, 3:] == x[1, 1]).all()
    assert F.upscale(np.stack([x, x]), 2).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError):
        F.upscale(x, 0)


def test_samples_are_seeded_and_chunk_independent(flow):
    a = P.sample_images(flow, 5, temperature=0.7, seed=3, batch_size=5)
    b = P.sample_images(flow, 5, temperature=0.7, seed=3, batch_size=2)
    c = P.sample_images(flow, 5, temperature=0.7, seed=4, batch_size=5)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(nc.ShapeError):
        P.sample_images(flow, 2, 18, 18)


def test_progress_counts_every_image_and_can_cancel(flow):
    seen = []
    P.sample_images(flow, 7, batch_size=3, progress=seen.append)
    assert seen == pytest.approx([k / 9 for k in range(1, 10)])  # 3 chunks (3, 3, 1 images) × 3 scales

    class Cancelled(Exception):
        pass

    def cancel(k: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        P.sample_images(flow, 7, batch_size=3, progress=cancel)


def test_extrapolation_is_scale_times_the_training_size(flow):
    x = F.extrapolation_images(flow, 3, n=2, seed=1)
    assert x.shape == (2, 48, 48, 3)
    # Not a tiling: the big canvas is not a repeat of its top-left tile.
    assert not np.array_equal(x[0, :16, :16], x[0, 16:32, :16])


def test_infoloss_level_sets_and_labels():
    assert P.infoloss_level_sets(3) == [[], [1], [1, 2]]
    assert P.infoloss_level_sets(3, include_all=True) == [[], [1], [1, 2], [1, 2, 3]]
    assert F.infoloss_labels(5) == ["g(z)", "new z1", "new z1-2", "new z1-3", "new z1-4"]


def test_infoloss_first_column_is_the_reconstruction(flow, photos):
    cols = F.infoloss_images(flow, photos[:3], seed=0)
    assert cols.shape == (3, 3, 16, 16, 3)
    recon = P.decode_images(flow, P.encode_images(flow, photos[:3]))
    assert np.array_equal(cols[:, 0], recon)
    # The flow is a bijection: g(f(x)) is x up to the last 8-bit step.
    assert np.abs(cols[:, 0].astype(int) - photos[:3]).max() <= 1
    # Resampling changes the picture, more levels change it more.
    d1 = np.abs(cols[:, 1].astype(int) - recon).mean()
    d2 = np.abs(cols[:, 2].astype(int) - recon).mean()
    assert d1 > 1.0 and d2 >= d1 * 0.9


def test_infoloss_columns_replace_exactly_their_levels(flow, photos):
    """Column k = decode with z1..zk from the seed's ε and every other level as encoded."""
    x = photos[:2]
    cols = F.infoloss_images(flow, x, temperature=0.8, seed=5, include_all=True)
    zs = P.encode_images(flow, x)
    for k, levels in enumerate(P.infoloss_level_sets(3, include_all=True)):
        expected = P.decode_images(flow, nc.resample(zs, levels, 0.8, generator=5))
        assert np.array_equal(cols[:, k], expected)


def test_infoloss_zero_mode_is_seed_free_and_equals_zero_temperature(flow, photos):
    x = photos[:2]
    z0 = F.infoloss_images(flow, x, seed=0, mode="zero")
    z1 = F.infoloss_images(flow, x, seed=1, mode="zero")
    t0 = F.infoloss_images(flow, x, temperature=0.0, seed=9, mode="noise")
    assert np.array_equal(z0, z1) and np.array_equal(z0, t0)
    n0 = F.infoloss_images(flow, x, seed=0)
    n1 = F.infoloss_images(flow, x, seed=1)
    assert np.array_equal(n0[:, 0], n1[:, 0]) and not np.array_equal(n0[:, 1], n1[:, 1])


def test_infoloss_grid_with_labels(flow, photos):
    cols = F.infoloss_images(flow, photos[:2])
    plain = F.infoloss_grid(cols, zoom=2)
    assert plain.shape == (2 * 32 + 3 * 2, 3 * 32 + 4 * 2, 3)
    labelled = F.infoloss_grid(cols, zoom=2, labels=F.infoloss_labels(3))
    strip = labelled.shape[0] - plain.shape[0]
    assert strip > 0 and np.array_equal(labelled[strip:], plain)
    assert labelled[:strip].min() < 128  # dark text on the white strip


def test_manifold_angles():
    full = A.manifold_angles(8, 8, phi2=0.3)
    assert len(full) == 64 and full[0] == (0.0, 0.0, 0.3)
    assert full[9] == pytest.approx((math.pi / 4, math.pi / 4, 0.3))
    assert max(a for a, _, _ in full) < 2 * math.pi
    quarter = A.manifold_angles(8, 8, span=math.pi / 2, endpoint=True)
    assert quarter[7] == pytest.approx((0.0, math.pi / 2, 0.0))
    assert quarter[63] == pytest.approx((math.pi / 2, math.pi / 2, 0.0))


def test_sweep_angles_loop_once():
    a = A.sweep_angles("phi1", 4, base=(0.1, 0.2, 0.3))
    assert a[0] == (0.1, 0.2, 0.3)
    assert [p[1] - 0.2 for p in a] == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])
    assert all(p[0] == 0.1 and p[2] == 0.3 for p in a)
    with pytest.raises(ValueError):
        A.sweep_angles("theta", 4)


def test_sphere_hits_the_anchor_images(flow, photos):
    anchors = F.anchors_from_images(flow, photos)
    angles = [(0, 0, 0), (0, 0, math.pi / 2), (0, math.pi / 2, 0), (math.pi / 2, 0, 0)]
    out = P.sphere_images(flow, anchors, angles, batch_size=3)
    recon = P.decode_images(flow, P.encode_images(flow, photos))
    for img, i in zip(out, (0, 1, 2, 4)):
        assert np.abs(img.astype(int) - recon[i]).max() <= 1
    with pytest.raises(nc.ShapeError):
        F.anchors_from_images(flow, photos[:7])


def test_manifold_grid_and_sweep(flow, photos):
    anchors = F.anchors_from_images(flow, photos)
    g = F.manifold_grid(flow, anchors, zoom=1, pad=1)
    assert g.shape == (8 * 16 + 9, 8 * 16 + 9, 3)
    recon0 = P.decode_images(flow, [z for z in anchors[0]])[0]
    assert np.abs(g[1:17, 1:17].astype(int) - recon0).max() <= 1  # (0, 0, 0) is z1
    frames = F.manifold_sweep(flow, anchors, frames=2, size=2, pad=1)
    assert frames.shape == (2, 2 * 16 + 3, 2 * 16 + 3, 3)
    assert np.array_equal(frames[0], F.manifold_grid(flow, anchors, 0.0, size=2, pad=1))
    assert not np.array_equal(frames[0], frames[1])


# ---------------------------------------------------------------- the pipeline under the figures
def test_decode_with_a_per_scale_callback_is_the_plain_decode(flow):
    """The hook the pipeline uses for progress and cancellation changes nothing, bit for bit."""
    zs = flow.sample_latents(3, 32, 16, temperature=0.8, generator=2)
    calls = []
    with torch.inference_mode():
        want = flow.decode(zs)
        got = flow.decode(zs, lambda: calls.append(1))
    assert torch.equal(got, want)
    assert len(calls) == flow.config.scales


def test_cancel_stops_between_scales_with_nvp_cancelled(flow):
    seen = []
    with pytest.raises(nc.Cancelled):
        P.sample_images(flow, 4, batch_size=4, progress=seen.append, cancel=lambda: len(seen) >= 2)
    assert seen == pytest.approx([1 / 3, 2 / 3])  # stopped inside the only chunk, not after it
    with pytest.raises(nc.Cancelled):
        P.decode_images(flow, flow.sample_latents(1, 16, 16), cancel=lambda: True)


def test_encode_and_score_is_one_pass_with_the_flows_bits_per_dim(flow, photos, monkeypatch):
    want = flow.bits_per_dim(nc.from_numpy_image(photos), noise=False).numpy()
    calls = []
    forward = type(flow).forward
    monkeypatch.setattr(type(flow), "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    zs, bpd = P.encode_and_score(flow, photos, batch_size=5)
    assert calls == [5, 3]  # one forward pass per chunk gives latents and bits/dim
    np.testing.assert_allclose(bpd, want, rtol=1e-6)
    monkeypatch.undo()
    for a, b in zip(zs, P.encode_images(flow, photos)):
        assert torch.equal(a, b)


def test_sample_seeded_is_each_seeds_single_sample(flow):
    both = P.sample_seeded(flow, [4, 9], 16, 32, temperature=0.6)
    assert both.shape == (2, 16, 32, 3)
    assert np.array_equal(both[1], P.sample_seeded(flow, [9], 16, 32, temperature=0.6)[0])
    assert np.array_equal(both[0], nc.to_numpy_image(flow.sample(1, 16, 32, 0.6, generator=4))[0])


def test_infoloss_columns_of_latents_match_the_figure(flow, photos):
    zs = P.encode_images(flow, photos[:2])
    cols = P.infoloss_columns(flow, zs, P.infoloss_level_sets(3), temperature=0.8, seed=5)
    assert np.array_equal(cols, F.infoloss_images(flow, photos[:2], temperature=0.8, seed=5))


def test_sphere_images_chunked_progress_reaches_one(flow, photos):
    anchors = F.anchors_from_images(flow, photos)
    angles = A.manifold_angles(2, 3)
    seen = []
    out = P.sphere_images(flow, anchors, angles, batch_size=4, progress=seen.append)
    assert out.shape == (6, 16, 16, 3)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert np.array_equal(out, P.sphere_images(flow, anchors, angles, batch_size=6))
