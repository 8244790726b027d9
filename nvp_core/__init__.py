"""nvp_core: Real NVP (Dinh, Sohl-Dickstein & Bengio, 2016) in PyTorch, headless.

The explorer, the CLI and the trainer all stand on this package; it never imports Qt.
"""
from pathlib import Path

from .angles import manifold_angles, sweep_angles
from .config import FlowConfig
from .density import bits_per_dim_from_log_prob
from .errors import Cancelled, ConfigError, DataError, ModelFileError, NVPError, ShapeError, TrainingError
from .flow import RealNVP
from .io import load, load_metadata, resolve_device, save
from .latents import (
    concat, flatten, level_images, make_generator, resample, select, slerp, spatial_layout, sphere,
    sphere_batch, sphere_weights, unflatten,
)
from .data import BUILTIN_DATASETS
from .shapes import SHAPE_NAMES, Scenes, ShapesData, generate_scenes, render_scenes, scene_factors
from .latents import Latents
from .pipeline import (
    decode_images, encode_and_score, encode_images, infoloss_columns, infoloss_level_sets, sample_images,
    sample_seeded, seeded_latents, sphere_images,
)
from .preprocess import dequantize, from_numpy_image, quantize, to_numpy_image
from .train import TrainConfig, Trainer, TrainEvent

__version__ = "0.1.0"

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL = ASSETS / "models" / "photo-crops-32"


def default_model_path() -> Path:
    """The model that ships in assets/ (what `python main.py` and `nvp sample` open)."""
    return DEFAULT_MODEL


__all__ = [
    "Cancelled", "Latents", "bits_per_dim_from_log_prob", "decode_images", "encode_and_score", "encode_images",
    "infoloss_columns", "infoloss_level_sets", "manifold_angles", "sample_images", "sample_seeded",
    "seeded_latents", "sphere_images", "sweep_angles",
    "ASSETS", "ConfigError", "DEFAULT_MODEL", "DataError", "FlowConfig", "ModelFileError", "NVPError",
    "RealNVP", "ShapeError", "TrainingError", "concat", "default_model_path", "dequantize", "flatten",
    "from_numpy_image", "level_images", "load", "load_metadata", "make_generator", "quantize", "resample",
    "resolve_device", "save", "select", "slerp", "spatial_layout", "sphere", "sphere_batch",
    "sphere_weights", "to_numpy_image", "unflatten", "TrainConfig", "Trainer", "TrainEvent",
    "BUILTIN_DATASETS", "SHAPE_NAMES", "Scenes", "ShapesData", "generate_scenes", "render_scenes", "scene_factors",
]
