"""Reading files safely and never writing over an input.

Reading: a path can name a FIFO (reading blocks forever), a device such as /dev/zero
(reads never end) or a file far larger than anything we write. :func:`read_regular_file`
checks what the path is *before* reading a byte, without blocking even on a FIFO.

Writing: ``nvp sample MODEL --out MODEL/model.safetensors`` must not replace the weights by
a PNG, nor ``nvp infoloss in.png --out in.png`` the photo. :func:`refuse_overwriting_inputs`
compares every output with every input after following symlinks (and by inode for files
that exist, which also catches hard links), before any work is done.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from .errors import NVPError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _a(what: str) -> str:
    return ("an " if what[:1] in "aeiou" else "a ") + what


def regular_file_stat(path: str | os.PathLike, what: str = "file",
                      error: type[Exception] = NVPError) -> os.stat_result:
    """``os.stat`` of ``path`` if it is a regular file (symlinks followed); else ``error``
    with a message that says what it is instead (a FIFO, a device, a folder). Never opens it."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"no {what} at {p}") from None
    except OSError as exc:
        raise error(f"cannot read {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p} is {_kind(st.st_mode)}, not {_a(what)}; it was not read")
    return st


def check_regular_file(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None,
                       error: type[Exception] = NVPError) -> int:
    """The size of ``path`` if it is a regular file (see :func:`regular_file_stat`) of at
    most ``max_bytes``; else ``error`` with a message that says why. Never opens it."""
    p = Path(path)
    size = regular_file_stat(p, what, error).st_size
    if max_bytes is not None and size > max_bytes:
        raise error(f"{p.name} is {_size(size)}, above the {_size(max_bytes)} limit for {_a(what)}; "
                    f"it was not read")
    return size


def read_regular_file(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None,
                      error: type[Exception] = NVPError, length: int | None = None) -> bytes:
    """The bytes of a regular file (the first ``length`` only, if given), checked as in
    :func:`check_regular_file`. The check is repeated on the open descriptor (opened
    non-blocking, so a FIFO swapped in between cannot hang the read)."""
    p = Path(path)
    check_regular_file(p, what, max_bytes, error)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(f"cannot read {p}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{p} is {_kind(st.st_mode)}, not {_a(what)}; it was not read")
        limit = max_bytes if max_bytes is not None else st.st_size
        want = limit + 1 if length is None else min(length, limit + 1)
        try:
            data = fh.read(want)
        except OSError as exc:
            raise error(f"cannot read {p}: {exc.strerror or exc}") from None
    if length is None and max_bytes is not None and len(data) > max_bytes:
        raise error(f"{p.name} grew past the {_size(max_bytes)} limit for a {what} while being read")
    return data


# ---------------------------------------------------------------- outputs vs inputs
def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


def model_inputs(source: str | os.PathLike | None) -> list[Path]:
    """The files that make up a model: the weights file and, for a model folder, every
    file beside it (config.json, metadata.json, the card, metrics)."""
    if not source:
        return []
    p = Path(source)
    files = [p]
    folder = p.parent if p.is_file() else p
    if p.is_dir() or p.name == "model.safetensors":
        try:
            files.extend(f for f in folder.iterdir() if f.is_file())
        except OSError:
            pass
    return files


def refuse_overwriting_inputs(outputs: Iterable[str | os.PathLike | None],
                              inputs: Iterable[str | os.PathLike | None],
                              error: type[Exception] = NVPError) -> None:
    """Raise ``error`` if any output path is (after symlinks, or as the same inode) one of
    the inputs. Call it before the work: nothing is written and no time is wasted."""
    ins = [Path(i) for i in inputs if i]
    for out in outputs:
        if not out:
            continue
        o = Path(out)
        for i in ins:
            if _same(o, i):
                same = "" if str(o) == str(i) else f" (that is the input {i})"
                raise error(f"refusing to write {o}{same}: it is one of the inputs and would be destroyed; "
                            f"choose another output path")
