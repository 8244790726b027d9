"""Warm start: a larger flow's first scales from a trained smaller one (``--init-from``)."""
from __future__ import annotations

import pytest
import torch

import nvp_core as nc
from nvp_core.errors import ConfigError, TrainingError
from nvp_core.train import TrainConfig, Trainer

from conftest import randomize, tiny_config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_copies_the_regular_scales_and_they_compute_the_same_function():
    torch.manual_seed(0)
    source = randomize(nc.RealNVP(tiny_config(scales=3, image_size=16)))
    torch.manual_seed(1)
    target = nc.RealNVP(tiny_config(scales=4, image_size=32)).eval()
    untouched = {k: v.clone() for k, v in target.scales[2].state_dict().items()}
    done = nc.warm_start(target, source)
    assert done.scales == (0, 1)  # the source's third scale is its final one: not a regular scale
    assert 0 < done.copied_parameters < done.total_parameters == sum(p.numel() for p in target.parameters())
    for k in (0, 1):
        for name, t in source.scales[k].state_dict().items():
            assert torch.equal(target.scales[k].state_dict()[name], t), name
    for name, t in target.scales[2].state_dict().items():
        assert torch.equal(t, untouched[name]), name
    # the copied scale is the same function at the larger size
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, la, za = source.scales[0](x)
        b, lb, zb = target.scales[0](x)
    assert torch.equal(a, b) and torch.equal(za, zb) and torch.equal(la, lb)
    assert "scales 1–2" in done.describe("m32")


@pytest.mark.parametrize("change, word", [({"layout": "ordered"}, "layout"), ({"blocks": 2}, "blocks"),
                                          ({"norm": "actnorm"}, "norm"), ({"width": 8}, "width")])
def test_refuses_a_model_whose_scales_mean_something_else(change, word):
    source = nc.RealNVP(tiny_config(scales=3, image_size=16, **change))
    target = nc.RealNVP(tiny_config(scales=4, image_size=32))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ConfigError, match=word):
        nc.warm_start(target, source)
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # nothing half-copied


@pytest.fixture(scope="module")
def folder(train_folder):
    return train_folder


def _config(folder, out, **kw) -> TrainConfig:
    base = dict(data=str(folder), size=16, out=str(out), steps=2, batch_size=8, width=4, blocks=1, max_width=8,
                eval_every=2, eval_images=8, sample_every=2, n_samples=4, checkpoint_every=2, warmup_steps=1,
                num_workers=1)
    base.update(kw)
    return TrainConfig(**base)


def test_a_run_starts_from_the_model_and_says_so(folder, tmp_path):
    torch.manual_seed(0)
    small = randomize(nc.RealNVP(nc.FlowConfig(channels=3, scales=2, width=4, blocks=1, max_width=8, image_size=8)))
    nc.save(small, tmp_path / "small")
    seen = {}

    def on_event(ev):
        if ev.kind == "start":
            seen["message"] = ev.message
            seen["scale0"] = {k: v.clone() for k, v in trainer.model.scales[0].state_dict().items()}

    trainer = Trainer(_config(folder, tmp_path / "run", init_from=str(tmp_path / "small")), on_event)
    trainer.run()
    assert "started scale 1 from" in seen["message"]
    for name, t in small.scales[0].state_dict().items():
        assert torch.equal(seen["scale0"][name], t), name
    assert nc.load(tmp_path / "run" / "model").metadata["step"] == 2


def test_a_missing_or_unfit_model_is_a_clear_training_error(folder, tmp_path):
    with pytest.raises(TrainingError, match="--init-from"):
        Trainer(_config(folder, tmp_path / "a", init_from=str(tmp_path / "nothing"))).run()
    other = nc.RealNVP(nc.FlowConfig(channels=3, scales=2, width=4, blocks=2, max_width=8, image_size=8))
    nc.save(other, tmp_path / "other")
    with pytest.raises(TrainingError, match="blocks"):
        Trainer(_config(folder, tmp_path / "b", init_from=str(tmp_path / "other"))).run()
