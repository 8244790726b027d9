"""The run folder: where a training writes, and how it is made safe to write there.

``OUT/`` holds ``checkpoint.safetensors``, ``metrics.jsonl``, ``train_config.json``,
``samples/`` and the final ``model/``; ``run.lock`` while a training runs. Every file
is written atomically (temp file + rename), so a kill -9 mid-write can leave a
``.NAME.*.tmp`` behind: those are removed when the next run takes the lock.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import checkpoint as ckpt
from ..io import atomic_write_bytes
from .run_lock import RunLock

METRICS_NAME = "metrics.jsonl"


class RunFolder:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock = RunLock(self.path)

    # ------------------------------------------------------------ paths
    @property
    def checkpoint(self) -> Path:
        return self.path / ckpt.CHECKPOINT_NAME

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def model(self) -> Path:
        return self.path / "model"

    def sample_grid(self, step: int) -> Path:
        return self.path / "samples" / f"step_{step:07d}.png"

    @property
    def run_name(self) -> str:
        return self.path.resolve().name or str(self.path)

    # ------------------------------------------------------------ after taking the lock
    def remove_temporaries(self) -> tuple[int, int]:
        """Delete the ``.NAME.*.tmp`` files of writes that a killed run never finished.

        Only call this holding the lock: a live run's temp file is in use. Returns
        (files removed, bytes freed).
        """
        n = size = 0
        for folder in (self.path, self.model, self.path / "samples"):
            if not folder.is_dir():
                continue
            for tmp in folder.glob(".*.tmp"):
                try:
                    size += tmp.stat().st_size
                    tmp.unlink()
                    n += 1
                except OSError:
                    continue
        return n, size

    def write_config(self, config_json: str) -> None:
        atomic_write_bytes(self.path / "train_config.json", config_json.encode())

    # ------------------------------------------------------------ metrics.jsonl
    def append_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def reset_metrics(self) -> bool:
        """A fresh run starts a fresh file (rows of an earlier, never-checkpointed attempt
        would repeat step 0). True if there was a file."""
        if not self.metrics.is_file():
            return False
        self.metrics.unlink()
        return True

    def truncate_metrics(self, step: int) -> None:
        """Keep rows up to ``step`` (the checkpoint resumed from), one per (kind, step):
        a killed run's tail and repeated rows go, the newest of a repeat stays."""
        if not self.metrics.is_file():
            return
        rows: dict[tuple[str, int], str] = {}
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                at = int(row.get("step", 0))
            except (ValueError, TypeError, AttributeError):
                continue
            if at <= step:
                key = ("train" if "train_bpd" in row else "test", at)
                rows.pop(key, None)  # re-insert: the newest copy, in file order
                rows[key] = line
        keep = list(rows.values())
        atomic_write_bytes(self.metrics, ("\n".join(keep) + "\n" if keep else "").encode())
