"""The training loop shared by the CLI, the GUI's training tab and torchrun.

The code lives in :mod:`nvp_core.training` (one module per part: config, the
Trainer's steps, the EMA, the run folder and its lock); this module keeps the
long-standing import path ``from nvp_core.train import TrainConfig, Trainer, …``.
"""
from __future__ import annotations

import os

from . import checkpoint as ckpt
from .training import (
    AMP_MODES, LR_SCHEDULES, STRUCTURAL, TrainConfig, TrainEvent, Trainer, evaluate_bits_per_dim,
    hardware_description, scale_parameters, train,
)


def load_train_config(out: str | os.PathLike) -> TrainConfig:
    """The TrainConfig stored in ``out``'s checkpoint (what a resume will use)."""
    _, info = ckpt.load_checkpoint(os.path.join(out, ckpt.CHECKPOINT_NAME))
    return TrainConfig.from_dict(info["config"])


__all__ = ["AMP_MODES", "LR_SCHEDULES", "STRUCTURAL", "TrainConfig", "TrainEvent", "Trainer", "evaluate_bits_per_dim",
           "hardware_description", "load_train_config", "scale_parameters", "train"]
