"""Saving and loading: identical outputs, and every kind of bad file gets its own error."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

import nvp_core as nc
from conftest import tiny_config


def test_save_load_round_trip(tmp_path, tiny_flow):
    path = nc.save(tiny_flow, tmp_path / "m", metadata={"step": 12, "test_bpd": 4.5})
    assert path.name == "model.safetensors"
    assert json.loads((tmp_path / "m" / "config.json").read_text())["width"] == 4
    flow = nc.load(tmp_path / "m")
    assert flow.metadata == {"step": 12, "test_bpd": 4.5}
    assert not flow.training
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(flow.log_prob(x), tiny_flow.log_prob(x))
        assert torch.equal(flow.sample(2, generator=3), tiny_flow.sample(2, generator=3))
    # A single .safetensors file works too, and loading from the file path directly.
    single = nc.save(tiny_flow, tmp_path / "x.safetensors")
    assert nc.load(single).config == tiny_flow.config
    assert nc.load(path).config == tiny_flow.config


def test_missing_file(tmp_path):
    with pytest.raises(nc.ModelFileError, match="no model file"):
        nc.load(tmp_path / "nope.safetensors")


def test_truncated_file(tmp_path, tiny_flow):
    path = nc.save(tiny_flow, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    for cut in (4, 100, len(raw) // 2, len(raw) - 3):
        path.write_bytes(raw[:cut])
        with pytest.raises(nc.ModelFileError, match="truncated|empty|not a safetensors"):
            nc.load(path)


def test_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(Evil(), protocol=4))
    with pytest.raises(nc.ModelFileError, match="pickle"):
        nc.load(p)
    assert not marker.exists()
    z = tmp_path / "ckpt.pt"
    torch.save({"a": torch.zeros(2)}, z)
    with pytest.raises(nc.ModelFileError, match="zip|not a safetensors"):
        nc.load(z)


def test_foreign_safetensors_file(tmp_path):
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(p))
    with pytest.raises(nc.ModelFileError, match="not an NVP Explorer model"):
        nc.load(p)


def test_mismatched_shapes_and_bad_config(tmp_path, tiny_flow):
    from nvp_core.io import FORMAT
    from safetensors.torch import save as st_save

    tensors = {k: v.contiguous() for k, v in tiny_flow.state_dict().items()}
    cfg = tiny_config(width=5)  # the weights are width 4 (close enough that only the shapes tell)
    p = tmp_path / "bad.safetensors"
    p.write_bytes(st_save(tensors, metadata={"format": FORMAT, "config": cfg.to_json()}))
    with pytest.raises(nc.ModelFileError, match="do not fit the config.*wrong shapes"):
        nc.load(p)
    p.write_bytes(st_save(tensors, metadata={"format": FORMAT, "config": '{"width": -1}'}))
    with pytest.raises(nc.ModelFileError, match="invalid config.*width"):
        nc.load(p)
    del tensors[next(iter(tensors))]
    p.write_bytes(st_save(tensors, metadata={"format": FORMAT, "config": tiny_flow.config.to_json()}))
    with pytest.raises(nc.ModelFileError, match="missing"):
        nc.load(p)


def test_image_file_given_as_model(tmp_path):
    from PIL import Image

    p = tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(p)
    with pytest.raises(nc.ModelFileError, match="an image"):
        nc.load(p)


def test_config_validation_names_the_field():
    assert nc.FlowConfig() == nc.FlowConfig.from_json(nc.FlowConfig().to_json())
    nc.RealNVP(nc.FlowConfig())  # the default is a valid model
    for kw, field in ((dict(width=0), "width"), (dict(norm="layer"), "norm"), (dict(alpha=0.7), "alpha"),
                      (dict(scales=True), "scales"), (dict(image_size=30), "image_size")):
        with pytest.raises(nc.ConfigError, match=field):
            nc.FlowConfig(**kw)
    with pytest.raises(nc.ConfigError, match="unknown FlowConfig field.*colour"):
        nc.FlowConfig.from_dict({"colour": 3})
    with pytest.raises(nc.ConfigError, match="malformed"):
        nc.FlowConfig.from_json("{")
    assert nc.FlowConfig.default_scales(32) == 4 and nc.FlowConfig.default_scales(64) == 5


def test_resolve_device():
    assert nc.resolve_device("cpu").type == "cpu"
    assert nc.resolve_device(None).type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(nc.ModelFileError, match="CUDA"):
            nc.resolve_device("cuda")


def test_a_config_json_beside_the_weights_opens_its_model_folder(tmp_path):
    torch.manual_seed(0)
    flow = nc.RealNVP(nc.FlowConfig(scales=2, width=4, blocks=1, image_size=8))
    nc.save(flow, tmp_path / "m", metadata={"step": 3})
    again = nc.load(tmp_path / "m" / "config.json")
    assert again.source == str(tmp_path / "m" / "model.safetensors") and again.metadata["step"] == 3
    assert all(torch.equal(a, b) for a, b in zip(flow.state_dict().values(), again.state_dict().values()))
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "config.json").write_text("{}")
    with pytest.raises(nc.NVPError):  # no weights beside it: still an error about that file
        nc.load(tmp_path / "lone" / "config.json")
