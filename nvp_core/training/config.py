"""TrainConfig: everything a training run needs, as plain JSON (it travels in checkpoints).

The model's defaults (width, blocks, max width, normalisation) are read from
``FlowConfig``'s own defaults, so ``nvp train``, the Training tab and a bare
``RealNVP()`` agree on the model they mean: one source of defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..config import NORMS, FlowConfig, JsonConfig
from ..data import PHOTO_CROPS

AMP_MODES = ("none", "bf16")
LR_SCHEDULES = ("constant", "cosine")
# Fields that define the model, the data and their order: fixed for a run, so a
# resumed run must keep them (everything else — steps, intervals, device — may change).
STRUCTURAL = ("data", "size", "batch_size", "accumulate", "seed", "width", "blocks", "scales", "max_width", "norm",
              "crop", "flip", "n_train_crops", "n_test_crops")

_FLOW = {f.name: f.default for f in fields(FlowConfig)}


@dataclass
class TrainConfig(JsonConfig):
    """Everything a training run needs; JSON round-trip so it travels in checkpoints."""

    data: str = PHOTO_CROPS
    size: int = _FLOW["image_size"]
    out: str = "runs/default"
    steps: int = 10000
    batch_size: int = 64
    accumulate: int = 1  # micro-batches per step (gradient accumulation); batch_size is per micro-batch
    lr: float = 1e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 100
    weight_decay: float = 5e-5
    grad_clip: float = 100.0
    ema_decay: float = 0.0
    eval_every: int = 500
    eval_images: int = 512
    sample_every: int = 1000
    n_samples: int = 64
    sample_temperature: float = 0.7
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    compile: bool = False
    width: int = _FLOW["width"]
    blocks: int = _FLOW["blocks"]
    scales: int = 0  # 0: down to a 4×4 last scale (32 → 4 levels, 64 → 5)
    max_width: int = _FLOW["max_width"]
    norm: str = _FLOW["norm"]
    num_workers: int = 0
    crop: str = "center"
    flip: bool = True
    n_train_crops: int = 50000
    n_test_crops: int = 2000
    resume: bool = False
    init_from: str = ""  # a trained model whose first scales start this run (nvp_core.scale_transfer)
    command: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        need = self._require
        for name in ("size", "steps", "batch_size", "accumulate", "width", "max_width", "eval_every", "sample_every",
                     "checkpoint_every", "eval_images", "n_samples", "n_train_crops", "n_test_crops"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, "must be a positive integer")
        for name in ("warmup_steps", "blocks", "scales", "num_workers", "seed"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, "must be an integer ≥ 0")
        for name in ("lr", "grad_clip", "sample_temperature"):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and v > 0, name, "must be a positive number")
        need(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0, "weight_decay", "must be ≥ 0")
        need(isinstance(self.ema_decay, (int, float)) and 0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        need(self.amp in AMP_MODES, "amp", f"must be one of {AMP_MODES}")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"must be one of {LR_SCHEDULES}")
        need(self.norm in NORMS, "norm", f"must be one of {NORMS}")
        need(self.crop in ("center", "random"), "crop", "must be 'center' or 'random'")
        need(isinstance(self.data, str) and bool(self.data), "data", "must be a folder or 'photo-crops'")
        need(isinstance(self.out, str) and bool(self.out), "out", "must be a folder path")
        need(isinstance(self.init_from, str), "init_from", "must be a model path or empty")
        self.flow_config()  # size vs scales, widths: FlowConfig names the field

    def flow_config(self) -> FlowConfig:
        scales = self.scales or FlowConfig.default_scales(self.size)
        return FlowConfig(channels=3, scales=scales, width=self.width, blocks=self.blocks,
                          max_width=self.max_width, image_size=self.size, norm=self.norm)

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step``: linear warm-up, then constant or cosine to 2 %."""
        lr = self.lr
        if self.lr_schedule == "cosine":
            progress = min(1.0, step / max(1, self.steps))
            lr = self.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))
        if self.warmup_steps and step < self.warmup_steps:
            lr = lr * (step + 1) / self.warmup_steps
        return lr

    @property
    def global_batch(self) -> int:
        """Images per optimizer step in one process (times the DDP world size)."""
        return self.batch_size * self.accumulate
