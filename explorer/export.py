"""Writing frames to disk: single PNGs, numbered PNG sequences and animations.

Pure functions over numpy uint8 frames (H, W, 3) — no Qt here, so the CLI and
the tests can use them and the GUI can call them from a worker thread. Every
file is encoded in memory first and then written atomically (temp file +
rename): a full disk or a crash leaves the previous file intact, never half of
a new one. Operating-system failures come back as :class:`ExportError`, whose
message says in plain words what went wrong (disk full, permission denied…).
"""
from __future__ import annotations

import errno
import io
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from nvp_core.errors import NVPError, ShapeError
from nvp_core.io import atomic_write_bytes

#: Animated formats by file extension → the Pillow format name.
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG", ".mp4": "MP4"}


class ExportError(NVPError, OSError):
    """A file could not be written; the message names the file and the reason.

    It is both an ``NVPError`` (the explorer shows ours as messages) and an
    ``OSError`` (code that catches I/O failures still catches it).
    """

    def __init__(self, message: str, errno_code: int | None = None, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno_code
        self.filename = filename

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Reason:
    codes: tuple[int, ...]
    text: str


_REASONS = (
    _Reason((errno.ENOSPC, getattr(errno, "EDQUOT", -1)), "the disk is full (or over quota)"),
    _Reason((errno.EACCES, errno.EPERM), "permission denied"),
    _Reason((errno.EROFS,), "the file system is read-only"),
    _Reason((errno.ENOENT,), "the folder does not exist"),
    _Reason((errno.ENOTDIR, errno.EEXIST), "a part of the path is a file, not a folder"),
    _Reason((errno.EISDIR,), "the path is a folder, not a file"),
    _Reason((errno.ENAMETOOLONG,), "the file name is too long"),
)


def describe_os_error(exc: OSError) -> str:
    """A human sentence for an OSError (errno first, the OS text as fallback)."""
    for reason in _REASONS:
        if exc.errno in reason.codes:
            return reason.text
    return exc.strerror or str(exc) or type(exc).__name__


def _fail(path: Path, exc: OSError) -> ExportError:
    return ExportError(f"cannot write {path}: {describe_os_error(exc)}", exc.errno, str(path))


def _write(path: Path, data: bytes) -> Path:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise _fail(path, exc) from exc
    return path


# --------------------------------------------------------------------- frames
def check_frame(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate one frame: uint8, (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise ShapeError(f"{name} must be uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ShapeError(f"{name} must be shaped (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ShapeError(f"{name} is empty ({a.shape})")
    return np.ascontiguousarray(a)


def _check_frames(frames: Iterable[np.ndarray]) -> list[np.ndarray]:
    out = [check_frame(f, f"frame {i}") for i, f in enumerate(frames)]
    if not out:
        raise ShapeError("there are no frames to export")
    first = out[0].shape
    for i, f in enumerate(out):
        if f.shape != first:
            raise ShapeError(f"frame {i} is shaped {f.shape}, frame 0 {first}: all frames must match")
    return out


def resize(arr: np.ndarray, width: int, height: int, smooth: bool | None = None) -> np.ndarray:
    """Scale a frame to ``width``×``height``.

    Integer enlargements default to nearest neighbour: a 32×32 sample blown up
    for a slide should show crisp pixels, not blur. Other sizes use Lanczos.
    """
    a = check_frame(arr)
    h, w = a.shape[:2]
    if (w, h) == (width, height):
        return a
    if width < 1 or height < 1:
        raise ShapeError(f"output size must be positive, got {width}×{height}")
    if smooth is None:
        smooth = not (width % w == 0 and height % h == 0)
    method = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(a).resize((int(width), int(height)), method))


def grid(images: Sequence[np.ndarray], columns: int | None = None, gap: int = 2,
         background: int = 40) -> np.ndarray:
    """Tile equally sized frames into one contact sheet (row-major)."""
    frames = _check_frames(images)
    n = len(frames)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = frames[0].shape[:2]
    shape = (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap) + frames[0].shape[2:]
    sheet = np.full(shape, background, dtype=np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = f
    return sheet


# --------------------------------------------------------------------- writers
def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(check_frame(arr)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def save_png(arr: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 frame as a PNG (atomic). Returns the path written."""
    return _write(Path(path), encode_png(arr))


def sequence_paths(count: int, folder: str | os.PathLike, prefix: str = "frame", start: int = 0) -> list[Path]:
    """The names :func:`save_sequence` uses: zero-padded so they sort correctly."""
    digits = max(4, len(str(start + max(count, 1) - 1)))
    return [Path(folder) / f"{prefix}_{i:0{digits}d}.png" for i in range(start, start + count)]


def save_sequence(
    frames: Sequence[np.ndarray], folder: str | os.PathLike, prefix: str = "frame", start: int = 0
) -> list[Path]:
    """Write frames as ``prefix_0000.png, prefix_0001.png…`` in ``folder`` (created if missing)."""
    checked = _check_frames(frames)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(folder, exc) from exc
    paths = sequence_paths(len(checked), folder, prefix, start)
    for frame, path in zip(checked, paths):
        _write(path, encode_png(frame))
    return paths


def mp4_available() -> bool:
    """MP4 needs the ffmpeg binary that the optional imageio-ffmpeg package ships."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def animation_formats() -> list[str]:
    """Extensions :func:`save_animation` can write on this machine."""
    exts = [".gif", ".webp", ".png", ".apng"]
    if mp4_available():
        exts.append(".mp4")
    return exts


def _encode_pillow(frames: list[np.ndarray], fmt: str, fps: float, loop: int) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    duration = max(1, round(1000.0 / fps))
    buf = io.BytesIO()
    kwargs: dict = {"save_all": True, "append_images": images[1:], "duration": duration, "loop": loop}
    if fmt == "GIF":
        # GIF has 256 colours per frame; an adaptive palette per frame keeps
        # samples faithful, and disposal 1 avoids flicker between frames.
        kwargs["disposal"] = 1
        kwargs["optimize"] = False
    elif fmt == "WEBP":
        kwargs["lossless"] = True
        kwargs["quality"] = 100
        kwargs["method"] = 4
    elif fmt == "PNG":
        kwargs["disposal"] = 0
        kwargs["blend"] = 0
    images[0].save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _encode_mp4(frames: list[np.ndarray], path: Path, fps: float) -> bytes:
    import tempfile

    import imageio_ffmpeg

    rgb = [np.stack([f] * 3, axis=-1) if f.ndim == 2 else f[:, :, :3] for f in frames]
    h, w = rgb[0].shape[:2]
    # yuv420p needs even sides; pad by one pixel rather than refuse.
    ph, pw = h + h % 2, w + w % 2
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent if path.parent.exists() else None)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(tmp, (pw, ph), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=1)
        writer.send(None)
        for f in rgb:
            if (ph, pw) != (h, w):
                f = np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            writer.send(np.ascontiguousarray(f).tobytes())
        writer.close()
        return Path(tmp).read_bytes()
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def save_animation(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 20, loop: int = 0) -> Path:
    """Write an animation; the format follows the extension.

    ``.gif`` (256 colours per frame), ``.webp`` (lossless), ``.png``/``.apng``
    (animated PNG, lossless) through Pillow; ``.mp4`` only when imageio-ffmpeg
    is installed. ``loop=0`` repeats forever.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ANIMATION_FORMATS:
        raise ExportError(
            f"cannot write {path.name}: unknown animation format {ext or '(no extension)'}; "
            f"use one of {', '.join(animation_formats())}"
        )
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 1000):
        raise ValueError(f"fps must be in (0, 1000], got {fps!r}")
    checked = _check_frames(frames)
    if ext == ".mp4":
        if not mp4_available():
            raise ExportError(
                f"cannot write {path.name}: MP4 needs the optional package imageio-ffmpeg "
                "(pip install imageio-ffmpeg); GIF, WebP and APNG work without it"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = _encode_mp4(checked, path, fps)
        except OSError as exc:
            raise _fail(path, exc) from exc
        return _write(path, data)
    return _write(path, _encode_pillow(checked, ANIMATION_FORMATS[ext], fps, loop))


# --------------------------------------------------------------------- options
@dataclass(frozen=True)
class ExportOptions:
    """What the export dialog asks for; :func:`export_frames` carries it out.

    ``width``/``height`` are the output pixel size (frames are scaled to it);
    ``sequence`` writes ``name_0000.png…`` into ``folder``; ``animation`` is an
    extension from :func:`animation_formats` (or None) for ``folder/name.ext``.
    ``fresh`` writes into a new sub-folder of ``folder`` instead
    (``name_YYYYmmdd-HHMMSS``, see :func:`make_fresh_folder`): a second export
    never mixes its frames with an earlier one's, and nothing is overwritten.
    """

    frames: int
    width: int
    height: int
    sequence: bool
    animation: str | None
    fps: float
    folder: Path
    name: str = "frame"
    loop: int = 0
    fresh: bool = False

    @property
    def animation_path(self) -> Path | None:
        return Path(self.folder) / f"{self.name}{self.animation}" if self.animation else None

    def targets(self) -> list[Path]:
        """Every file an export with these options writes (for 'overwrite?' checks)."""
        out = sequence_paths(self.frames, self.folder, self.name) if self.sequence else []
        if self.animation_path is not None:
            out.append(self.animation_path)
        return out


def fresh_folder_name(name: str, when: float | None = None) -> str:
    """The sub-folder an export with ``fresh`` writes into: ``name_YYYYmmdd-HHMMSS``."""
    return f"{name}_{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


def make_fresh_folder(parent: str | os.PathLike, name: str, when: float | None = None) -> Path:
    """Create and return a folder under ``parent`` that did not exist before.

    Named by the time (:func:`fresh_folder_name`); two exports within the same
    second get ``…-2``, ``…-3``. ``mkdir`` without ``exist_ok`` claims the name
    atomically, so an existing folder is never reused (nor anything in it touched).
    """
    parent = Path(parent)
    base = fresh_folder_name(name, when)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            folder = parent / (base if i == 1 else f"{base}-{i}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
    except OSError as exc:
        raise _fail(parent, exc) from exc
    raise ExportError(f"cannot create a new folder in {parent}: too many exports named {base}")


def export_frames(frames: Sequence[np.ndarray], options: ExportOptions) -> list[Path]:
    """Scale ``frames`` to the options' size and write the sequence and/or animation.

    With ``options.fresh`` everything goes into a new sub-folder (the paths
    returned say which); otherwise into ``options.folder`` itself.
    """
    if not options.sequence and not options.animation:
        raise ValueError("nothing to export: choose a PNG sequence, an animation, or both")
    scaled = [resize(f, options.width, options.height) for f in _check_frames(frames)]
    if options.fresh:
        options = replace(options, folder=make_fresh_folder(options.folder, options.name), fresh=False)
    written: list[Path] = []
    if options.sequence:
        written += save_sequence(scaled, options.folder, prefix=options.name)
    if options.animation:
        written.append(save_animation(scaled, options.animation_path, fps=options.fps, loop=options.loop))
    return written
