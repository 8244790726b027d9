"""Every shipped model loads, and its test bits/dim is what its model card says.

The card is the model's promise: the first 256 held-out images of the data set
it was trained on (its metadata names the set, the seed and the split size) must
score what the card's "test, the first 256 test …" line says, within 0.05.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import nvp_core as nc
from nvp_core.data import HeldOut, png_bits_per_dim
from nvp_core.train import evaluate_bits_per_dim

MODELS = sorted(p for p in (nc.ASSETS / "models").iterdir() if (p / "MODEL.md").is_file())


def _card_value(path: Path) -> float:
    card = (path / "MODEL.md").read_text(encoding="utf-8")
    m = re.search(r"test, the first 256 test (?:crops|scenes|images)[^|]*\|\s*\**([0-9.]+)", card)
    assert m, f"{path.name}/MODEL.md lost its test-slice line"
    return float(m.group(1))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_shipped_model_matches_its_card(path):
    flow = nc.load(path)
    size = flow.config.image_size
    meta = flow.metadata
    assert len(flow.latent_shapes(size, size)) == nc.FlowConfig.default_scales(size)
    test = HeldOut.of(meta).load(size, 256)
    bpd = evaluate_bits_per_dim(flow, test, seed=0)
    assert abs(bpd - _card_value(path)) < 0.05
    # It has learned: far below the 8 bits/dim of raw bytes and below PNG on the same images.
    assert bpd < png_bits_per_dim(test[:64]) - 0.5
    s = flow.sample(2, generator=0)
    assert s.shape == (2, 3, size, size) and torch.isfinite(s).all()


def test_default_model_is_the_shapes_model():
    path = nc.default_model_path()
    assert path.name == "shapes-32" and path in MODELS
    flow = nc.load(path)
    assert flow.metadata["data"] == "shapes" and flow.config.layout == "official"
