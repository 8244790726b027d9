"""What a plain `pip install .` ships: every source package, and the models under assets/."""
from __future__ import annotations

from pathlib import Path

import pytest

import nvp_core as nc

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_source_package_is_listed():
    """Packages are listed by hand (a find cannot map assets/ to nvp_assets): a new
    subpackage that is not listed would be missing from the wheel."""
    listed = set(_setuptools()["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for top in ("nvp_core", "explorer") for p in (ROOT / top).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert on_disk <= listed, f"not in pyproject's packages: {sorted(on_disk - listed)}"


def test_assets_ship_as_package_data():
    cfg = _setuptools()
    assert cfg["package-dir"]["nvp_assets"] == "assets"
    assert "nvp_assets" in cfg["packages"]
    # One recursive glob, so a model folder added later (assets/models/NEW/) ships too.
    assert "models/**/*" in cfg["package-data"]["nvp_assets"]

def test_default_model_resolves_in_the_checkout():
    assert nc.ASSETS == ROOT / "assets"
    assert (nc.default_model_path() / "model.safetensors").is_file()
