"""The global random states (torch CPU/CUDA, NumPy, Python) as checkpoint tensors + JSON.

The Trainer derives every random number of step t from (seed, t), so these only
matter to code that draws from the global generators; saving them keeps a resume
exact for that code too.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    tensors["rng.numpy_keys"] = torch.from_numpy(np_state[1].astype(np.int64))
    info = {"python": _jsonable(random.getstate()), "numpy": [np_state[0], *map(_plain, np_state[2:])]}
    return tensors, info


def restore(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    if "rng.torch_cpu" in tensors:
        torch.set_rng_state(tensors["rng.torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "python" in info:
        random.setstate(_tuplify(info["python"]))
    if "numpy" in info and "rng.numpy_keys" in tensors:
        name, pos, has_gauss, cached = info["numpy"]
        np.random.set_state((name, tensors["rng.numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return {"__tuple__": [_jsonable(v) for v in obj]}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def _tuplify(obj: Any) -> Any:
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_tuplify(v) for v in obj["__tuple__"])
    if isinstance(obj, list):
        return [_tuplify(v) for v in obj]
    return obj
