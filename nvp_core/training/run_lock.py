"""One training per run folder: a lock file naming the process that holds it.

Two trainings writing one folder lose a run and interleave ``metrics.jsonl``, and
``--resume`` into a live run duplicates its steps. ``run.lock`` holds the pid,
host and start time of its owner. On POSIX the file is also ``flock``-ed for the
life of the run: the kernel drops that lock when the process dies (kill -9
included), so a lock file whose flock is free was left by a dead run and is
taken over, with a message naming the dead pid — no guessing from pids, which
are reused. Elsewhere (no ``fcntl``) a lock is stale when its pid no longer runs
on this host.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import TrainingError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = "run.lock"


class RunLock:
    """``with RunLock(folder):`` or ``acquire()``/``release()``; ``taken_over`` names a dead holder."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.taken_over: str | None = None  # "pid 123 on host h (started …)" of a stale lock we replaced
        self._fd: int | None = None

    # ------------------------------------------------------------ public
    def acquire(self) -> "RunLock":
        """Take the lock or raise TrainingError naming the live holder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(5):  # another process may replace the file between our open and our lock
                if fcntl is not None:
                    if self._acquire_flock():
                        return self
                elif self._acquire_exclusive():
                    return self
        except OSError as exc:
            raise TrainingError(f"cannot write the run folder {self.path.parent}: {exc.strerror or exc}") from None
        raise TrainingError(f"could not lock {self.path}: it keeps changing (another training starting?)")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()  # while still holding it: nobody can take a half-removed lock
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # ------------------------------------------------------------ POSIX: flock
    def _acquire_flock(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe(_read(self.path))
            os.close(fd)
            raise TrainingError(f"{self.path.parent} is in use by another training ({holder}); "
                                "wait for it to finish or stop it, or choose another output folder (--out)") from None
        if not _same_file(fd, self.path):  # the holder released (unlinked) it meanwhile: retry
            os.close(fd)
            return False
        previous = _read_fd(fd)
        if previous:
            self.taken_over = _describe(previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _owner_record(), 0)
        os.fsync(fd)
        self._fd = fd
        return True

    # ------------------------------------------------------------ elsewhere: O_EXCL + pid check
    def _acquire_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(self.path)
            if _alive_here(holder):
                raise TrainingError(f"{self.path.parent} is in use by another training ({_describe(holder)}); "
                                    "wait for it to finish or stop it, or choose another output folder (--out)") from None
            self.taken_over = _describe(holder)
            try:
                self.path.unlink()
            except OSError:
                pass
            return False
        os.write(fd, _owner_record())
        self._fd = fd
        return True


def _owner_record() -> bytes:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()


def _read(path: Path) -> dict:
    try:
        return _parse(path.read_bytes())
    except OSError:
        return {}


def _read_fd(fd: int) -> dict:
    return _parse(os.pread(fd, 4096, 0))


def _parse(raw: bytes) -> dict:
    try:
        info = json.loads(raw.decode("utf-8", "replace") or "{}")
    except ValueError:
        return {"unreadable": True} if raw.strip() else {}
    return info if isinstance(info, dict) else {"unreadable": True}


def _describe(info: dict) -> str:
    if not info or info.get("unreadable"):
        return "holder unknown"
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')}"


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _alive_here(info: dict) -> bool:
    """True unless the holder surely is gone: same host and no process with its pid."""
    pid = info.get("pid")
    if not isinstance(pid, int) or info.get("host") != socket.gethostname():
        return bool(info) and not info.get("unreadable")  # another host: cannot tell, assume live
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if handle:
            ctypes.windll.kernel32.CloseHandle(handle)
        return bool(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
