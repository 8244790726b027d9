"""Opening a model for the explorer and describing it (the Model tab's card)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import nvp_core as nc
from nvp_core.errors import ModelFileError, NVPError


def model_summary(flow: nc.RealNVP) -> dict[str, Any]:
    """What the Model tab shows: config, parameter count, size on disk, device, metadata."""
    cfg = flow.config
    params = sum(p.numel() for p in flow.parameters())
    source = getattr(flow, "source", None)
    size = None
    if source and Path(source).exists():
        size = Path(source).stat().st_size
    raw = getattr(flow, "metadata", None)
    # Metadata comes from the file: a list, a string or NaN there must not break the card.
    meta = dict(raw) if isinstance(raw, dict) else {}
    return {
        "config": cfg.to_dict(),
        "parameters": params,
        "file_bytes": size,
        "source": source,
        "device": str(flow.device),
        "levels": cfg.scales,
        "latent_shapes": flow.latent_shapes(cfg.image_size, cfg.image_size),
        "metadata": meta,
        "test_bpd": find_test_bpd(meta),
        "metadata_problem": None if raw is None or isinstance(raw, dict)
        else f"the file's metadata is {type(raw).__name__}, not an object; ignored",
    }


def find_test_bpd(meta: dict[str, Any], _depth: int = 0) -> float | None:
    """The test bits/dim recorded by training, under any of the names the trainer may use."""
    if not isinstance(meta, dict) or _depth > 4:
        return None
    for key in ("test_bpd", "test_bits_per_dim", "bpd_test", "test/bpd"):
        v = meta.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v)
    for key in ("eval", "test", "metrics"):
        sub = meta.get(key)
        if isinstance(sub, dict):
            bpd = sub.get("bpd")
            found = find_test_bpd(sub, _depth + 1) or (
                bpd if isinstance(bpd, (int, float)) and not isinstance(bpd, bool) and math.isfinite(bpd) else None)
            if found is not None:
                return float(found)
    return None


def load_model(path: str | os.PathLike, device: str | None = "auto") -> nc.RealNVP:
    """nc.load with the device resolved; every failure is a ModelFileError with a clear message."""
    p = Path(path)  # a config.json beside the weights means the model folder (nvp_core.io)
    try:
        return nc.load(p, device=str(nc.resolve_device(device)))
    except NVPError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"cannot open {p.name}: {exc}") from None


def is_model_path(path: str | os.PathLike) -> bool:
    """A weights file or a model folder (has model.safetensors): what a drop onto the window opens as a model."""
    p = Path(path)
    if p.is_dir():
        return (p / "model.safetensors").exists()
    return p.suffix.lower() == ".safetensors"
