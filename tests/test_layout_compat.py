"""Files written before the layout fix keep computing the function they learnt.

The coupling layout changed what a set of weights means, so a config without
the ``layout`` field (every file the first nvp_core wrote) must load as the old
``ordered`` layout with single-width channel nets — never silently as today's.
"""
from __future__ import annotations

import json

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

import nvp_core as nc
from conftest import randomize


def _old_file(tmp_path):
    """A tiny model written as the first nvp_core wrote it: no layout keys in its config."""
    cfg = nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, layout="ordered", channel_width_factor=1)
    torch.manual_seed(0)
    flow = randomize(nc.RealNVP(cfg), seed=1)
    path = nc.save(flow, tmp_path / "old.safetensors")
    with safe_open(str(path), "pt") as f:
        header = dict(f.metadata())
    config = json.loads(header["config"])
    del config["layout"], config["channel_width_factor"]
    header["config"] = json.dumps(config)
    save_file(load_file(str(path)), str(path), metadata=header)
    return flow, path


def test_config_without_layout_means_the_old_layout():
    old = nc.FlowConfig.from_dict({"scales": 2, "image_size": 8})
    assert (old.layout, old.channel_width_factor) == ("ordered", 1)
    new = nc.FlowConfig(scales=2, image_size=8)
    assert (new.layout, new.channel_width_factor) == ("official", 2)
    assert nc.FlowConfig.from_json(new.to_json()) == new


def test_old_file_loads_unchanged(tmp_path):
    flow, path = _old_file(tmp_path)
    loaded = nc.load(path)
    assert loaded.config.layout == "ordered" and loaded.config.channel_width_factor == 1
    x8 = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(loaded.bits_per_dim(x8), flow.bits_per_dim(x8))
    # The same weights read as the new layout are a different function: the field matters.
    other = nc.RealNVP(nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1, channel_width_factor=1))
    other.load_state_dict(flow.state_dict())
    assert not torch.allclose(other.bits_per_dim(x8), flow.bits_per_dim(x8))


def test_new_files_record_the_official_layout(tmp_path):
    flow = nc.RealNVP(nc.FlowConfig(scales=2, image_size=8, width=4, blocks=1))
    path = nc.save(flow, tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["layout"] == "official"
    assert nc.load(path).config.layout == "official"
