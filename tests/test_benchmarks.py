"""Benchmarks are not tests, but each one runs here at its smallest size so none can rot,
and the inference fast path they made (cached, folded kernels) is checked against the
plain autograd path it replaces."""
from __future__ import annotations

import json
import math

import pytest
import torch

import nvp_core as nc
from conftest import randomize, tiny_config


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _run(module, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"{module.__name__.rsplit('.', 1)[-1]}.json"
    assert module.main(["--quick", "--threads", "1", "--json", str(out), *extra]) == 0
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch_threads"] == 1 and payload["machine"]["cpu"]
    (report,) = payload["results"].values()
    return report


def _numbers(rows, col):
    return [r[col] for r in rows if isinstance(r[col], (int, float))]


def test_matmul(tmp_path):
    from benchmarks import matmul

    r = _run(matmul, tmp_path)
    rows = r["tables"][0]["rows"]
    assert len(rows) == 4 and all(v > 0 for v in _numbers(rows, 3))
    assert r["data"]["limit_gflops"]["float32"] > 0


def test_train_throughput(tmp_path):
    from benchmarks import train_throughput

    r = _run(train_throughput, tmp_path)
    rows = r["tables"][0]["rows"]
    variants = [row[5] for row in rows]
    assert variants[:4] == ["eager", "channels_last", "bf16", "fused_adam"]
    assert all(isinstance(row[6], float) and row[6] > 0 for row in rows[:4])  # images/s
    assert all(row[9] > 0 for row in rows)  # GFLOP per image, counted
    # torch.compile gets 2 s in --quick: it reports a time or says it ran out, never hangs.
    assert variants[4].startswith("compile")
    assert isinstance(rows[4][6], float) or "did not finish in 2 s" in rows[4][6] or "failed" in rows[4][6]


def test_latency(tmp_path):
    from benchmarks import latency

    r = _run(latency, tmp_path)
    ops = {(row[0], row[1]) for row in r["tables"][0]["rows"]}
    assert len(ops) == 10  # five operations at two sizes
    assert all(row[3] > 0 and row[4] >= row[3] for row in r["tables"][0]["rows"])


def test_extrapolation(tmp_path):
    from benchmarks import extrapolation

    r = _run(extrapolation, tmp_path)
    rows = r["data"]["rows"]
    assert [row["side"] for row in rows] == [16, 32]
    assert all("error" not in row and row["median_s"] > 0 and row["finite"] for row in rows), rows


def test_density_with_a_given_model(tmp_path):
    pytest.importorskip("skimage")
    from benchmarks import density

    flow = randomize(nc.RealNVP(tiny_config()), seed=3)
    path = nc.save(flow, tmp_path / "m")
    r = _run(density, tmp_path, str(path.parent))
    methods = [row[0] for row in r["tables"][0]["rows"]]
    assert methods[0].startswith("Real NVP") and len(methods) == 5
    values = _numbers(r["tables"][0]["rows"], 1)
    assert all(0 < v < 32 for v in values) and math.isfinite(r["data"]["model_bpd"])


def test_density_codecs_by_hand():
    import io

    import numpy as np
    from PIL import Image

    from benchmarks.density import codec_bpd

    imgs = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(imgs[0]).save(buf, format="PNG", optimize=True, compress_level=9)
    got = codec_bpd(imgs[:1])["PNG per image"][0]
    assert got == pytest.approx(8 * buf.tell() / (8 * 8 * 3))
    assert got > 8  # random pixels do not compress; headers cost extra


def test_scaling(tmp_path):
    from benchmarks import scaling

    r = _run(scaling, tmp_path)
    rows = r["data"]["rows"]
    assert [(row["world"], row["threads"]) for row in rows] == [(1, 1), (2, 1)]
    assert all("error" not in row for row in rows), rows
    assert rows[1]["in_sync"] and rows[1]["images_per_s"] > 0


def test_fast_inference_path_matches_autograd_path():
    """Eval + no-grad calls use cached weight-normed kernels with batch norm folded in;
    they must equal the plain path, and follow in-place parameter updates."""
    flow = randomize(nc.RealNVP(tiny_config(blocks=2)), seed=4)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 0.98 + 0.01
    reference = flow.encode(x)  # grad enabled: the parametrized modules, no cache
    with torch.inference_mode():
        fast = flow.encode(x)
        back = flow.decode(fast)
    for a, b in zip(fast, reference):
        assert (a - b.detach()).abs().max().item() < 1e-4 * max(1.0, b.abs().max().item())
    assert (back - x).abs().max().item() < 1e-4
    with torch.no_grad():  # an optimizer-like in-place update must invalidate the cache
        for p in flow.parameters():
            p.mul_(1.05)
        updated = flow.encode(x)
    reference = flow.encode(x)
    for a, b in zip(updated, reference):
        assert (a - b.detach()).abs().max().item() < 1e-4 * max(1.0, b.abs().max().item())
    assert (updated[0] - fast[0]).abs().max().item() > 1e-3  # and the update did change the output
