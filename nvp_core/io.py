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
from .limits import MAX_HEADER_BYTES, MAX_MODEL_FILE_BYTES, LimitError, check_model_config, loads_json
from .paths import read_regular_file

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
    """The weights a path means: a model folder's file, or the file beside a JSON of that folder
    (a file dialog shows config.json, the readable half of a model folder)."""
    p = Path(path)
    if p.is_dir():
        return p / WEIGHTS_NAME
    if p.suffix.lower() == ".json" and (p.parent / WEIGHTS_NAME).exists():
        return p.parent / WEIGHTS_NAME
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


def _read(p: Path, length: int | None = None) -> bytes:
    if not p.exists() and not p.is_symlink():
        raise ModelFileError(f"no model file at {p}")
    return read_regular_file(p, "model file", MAX_MODEL_FILE_BYTES, ModelFileError, length)


def _header(p: Path, raw: bytes, total: int) -> dict[str, str]:
    """The ``__metadata__`` table of a safetensors file whose first bytes are ``raw``
    (``total`` bytes long), checked: size, JSON, nesting, our format tag and version."""
    kind = _sniff(raw)
    if kind:
        raise ModelFileError(f"{p.name} is {kind}, not a safetensors model; it was not opened")
    if total < 8 or len(raw) < 8:
        raise ModelFileError(f"{p.name} is empty or truncated ({total} bytes)")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len <= 0 or 8 + header_len > total:
        raise ModelFileError(f"{p.name} is truncated or not a safetensors file")
    if header_len > MAX_HEADER_BYTES:
        raise ModelFileError(f"{p.name} has a {header_len:,}-byte header, above the limit of "
                             f"{MAX_HEADER_BYTES:,}; it is not a model we wrote")
    try:
        header = loads_json(raw[8:8 + header_len], f"{p.name}'s header")
    except LimitError as exc:
        raise ModelFileError(str(exc)) from None
    except ValueError:
        raise ModelFileError(f"{p.name} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{p.name} is not a safetensors file (its header is not a JSON object)")
    meta = header.get("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{p.name}: its __metadata__ is not a table of strings; not an NVP Explorer model")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{p.name} is a safetensors file but not an NVP Explorer model (no '{FORMAT}' tag)")
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        newer = version.isdigit() and int(version) > int(FORMAT_VERSION)
        raise ModelFileError(
            f"{p.name} is in model format version {version[:20]!r}, this NVP Explorer reads version "
            f"{FORMAT_VERSION}" + ("; it was written by a newer version: upgrade to open it" if newer else ""))
    return meta


def read_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the header metadata of a model file, checked but not yet built.

    Only a regular file of at most MAX_MODEL_FILE_BYTES is read (a FIFO or /dev/zero is
    refused before it is opened); the header is size- and depth-checked before parsing."""
    p = _weights_path(path)
    raw = _read(p)
    meta = _header(p, raw, len(raw))
    try:
        tensors = st_load_bytes(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p.name} is truncated or corrupt: {exc}") from None
    return tensors, meta


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """The checked ``__metadata__`` of a model file, reading only its header (not the weights)."""
    p = _weights_path(path)
    first = _read(p, 8)  # refuses a missing path, a FIFO, a device or an oversized file
    total = p.stat().st_size
    n = int.from_bytes(first, "little") if len(first) == 8 else 0
    # _header refuses a length past the end or the limit before looking further than `first`.
    raw = _read(p, 8 + n) if 0 < n <= MAX_HEADER_BYTES and 8 + n <= total else first
    return _header(p, raw, total)


def _metadata(meta: dict[str, str], name: str) -> dict[str, Any]:
    """The training metadata (a JSON object) from the header; a non-object or absurdly nested
    document is an error, since the explorer and the CLI read fields from it."""
    try:
        value = loads_json(meta.get("metadata", "{}"), f"{name}'s metadata")
    except LimitError as exc:
        raise ModelFileError(str(exc)) from None
    except ValueError:
        return {}  # unreadable information only; the weights are still good
    if not isinstance(value, dict):
        raise ModelFileError(f"{name}: its metadata is a JSON {type(value).__name__}, not an object")
    return value


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The training metadata of a model file (step, data set, bits/dim…), from its header only."""
    return _metadata(read_header(path), _weights_path(path).name)


def _config(meta: dict[str, str], name: str, values: int) -> FlowConfig:
    """The FlowConfig from the header, checked for size against the limits and against the
    number of values the file holds, before any model is built."""
    try:
        data = loads_json(meta.get("config", ""), f"{name}'s config")
        config = FlowConfig.from_dict(data)
    except LimitError as exc:
        raise ModelFileError(str(exc)) from None
    except (ConfigError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{name} has an invalid config: {exc}") from None
    try:
        check_model_config(config, values, what=name)
    except LimitError as exc:
        raise ModelFileError(str(exc)) from None
    return config


def _check_values(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], name: str) -> None:
    """Refuse what would load silently but give wrong results: NaN/Inf weights (black or
    NaN pictures) and integer/bool tensors where the model has floats (or the reverse)."""
    wrong_type = sorted(k for k in expected if k in tensors
                        and tensors[k].is_floating_point() != expected[k].is_floating_point())
    if wrong_type:
        k = wrong_type[0]
        raise ModelFileError(f"{name}: {len(wrong_type)} tensor(s) have the wrong kind of values (e.g. {k} is "
                             f"{str(tensors[k].dtype).replace('torch.', '')}, expected "
                             f"{str(expected[k].dtype).replace('torch.', '')}); the file is not usable")
    bad = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise ModelFileError(f"{name}: {len(bad)} tensor(s) hold NaN or infinite values (e.g. {bad[0]}); the "
                             f"weights are corrupt (did training diverge?) and would give black or NaN pictures")


def load(path: str | os.PathLike, device: str | torch.device | None = "cpu") -> RealNVP:
    """Rebuild a RealNVP from a file written by :func:`save`, in eval mode.

    The returned flow has ``flow.metadata`` (training step, data set, bits/dim…)
    and ``flow.source`` (the file it came from).
    """
    tensors, meta = read_file(path)
    name = _weights_path(path).name
    config = _config(meta, name, sum(v.numel() for v in tensors.values()))
    metadata = _metadata(meta, name)
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
    _check_values(tensors, expected, name)
    flow.load_state_dict(tensors)
    flow.to(resolve_device(device)).eval()
    flow.metadata = metadata
    flow.source = str(_weights_path(path))
    return flow
