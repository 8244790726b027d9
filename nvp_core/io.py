"""Saving and loading models: safetensors for tensors, JSON for config and metadata.

Nothing here unpickles: a model file is data, never code, so opening a file
someone sent you cannot run anything. Every way a file can be wrong (missing,
truncated, a pickle, not ours, shapes that do not fit) is a ModelFileError whose
message says which.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes

from .config import FlowConfig
from .errors import ConfigError, ModelFileError
from .flow import RealNVP

FORMAT = "nvp-explorer/realnvp"
FORMAT_VERSION = "1"
WEIGHTS_NAME = "model.safetensors"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" → cuda when available, else cpu."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelFileError("CUDA was requested but no CUDA device is available")
    return dev


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_DEFAULT_MODE = _umask_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: a crash or a full
    disk leaves the old file intact instead of half a new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # mkstemp makes 0600 files; keep an existing file's mode, else the usual umask one
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = _DEFAULT_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows has no such modes
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _weights_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        return p / WEIGHTS_NAME
    return p


def save(flow: RealNVP, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``flow`` to ``path`` (a ``.safetensors`` file, or a folder that gets
    ``model.safetensors`` plus a readable ``config.json``). Returns the file written."""
    p = Path(path)
    as_dir = p.suffix != ".safetensors"
    target = p / WEIGHTS_NAME if as_dir else p
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in flow.state_dict().items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": flow.config.to_json(),
        "metadata": json.dumps(metadata or {}, sort_keys=True, default=str),
    }
    atomic_write_bytes(target, st_save_bytes(tensors, metadata=header))
    if as_dir:
        atomic_write_bytes(p / "config.json", flow.config.to_json().encode())
        if metadata:
            atomic_write_bytes(p / "metadata.json", json.dumps(metadata, indent=2, default=str).encode())
    return target


def _sniff(raw: bytes) -> str | None:
    if raw[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "a Python pickle"
    if raw[:4] == b"PK\x03\x04":
        return "a zip archive (a torch.save checkpoint?)"
    if raw[:8] == b"\x89PNG\r\n\x1a\n" or raw[:3] == b"\xff\xd8\xff":
        return "an image"
    return None


def read_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the header metadata of a model file, checked but not yet built."""
    p = _weights_path(path)
    if not p.exists():
        raise ModelFileError(f"no model file at {p}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    kind = _sniff(raw)
    if kind:
        raise ModelFileError(f"{p.name} is {kind}, not a safetensors model; it was not opened")
    if len(raw) < 8:
        raise ModelFileError(f"{p.name} is empty or truncated ({len(raw)} bytes)")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len <= 0 or 8 + header_len > len(raw):
        raise ModelFileError(f"{p.name} is truncated or not a safetensors file")
    try:
        header = json.loads(raw[8:8 + header_len])
        meta = header.get("__metadata__", {}) or {}
    except (ValueError, AttributeError):
        raise ModelFileError(f"{p.name} is not a safetensors file (its header is not JSON)") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{p.name} is a safetensors file but not an NVP Explorer model (no '{FORMAT}' tag)")
    try:
        tensors = st_load_bytes(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p.name} is truncated or corrupt: {exc}") from None
    return tensors, meta


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    _, meta = read_file(path)
    try:
        return json.loads(meta.get("metadata", "{}"))
    except ValueError:
        return {}


def load(path: str | os.PathLike, device: str | torch.device | None = "cpu") -> RealNVP:
    """Rebuild a RealNVP from a file written by :func:`save`, in eval mode.

    The returned flow has ``flow.metadata`` (training step, data set, bits/dim…)
    and ``flow.source`` (the file it came from).
    """
    tensors, meta = read_file(path)
    try:
        config = FlowConfig.from_json(meta.get("config", ""))
    except ConfigError as exc:
        raise ModelFileError(f"{_weights_path(path).name} has an invalid config: {exc}") from None
    flow = RealNVP(config)
    expected = flow.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with wrong shapes (e.g. {k}: file {tuple(tensors[k].shape)}, "
                         f"config {tuple(expected[k].shape)})")
        raise ModelFileError(f"the weights do not fit the config: {'; '.join(parts)}")
    flow.load_state_dict(tensors)
    flow.to(resolve_device(device)).eval()
    try:
        flow.metadata = json.loads(meta.get("metadata", "{}"))
    except ValueError:
        flow.metadata = {}
    flow.source = str(_weights_path(path))
    return flow
