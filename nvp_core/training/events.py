"""TrainEvent: the plain-Python messages a running Trainer sends (no Qt, no tqdm here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainEvent:
    """One message from a running Trainer; fields not meaningful for a kind are None.

    kind: 'start' | 'progress' | 'eval' | 'samples' | 'checkpoint' | 'done' | 'stopped' | 'error'
    """

    kind: str
    step: int = 0
    total_steps: int = 0
    loss: float | None = None          # training loss (bits/dim of the batch, + nothing else)
    bpd: float | None = None           # training bits/dim, averaged since the last progress event
    test_bpd: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    lr: float | None = None
    elapsed_s: float | None = None
    samples: np.ndarray | None = None  # uint8 (N, H, W, 3)
    path: str | None = None
    message: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
