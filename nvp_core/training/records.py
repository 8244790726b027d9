"""What a run leaves behind and reads back: the checkpoint's tensors (and whether a run may
continue from them), and the saved model's card."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import checkpoint as ckpt
from ..errors import NVPError, TrainingError
from . import rng_state
from .config import STRUCTURAL, TrainConfig
from .distributed import hardware_description
from .ema import EMA
from .run_folder import RunFolder

if TYPE_CHECKING:
    from .trainer import Trainer


def checkpoint_to_resume(folder: RunFolder, config: TrainConfig) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The checkpoint a run continues from (None for a fresh run), after checking that the
    request fits the folder: a fresh run must not overwrite one, a resume needs a checkpoint
    whose model and data (``STRUCTURAL``) are the ones asked for."""
    exists = folder.checkpoint.is_file()
    if not config.resume:
        if exists:
            raise TrainingError(f"{folder.path} already holds a training run (checkpoint step "
                                f"{_peek_step(folder)}); pass --resume to continue it or choose another --out")
        return None
    if not exists:
        raise TrainingError(f"nothing to resume: no {ckpt.CHECKPOINT_NAME} in {folder.path}")
    tensors, info = ckpt.load_checkpoint(folder.checkpoint)
    stored = TrainConfig.from_dict(info["config"])
    diff = [f"{k}: checkpoint {getattr(stored, k)!r}, given {getattr(config, k)!r}"
            for k in STRUCTURAL if getattr(stored, k) != getattr(config, k)]
    if diff:
        raise TrainingError("cannot resume with a different model or data: " + "; ".join(diff)
                            + " (leave these options out when resuming)")
    return tensors, info


def _peek_step(folder: RunFolder) -> str:
    try:
        return str(ckpt.load_checkpoint(folder.checkpoint)[1].get("step", "?"))
    except NVPError:
        return "?"


def training_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                   ema: EMA | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Checkpoint tensors (``model.*``, ``ema.*``, ``optim.*``, ``rng.*``) and the JSON part that
    belongs with them; the caller adds step, config, history and counters."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt_tensors, opt_rest = ckpt.flatten_optimizer(optimizer.state_dict())
    rng_tensors, rng_info = rng_state.capture()
    tensors.update(opt_tensors)
    tensors.update(rng_tensors)
    info = {"flow_config": model.config.to_dict(), "optimizer": opt_rest, "rng": rng_info,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return tensors, info


def model_card(trainer: "Trainer", result: dict[str, Any]) -> dict[str, Any]:
    """The model's metadata: what it is called (for the explorer's title), what it scored
    and at which step (``test_bpd`` with ``test_bpd_step``), and how it was made."""
    c, data, history = trainer.config, trainer.data, trainer.history
    train = history["train"][-1] if history["train"] else None
    n_params = sum(p.numel() for p in trainer.model.parameters())
    data_name = Path(data.name).name or data.name  # a folder's own name, not its whole path
    run_name = trainer.folder.run_name
    return {
        "name": f"{data_name} {c.size}×{c.size} · {n_params / 1e6:.2g} M params · run {run_name}",
        "run_name": run_name, "data_name": data_name,
        "step": trainer.step, "data": c.data, "data_info": data.info, "size": c.size,
        "test_bpd": result["test_bpd"], "test_bpd_step": result["test_bpd_step"],
        "test_images": min(c.eval_images, len(data.test)),
        "train_bpd": train[1] if train else None, "train_bpd_step": train[0] if train else None,
        "train_command": c.command or None, "wall_time_s": round(result["elapsed_s"], 1),
        "images_per_s": result["images_per_s"], "images_seen": trainer.images_seen,
        "hardware": hardware_description(trainer.device, trainer.dist.world), "torch": torch.__version__,
        "parameters": n_params, "ema": c.ema_decay > 0, "stopped_early": result["stopped"],
        "train_config": c.to_dict(), "history": history,
    }
