"""The ``.nvps`` session file: writing it, and reading it back as if it were hostile.

A session file is a zip holding ``session.json`` (settings, image names, anchors,
the model's path) and the images as PNG. People mail these around, so reading
one checks everything before anything is allocated or opened:

* the file itself must be a regular file of bounded size (a FIFO would hang the
  reader, a device never ends), and each zip member is bounded before it is read;
* the JSON must be an object with the expected types and finite numbers in range
  (NaN angles gave "math domain error", anchors ``[5]`` an AttributeError, deep
  nesting a RecursionError);
* every embedded image passes the pixel limit from its header before decoding
  (an 824-byte session holding a 28000² PNG reached 6.5 GB) and is decoded reduced
  to the size the explorer keeps;
* a model path that names a FIFO or a device is dropped with a warning, so the
  render worker never blocks on it.

Anything wrong is one :class:`~nvp_core.errors.DataError` naming the file and the
field; the caller's current session is never touched by a failed read. No Qt here.
"""
from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from nvp_core.errors import DataError
from nvp_core.images import decode_image_bytes
from nvp_core.paths import regular_file_stat

SESSION_FORMAT = "nvp-explorer/session"
SESSION_VERSION = 1
SESSION_SUFFIX = ".nvps"
N_ANCHORS = 8

# Bounds on what a session may hold. Sessions this app writes are far below them:
# originals are capped at 512 px a side, so a thousand images are ~300 MB of PNG.
MAX_SESSION_BYTES = 1 << 30  # the .nvps file
MAX_JSON_BYTES = 8 << 20  # session.json, uncompressed
MAX_MEMBER_BYTES = 64 << 20  # one embedded PNG, uncompressed
MAX_IMAGES = 2000
MAX_IMAGE_PIXELS = 4096 * 4096  # per embedded image, from its header (saved ones are ≤ 512²)
MAX_TEXT = 4096  # names, labels, paths
# The ranges of the explorer's own controls: a value outside them was not written by it.
CANVAS_MAX_SIDE = 4096
MAX_SEED = 2**31 - 1
MAX_TEMPERATURE = 10.0


@dataclass
class SessionDocument:
    """A session file, read and checked, before anything is encoded.

    ``infoloss`` and ``canvas`` are plain dicts of checked values (the fields of the
    session's settings classes); ``warnings`` are things dropped on the way
    (e.g. a model path that is not a regular file) to show the user.
    """

    model: str | None
    current: int
    angles: tuple[float, float, float]
    infoloss: dict[str, Any]
    canvas: dict[str, Any]
    images: list[tuple[str, np.ndarray, str | None, tuple[int, int] | None]]  # name, original, source, true size
    anchors: list[dict[str, Any] | None]
    boxes: list[tuple[int, int, int, int] | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- writing
def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def session_path(path: str | os.PathLike) -> Path:
    """``path`` with the ``.nvps`` suffix (added, or replacing none)."""
    path = Path(path)
    if path.suffix.lower() == SESSION_SUFFIX:
        return path
    return path.with_suffix(path.suffix + SESSION_SUFFIX) if path.suffix else path.with_suffix(SESSION_SUFFIX)


def write_session(path: str | os.PathLike, doc: Mapping[str, Any], images: Sequence[np.ndarray],
                  anchor_images: Mapping[int, np.ndarray]) -> Path:
    """One zip: session.json + ``images/NNN.png`` + ``anchors/K.png`` (K from 1), written atomically."""
    from nvp_core.io import atomic_write_bytes

    path = session_path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("session.json", json.dumps(doc, indent=2, allow_nan=False))
        for i, arr in enumerate(images):
            zf.writestr(f"images/{i:03d}.png", png_bytes(arr))
        for i, arr in sorted(anchor_images.items()):
            zf.writestr(f"anchors/{i + 1}.png", png_bytes(arr))
    atomic_write_bytes(path, buf.getvalue())
    return path


# ---------------------------------------------------------------- checked values
class _Bad(Exception):
    """A field with a wrong value; becomes a DataError naming the file."""


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"{where} should be an object, not {_kind(value)}")
    return value


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{where} should be a list, not {_kind(value)}")
    if len(value) > limit:
        raise _Bad(f"{where} has {len(value):,} entries (at most {limit:,})")
    return value


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{where} should be a number, not {_kind(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise _Bad(f"{where} is {value!r}; expected a finite number")
    if not lo <= v <= hi:
        raise _Bad(f"{where} is {value!r}; expected {lo:g} … {hi:g}")
    return v


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        if not lo <= value <= hi:
            raise _Bad(f"{where} is {value!r}; expected {lo} … {hi}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{where} should be a whole number, not {_kind(value)}")
    if not lo <= value <= hi:
        raise _Bad(f"{where} is {value}; expected {lo} … {hi}")
    return value


def _text(value: Any, where: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Bad(f"{where} should be text, not {_kind(value)}")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise _Bad(f"{where} is not a usable name ({len(value):,} characters)")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _model_path(value: Any, warnings: list[str]) -> str | None:
    """The model path as written, or None (with a warning) when it names something
    that must not be opened: a FIFO would block the render worker for good, a device
    such as /dev/zero reads forever. A missing path stays (the caller says so)."""
    path = _text(value, "model")
    if not path:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return path
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return path
    warnings.append(f"the session's model {path} is not a regular file or folder; it was not opened")
    return None


# ---------------------------------------------------------------- reading
def read_session(path: str | os.PathLike, max_side: int = 512) -> SessionDocument:
    """Read and check a ``.nvps`` file; anything wrong is one DataError naming what.

    Embedded images come back as uint8 (H, W, 3), decoded reduced and capped at
    ``max_side`` pixels a side (what the explorer keeps as an image's original).
    """
    path = Path(path)
    st = regular_file_stat(path, "session file", DataError)
    if st.st_size > MAX_SESSION_BYTES:
        raise DataError(f"{path.name}: {st.st_size:,} bytes is over the "
                        f"{MAX_SESSION_BYTES / 2**20:,.0f} MB limit for session files")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf, path.name, max_side)
    except DataError:
        raise
    except _Bad as exc:
        raise DataError(f"{path.name}: damaged session file: {exc}") from None
    except zipfile.BadZipFile:
        raise DataError(f"{path.name}: not an NVP Explorer session (not a zip archive)") from None
    except RecursionError:
        raise DataError(f"{path.name}: damaged session file: session.json is nested too deeply") from None
    except MemoryError:
        raise DataError(f"{path.name}: damaged session file: too large to read (out of memory)") from None
    except (KeyError, ValueError, TypeError, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError, OverflowError) as exc:
        raise DataError(f"{path.name}: damaged session file ({exc.__class__.__name__}: {exc})") from None


def _member(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _Bad(f"{where} names {name!r}, which is not in the file") from None
    if info.file_size > limit:
        raise _Bad(f"{name} unpacks to {info.file_size / 2**20:,.1f} MB (at most {limit / 2**20:,.0f} MB)")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _Bad(f"{name} unpacks to more than {limit / 2**20:,.0f} MB")
    return data


def _image(zf: zipfile.ZipFile, name: Any, where: str, max_side: int) -> np.ndarray:
    name = _text(name, f"{where}.file")
    if not name:
        raise _Bad(f"{where} has no image file")
    data = _member(zf, name, MAX_MEMBER_BYTES, where)
    try:
        loaded = decode_image_bytes(data, name, (max_side, max_side), max_pixels=MAX_IMAGE_PIXELS)
    except DataError as exc:
        raise _Bad(str(exc)) from None
    img = loaded.image
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def _read(zf: zipfile.ZipFile, name: str, max_side: int) -> SessionDocument:
    doc = _document(zf, name)
    warnings: list[str] = []
    angles, infoloss, canvas = _angles(doc), _infoloss(doc), _canvas(doc)  # cheap checks before images
    images, boxes = _images(zf, doc, max_side)
    anchors = _anchors(zf, doc, max_side)
    current = _int(doc.get("current", -1), "current", -1, 2**31)
    return SessionDocument(model=_model_path(doc.get("model"), warnings), current=current, angles=angles,
                           infoloss=infoloss, canvas=canvas, images=images, anchors=anchors, boxes=boxes,
                           warnings=warnings)


def _document(zf: zipfile.ZipFile, name: str) -> dict[str, Any]:
    """session.json, checked to be ours and not from a newer version."""
    try:
        raw = _member(zf, "session.json", MAX_JSON_BYTES, "the file")
    except _Bad as exc:
        if "not in the file" in str(exc):
            raise DataError(f"{name}: not an NVP Explorer session (no session.json)") from None
        raise
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
        raise DataError(f"{name}: not an NVP Explorer session")
    version = _int(doc.get("version", 0), "version", 0, 2**31)
    if version > SESSION_VERSION:
        raise DataError(f"{name}: written by a newer NVP Explorer (version {version})")
    return doc


def _angles(doc: dict[str, Any]) -> tuple[float, float, float]:
    a = _obj(doc.get("angles"), "angles")
    return tuple(_number(a.get(k, 0.0), f"angles.{k}", -1e6, 1e6) % 360.0 for k in ("phi", "phi1", "phi2"))


def _infoloss(doc: dict[str, Any]) -> dict[str, Any]:
    il = _obj(doc.get("infoloss"), "infoloss")
    mode = _text(il.get("mode"), "infoloss.mode", "noise")
    if mode not in ("noise", "zero"):
        raise _Bad(f"infoloss.mode is {mode!r}; expected 'noise' or 'zero'")
    return {
        "levels": {_int(k, "infoloss.levels", 1, 64) for k in _list(il.get("levels"), "infoloss.levels", 64)},
        "temperature": _number(il.get("temperature", 1.0), "infoloss.temperature", 0.0, MAX_TEMPERATURE),
        "seed": _int(il.get("seed", 0), "infoloss.seed", 0, MAX_SEED),
        "mode": mode,
    }


def _canvas(doc: dict[str, Any]) -> dict[str, Any]:
    cv = _obj(doc.get("canvas"), "canvas")
    canvas: dict[str, Any] = {}
    for key, check in (("width", lambda v, w: _int(v, w, 0, CANVAS_MAX_SIDE)),
                       ("height", lambda v, w: _int(v, w, 0, CANVAS_MAX_SIDE)),
                       ("temperature", lambda v, w: _number(v, w, 0.0, MAX_TEMPERATURE)),
                       ("seed", lambda v, w: _int(v, w, 0, MAX_SEED)),
                       ("count", lambda v, w: _int(v, w, 1, 64))):
        if key in cv:
            canvas[key] = check(cv[key], f"canvas.{key}")
    return canvas


def _images(zf: zipfile.ZipFile, doc: dict[str, Any], max_side: int) -> tuple[list, list]:
    """([(name, original, source, (w, h) or None)], [crop box or None]) of the session's images."""
    images: list[tuple[str, np.ndarray, str | None, tuple[int, int] | None]] = []
    boxes: list[tuple[int, int, int, int] | None] = []
    for i, e in enumerate(_list(doc.get("images"), "images", MAX_IMAGES)):
        where = f"images[{i}]"
        e = _obj(e, where)
        if not e:
            raise _Bad(f"{where} is empty")
        label = _text(e.get("name"), f"{where}.name", f"image {i + 1}")
        size = e.get("size")
        if size is not None:
            dims = _list(size, f"{where}.size", 2)
            if len(dims) != 2:
                raise _Bad(f"{where}.size should be [width, height]")
            size = tuple(_int(v, f"{where}.size", 1, 1 << 20) for v in dims)
        images.append((label, _image(zf, e.get("file"), where, max_side), _text(e.get("source"), f"{where}.source"),
                       size))
        boxes.append(_box(e.get("box"), where))
    return images, boxes


def _box(box: Any, where: str) -> tuple[int, int, int, int] | None:
    if box is None:
        return None
    vals = _list(box, f"{where}.box", 4)
    if len(vals) != 4:
        raise _Bad(f"{where}.box should be [left, top, right, bottom]")
    return tuple(int(_number(v, f"{where}.box", -1e6, 1e6)) for v in vals)  # type: ignore[return-value]


def _anchors(zf: zipfile.ZipFile, doc: dict[str, Any], max_side: int) -> list[dict[str, Any] | None]:
    anchors: list[dict[str, Any] | None] = []
    for i, spec in enumerate(_list(doc.get("anchors"), "anchors", 4 * N_ANCHORS)[:N_ANCHORS]):
        where = f"anchors[{i}]"
        spec = None if spec is None else _obj(spec, where)
        anchors.append(_anchor(zf, spec, where, max_side) if spec else None)
    return anchors + [None] * (N_ANCHORS - len(anchors))


def _anchor(zf: zipfile.ZipFile, spec: dict[str, Any], where: str, max_side: int) -> dict[str, Any]:
    kind = spec.get("kind")
    if kind == "image":
        return {"kind": "image", "label": _text(spec.get("label"), f"{where}.label", "image"),
                "original": _image(zf, spec.get("file"), where, max_side)}
    if kind == "sample":
        return {"kind": "sample", "label": _text(spec.get("label"), f"{where}.label", "sample"),
                "seed": _int(spec.get("seed", 0), f"{where}.seed", 0, 2**63 - 1),
                "temperature": _number(spec.get("temperature", 1.0), f"{where}.temperature", 0.0, MAX_TEMPERATURE)}
    raise _Bad(f"{where}.kind is {kind!r}; expected 'image' or 'sample'")


__all__ = [
    "MAX_IMAGES", "MAX_IMAGE_PIXELS", "MAX_JSON_BYTES", "MAX_MEMBER_BYTES", "MAX_SESSION_BYTES", "N_ANCHORS",
    "SESSION_FORMAT", "SESSION_SUFFIX", "SESSION_VERSION", "SessionDocument", "png_bytes", "read_session",
    "session_path", "write_session",
]
