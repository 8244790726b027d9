"""Training checkpoints: one safetensors file, never a pickle.

Model weights, EMA weights, the optimizer's moment tensors and the RNG states are
named tensors; the step, the TrainConfig, the optimizer's hyper-parameters and the
metric history are JSON in the safetensors header. One file written atomically
(temp file + rename) means a crash or full disk mid-write leaves the previous good
checkpoint in place, and the pair can never be out of step.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes

from .errors import TrainingError
from .io import atomic_write_bytes

CHECKPOINT_NAME = "checkpoint.safetensors"
FORMAT = "nvp-explorer/train-checkpoint"
FORMAT_VERSION = "1"


def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam-like state_dict → (named tensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("optim."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, extra in rest.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    groups = [dict(g, betas=tuple(g["betas"])) if isinstance(g.get("betas"), list) else dict(g)
              for g in rest["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write tensors (already prefixed: model., ema., optim., rng.) and JSON ``info`` atomically."""
    path = Path(path)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "state": json.dumps(info, default=str)}
    atomic_write_bytes(path, st_save_bytes(clean, metadata=header))
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, info) of a checkpoint; TrainingError naming the problem if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path}")
    from .limits import MAX_MODEL_FILE_BYTES
    from .paths import read_regular_file

    raw = read_regular_file(path, "checkpoint", 4 * MAX_MODEL_FILE_BYTES, TrainingError)  # weights, EMA, Adam
    try:
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len]) if 0 < header_len <= len(raw) - 8 else None
        meta = (header or {}).get("__metadata__") or {}
    except (ValueError, AttributeError, RecursionError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TrainingError(f"{path} is not an NVP Explorer training checkpoint (or it is truncated)")
    try:
        tensors = st_load_bytes(raw)
        info = json.loads(meta["state"])
    except (SafetensorError, ValueError, KeyError, RuntimeError, RecursionError) as exc:
        raise TrainingError(f"{path} is corrupt: {str(exc)[:200]}") from None
    return tensors, info


def split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.`` with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
