"""nvp_core: Real NVP (Dinh, Sohl-Dickstein & Bengio, 2016) in PyTorch, headless.

The explorer, the CLI and the trainer all stand on this package; it never imports Qt.
"""
from pathlib import Path

from .config import FlowConfig
from .errors import Cancelled, ConfigError, DataError, ModelFileError, NVPError, ShapeError, TrainingError
# Everything else imports torch (1–4 s): it is loaded on first use (PEP 562), so that
# `nvp --help` answers at once and a Ctrl-C while torch loads lands inside the CLI's handler.
# `nc.load`, `from nvp_core import RealNVP` etc. work exactly as before.
_LAZY: dict[str, tuple[str, ...]] = {
    "angles": ("manifold_angles", "sweep_angles"),
    "data": ("BUILTIN_DATASETS",),
    "density": ("bits_per_dim_from_log_prob",),
    "flow": ("RealNVP",),
    "io": ("load", "load_metadata", "resolve_device", "save"),
    "latents": ("Latents", "concat", "flatten", "level_images", "make_generator", "resample", "select", "slerp",
                "spatial_layout", "sphere", "sphere_batch", "sphere_weights", "unflatten"),
    "pipeline": ("decode_images", "encode_and_score", "encode_images", "infoloss_columns", "infoloss_level_sets",
                 "sample_images", "sample_seeded", "seeded_latents", "sphere_images"),
    "shapes": ("SHAPE_NAMES", "Scenes", "ShapesData", "generate_scenes", "render_scenes", "scene_factors"),
    "preprocess": ("dequantize", "from_numpy_image", "quantize", "to_numpy_image"),
    "train": ("TrainConfig", "Trainer", "TrainEvent"),
    "scale_transfer": ("WarmStart", "warm_start"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__version__ = "0.1.0"


def _assets_dir() -> Path:
    """Where the shipped models are: ``assets/`` beside the package in a checkout (run from
    the tree or installed with ``-e``), else the ``nvp_assets`` package data that a wheel or a
    plain ``pip install .`` carries (pyproject.toml maps assets/ to it)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "assets").is_dir():
        return root / "assets"
    import importlib.util

    # assets/ has no __init__.py, so nvp_assets is a namespace package: its search path lists
    # every portion on sys.path in order — the installed folder first, and, where an editable
    # install of the checkout is also visible (a venv with system site-packages), that install's
    # path-hook entry, which is no folder at all (importlib.resources.files() chokes on it).
    # The first real folder holding models/ is the one this nvp_core was installed with.
    try:
        spec = importlib.util.find_spec("nvp_assets")
    except (ImportError, ValueError):
        spec = None
    for entry in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(entry)
        if (folder / "models").is_dir():
            return folder
    return root / "assets"  # a broken install: the error will name where it was looked for


ASSETS = _assets_dir()
DEFAULT_MODEL = ASSETS / "models" / "shapes-32"


def default_model_path() -> Path:
    """The model that ships in assets/ (what `python main.py` and `nvp sample` open)."""
    return DEFAULT_MODEL


__all__ = [
    "ASSETS", "ConfigError", "DEFAULT_MODEL", "DataError", "FlowConfig", "ModelFileError", "NVPError",
    "RealNVP", "ShapeError", "TrainingError", "concat", "default_model_path", "dequantize", "flatten",
    "from_numpy_image", "level_images", "load", "load_metadata", "make_generator", "quantize", "resample",
    "resolve_device", "save", "select", "slerp", "spatial_layout", "sphere", "sphere_batch",
    "sphere_weights", "to_numpy_image", "unflatten", "TrainConfig", "Trainer", "TrainEvent",
    "Cancelled", "Latents", "bits_per_dim_from_log_prob", "decode_images", "encode_and_score", "encode_images",
    "infoloss_columns", "infoloss_level_sets", "manifold_angles", "sample_images", "sample_seeded",
    "seeded_latents", "sphere_images", "sweep_angles",
    "BUILTIN_DATASETS", "SHAPE_NAMES", "Scenes", "ShapesData", "generate_scenes", "render_scenes", "scene_factors",
    "WarmStart", "warm_start",
]
