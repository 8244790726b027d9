"""Hostile model files: each is refused fast, with one clear ModelFileError, before any
large read or allocation (issue 13: hangs, memory bombs, silent wrong results)."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest
import torch
from safetensors.torch import save as st_save_bytes

import nvp_core as nc
from nvp_core import io as nio
from nvp_core import limits
from conftest import tiny_config


def write_model(path, tensors, **header):
    """A safetensors file with our format tag and the given header fields overriding."""
    meta = {"format": nio.FORMAT, "format_version": nio.FORMAT_VERSION,
            "config": tiny_config().to_json(), "metadata": "{}"}
    meta.update(header)
    path.write_bytes(st_save_bytes(tensors, metadata=meta))
    return path


def saved_tensors(flow):
    return {k: v.detach().clone().contiguous() for k, v in flow.state_dict().items()}


def refused(path, *words, loader=nc.load):
    with pytest.raises(nc.ModelFileError) as exc:
        loader(path)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def in_thread(fn, timeout=10.0):
    """Run fn in a daemon thread; fail (rather than hang the suite) if it blocks."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} blocked for {timeout} s"
    return box


# ---------------------------------------------------------------- hangs and huge reads
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("loader", [nc.load, nc.load_metadata])
def test_a_fifo_is_refused_without_blocking(tmp_path, loader):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    box = in_thread(lambda: loader(fifo))
    assert isinstance(box.get("error"), nc.ModelFileError), box
    assert "FIFO" in str(box["error"])
    folder = tmp_path  # a model folder whose weights are the FIFO
    assert isinstance(in_thread(lambda: loader(folder)).get("error"), nc.ModelFileError)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_without_reading(tmp_path):
    box = in_thread(lambda: nc.load("/dev/zero"), timeout=5)
    assert isinstance(box.get("error"), nc.ModelFileError) and "device" in str(box["error"])
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    box = in_thread(lambda: nc.load_metadata(link), timeout=5)
    assert isinstance(box.get("error"), nc.ModelFileError) and "device" in str(box["error"])


def test_oversized_file_and_header_are_refused_before_reading(tmp_path, monkeypatch):
    path = write_model(tmp_path / "m.safetensors", saved_tensors(nc.RealNVP(tiny_config())))
    monkeypatch.setattr(nio, "MAX_MODEL_FILE_BYTES", 1000)
    refused(path, "limit")
    monkeypatch.undo()
    # A header that claims 1 GB (the file is short) and one that is long but over the limit.
    raw = path.read_bytes()
    (tmp_path / "claim.safetensors").write_bytes((10**9).to_bytes(8, "little") + raw[8:])
    refused(tmp_path / "claim.safetensors", "truncated")
    monkeypatch.setattr(nio, "MAX_HEADER_BYTES", 100)
    refused(path, "header", "limit")
    refused(path, "header", "limit", loader=nc.load_metadata)


def test_header_config_asking_for_gigabytes_fails_fast_without_allocating(tmp_path):
    """The issue's 54 KB file: config width 4096 × 64 blocks × 10 scales allocated 7.9 GB."""
    small = tiny_config(channel_width_factor=1)
    bomb = dict(small.to_dict(), width=4096, max_width=8192, blocks=64, scales=10, image_size=512)
    path = write_model(tmp_path / "bomb.safetensors", saved_tensors(nc.RealNVP(small)),
                       config=json.dumps(bomb))
    assert path.stat().st_size < 300_000  # a few hundred KB claiming ~10^11 parameters
    start = time.perf_counter()
    msg = refused(path, "parameters", "limit")
    assert time.perf_counter() - start < 2.0
    assert "batch" not in msg  # the cause is the file, not the batch size
    # Within the parameter limit but far beyond what the file holds: still refused before building.
    big = dict(tiny_config().to_dict(), width=256, max_width=256, blocks=8, scales=3)
    path = write_model(tmp_path / "big.safetensors", saved_tensors(nc.RealNVP(tiny_config())),
                       config=json.dumps(big))
    refused(path, "holds only")
    # Few parameters but 60 000 residual blocks: minutes of building; refused.
    slow = dict(tiny_config().to_dict(), width=1, max_width=1, blocks=64, scales=10, image_size=512)
    path = write_model(tmp_path / "slow.safetensors", saved_tensors(nc.RealNVP(tiny_config())),
                       config=json.dumps(slow))
    refused(path, "residual blocks", "limit")


@pytest.mark.parametrize("cfg", [
    {}, dict(norm="actnorm"), dict(norm="none", blocks=0, scales=1, image_size=4, channels=1),
    dict(width=8, blocks=3, scales=2, max_width=8, channels=2, image_size=8), dict(width=5, max_width=7),
])
def test_parameter_formula_matches_the_real_model(cfg):
    """The estimate that guards loading must stay exact: a change of architecture that the
    formula does not know fails here."""
    config = tiny_config(**cfg)
    flow = nc.RealNVP(config)
    assert limits.estimate_parameters(config) == sum(p.numel() for p in flow.parameters())
    assert limits.estimate_parameters(config.to_dict()) == sum(p.numel() for p in flow.parameters())
    blocks = sum(1 for m in flow.modules() if type(m).__name__ == "ResidualBlock")
    assert limits.residual_blocks(config) == blocks


# ---------------------------------------------------------------- tracebacks
def nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["config", "metadata"])
def test_deeply_nested_json_in_config_or_metadata(tmp_path, where):
    path = write_model(tmp_path / "m.safetensors", saved_tensors(nc.RealNVP(tiny_config())),
                       **{where: nested(100_000)})
    refused(path, "nested")
    if where == "metadata":
        refused(path, "nested", loader=nc.load_metadata)


def test_deeply_nested_header(tmp_path):
    body = ('{"__metadata__": {"format": "%s"}, "x": %s}' % (nio.FORMAT, nested(100_000))).encode()
    (tmp_path / "m.safetensors").write_bytes(len(body).to_bytes(8, "little") + body)
    refused(tmp_path / "m.safetensors", "nested")
    refused(tmp_path / "m.safetensors", "nested", loader=nc.load_metadata)


@pytest.mark.parametrize("value", [["a", "b"], "text", 5])
def test_metadata_table_that_is_not_a_table(tmp_path, value):
    body = json.dumps({"__metadata__": value}).encode()
    (tmp_path / "m.safetensors").write_bytes(len(body).to_bytes(8, "little") + body)
    refused(tmp_path / "m.safetensors", "__metadata__")
    refused(tmp_path / "m.safetensors", "__metadata__", loader=nc.load_metadata)


@pytest.mark.parametrize("doc", ["[1, 2]", '"text"', "3"])
def test_training_metadata_that_is_not_an_object(tmp_path, doc):
    path = write_model(tmp_path / "m.safetensors", saved_tensors(nc.RealNVP(tiny_config())), metadata=doc)
    refused(path, "metadata", "not an object")


def test_header_only_read_for_metadata(tmp_path, tiny_flow):
    path = nc.save(tiny_flow, tmp_path / "m", metadata={"step": 7})
    assert nc.load_metadata(path) == {"step": 7} == nc.load(path).metadata


# ---------------------------------------------------------------- silent wrong results
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    tensors = saved_tensors(nc.RealNVP(tiny_config()))
    key = next(k for k in tensors if k.endswith("bound.scale"))
    tensors[key][0, 0] = bad
    msg = refused(write_model(tmp_path / "m.safetensors", tensors), "NaN or infinite")
    assert key in msg


def test_future_format_version_is_refused(tmp_path):
    tensors = saved_tensors(nc.RealNVP(tiny_config()))
    refused(write_model(tmp_path / "a.safetensors", tensors, format_version="2"), "version '2'", "newer")
    refused(write_model(tmp_path / "b.safetensors", tensors, format_version="1.x"), "version")
    refused(tmp_path / "a.safetensors", "newer", loader=nc.load_metadata)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.int32])
def test_integer_or_bool_weights_are_refused(tmp_path, dtype):
    tensors = saved_tensors(nc.RealNVP(tiny_config()))
    key = next(k for k in tensors if k.endswith("bound.scale"))
    tensors[key] = tensors[key].to(dtype)
    refused(write_model(tmp_path / "m.safetensors", tensors), key, "expected float32")


def test_half_precision_weights_still_load(tmp_path, tiny_flow):
    """Lower-precision floats are a real choice (smaller files), not an error."""
    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in saved_tensors(tiny_flow).items()}
    flow = nc.load(write_model(tmp_path / "m.safetensors", tensors))
    assert flow.scales[0].checker[0].coupling.bound.scale.dtype == torch.float32


# ---------------------------------------------------------------- training checkpoints (--resume)
@pytest.mark.parametrize("header", [
    {"__metadata__": ["a", "list"]},
    {"__metadata__": {"format": "nvp-explorer/checkpoint", "state": "[" * 100_000 + "]" * 100_000}},
    "deep",
])
def test_hostile_checkpoint_is_a_training_error(tmp_path, header):
    from nvp_core import checkpoint as ckpt

    if header == "deep":
        body = ("[" * 100_000 + "]" * 100_000).encode()
    else:
        if isinstance(header.get("__metadata__"), dict):
            header["__metadata__"]["format"] = ckpt.FORMAT
        body = json.dumps(header).encode()
    path = tmp_path / ckpt.CHECKPOINT_NAME
    path.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(nc.TrainingError) as exc:
        ckpt.load_checkpoint(path)
    assert "\n" not in str(exc.value)
