"""The shipped model loads, and its test bits/dim is what its model card says."""
from __future__ import annotations

import re

import torch

import nvp_core as nc
from nvp_core.data import load_photo_crops
from nvp_core.train import evaluate_bits_per_dim


def _card_value() -> float:
    card = (nc.default_model_path() / "MODEL.md").read_text(encoding="utf-8")
    m = re.search(r"test, the first 256 test crops[^|]*\|\s*([0-9.]+)", card)
    assert m, "MODEL.md lost its test-slice line"
    return float(m.group(1))


def test_default_model_loads_and_matches_its_card():
    flow = nc.load(nc.default_model_path())
    assert flow.config.image_size == 32 and len(flow.latent_shapes(32, 32)) == 4
    assert flow.metadata["data"] == "photo-crops" and flow.metadata["step"] == 3000
    data = load_photo_crops(32, n_train=1, n_test=2000, seed=0)  # the card's split; first 256
    bpd = evaluate_bits_per_dim(flow, data.test[:256], seed=0)
    assert abs(bpd - _card_value()) < 0.05
    # It has learned: far below the 8 bits/dim of raw bytes and below PNG on the same crops.
    from nvp_core.data import png_bits_per_dim

    assert bpd < png_bits_per_dim(data.test[:64]) - 0.5
    s = flow.sample(2, generator=0)
    assert s.shape == (2, 3, 32, 32) and torch.isfinite(s).all()


def test_second_model_at_64_has_five_levels_and_matches_its_card():
    path = nc.ASSETS / "models" / "photo-crops-64"
    flow = nc.load(path)
    assert flow.config.image_size == 64 and len(flow.latent_shapes(64, 64)) == 5
    card = (path / "MODEL.md").read_text(encoding="utf-8")
    expected = float(re.search(r"test, the first 256 test crops[^|]*\|\s*([0-9.]+)", card).group(1))
    data = load_photo_crops(64, n_train=1, n_test=2000, seed=0)
    assert abs(evaluate_bits_per_dim(flow, data.test[:256], seed=0) - expected) < 0.05
