"""Shared fixtures: tiny models, offscreen Qt, and a guard against leaked threads."""
from __future__ import annotations

import gc
import os
import sys
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NVP_EXPLORER_TESTING", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
import torch  # noqa: E402

import nvp_core as nc  # noqa: E402

# One thread: tiny models gain nothing from two, and on a shared CPU OpenMP spinning
# made them ten times slower.
torch.set_num_threads(1)

_EXIT_STATUS = 0


def tiny_config(**overrides) -> nc.FlowConfig:
    base = dict(channels=3, scales=3, width=4, blocks=1, max_width=16, image_size=16)
    base.update(overrides)
    return nc.FlowConfig(**base)


def randomize(flow: nc.RealNVP, seed: int = 0, scale: float = 0.1) -> nc.RealNVP:
    """Perturb every parameter and running statistic: an identity-initialised
    flow would make Jacobian and invertibility tests pass trivially."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
        for name, b in flow.named_buffers():
            if b.is_floating_point():
                if "var" in name:
                    b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
                else:
                    b.add_(torch.randn(b.shape, generator=gen) * scale)
    return flow.eval()


@pytest.fixture
def tiny_flow() -> nc.RealNVP:
    torch.manual_seed(0)
    return randomize(nc.RealNVP(tiny_config()))


@pytest.fixture(autouse=True)
def gc_only_on_the_main_thread(request):
    """No automatic garbage collection during a test, and after a Qt test a full one on this
    (the GUI) thread: collected on a render worker, an old window's Qt objects deadlock
    ~QObject against the GUI thread (explorer/main_thread_gc.py does the same for the app).
    Tests without Qt leave no Qt garbage, so they skip the (slow, torch-sized) full collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if {"qtbot", "qapp"} & set(request.fixturenames):
        gc.collect()
    if was_enabled:
        gc.enable()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a Python thread running (a QThread shows up in
    QThread's own checks in the GUI tests; worker pools here)."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for t in threading.enumerate():
        if t in before or not t.is_alive() or t.daemon:
            continue
        t.join(timeout=5)
        if t.is_alive():
            leaked.append(t.name)
    assert not leaked, f"test left threads running: {leaked}"


def pytest_sessionfinish(session, exitstatus):
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Exit with pytest's own status before interpreter teardown.

    PySide6 + pyqtgraph can abort while Python finalises its objects
    (`Fatal Python error: bool_dealloc`, exit 134) after every test passed; the
    results are already reported here, so skip that teardown when Qt was used.
    """
    if "PySide6.QtWidgets" in sys.modules and os.environ.get("NVP_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS)


@pytest.fixture(scope="module")
def train_folder(tmp_path_factory):
    """24 smooth 20×20 images: a training folder for tiny runs (tests/test_train.py, test_warm_start.py)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(24):
        base = rng.integers(0, 256, (5, 5, 3)).astype(np.uint8)
        Image.fromarray(base).resize((20, 20), Image.Resampling.BILINEAR).save(root / f"im{i:02d}.png")
    return root


# ---- explorer GUI fixtures (tests/test_gui.py, test_render.py)
@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second torch thread; on a loaded 2-core machine
    OpenMP threads waiting on each other make them tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def explorer_settings(tmp_path):
    """A throw-away QSettings file, so tests never read or write the user's settings."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "explorer-settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def tiny_model_path(tmp_path, tiny_flow):
    """The tiny randomised flow saved as a model folder (what File ▸ Open model reads)."""
    folder = tmp_path / "tiny-model"
    nc.save(tiny_flow, folder, metadata={"test_bpd": 6.5, "dataset": "random", "step": 3})
    return folder
