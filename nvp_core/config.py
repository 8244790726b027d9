"""FlowConfig: everything needed to rebuild a RealNVP, as plain JSON.

The config is the contract between a weights file and the code that reads it, so
it is validated eagerly: a bad value fails here with the field's name rather than
deep inside a convolution with a shape error.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigError

NORMS = ("batch", "actnorm", "none")
# How a scale arranges its channel-wise couplings (see nvp_core/flow.py `_Scale`):
# "official" runs them on the plain 2×2 squeeze as the official code does; "ordered"
# is the first nvp_core layout (ordered squeeze, so they repeated the checkerboard
# split). Kept so that files written before the fix compute the function they learnt.
LAYOUTS = ("official", "ordered")
# What a model file written before the layout existed means: its config has neither key.
LEGACY_FIELDS = {"layout": "ordered", "channel_width_factor": 1}


class JsonConfig:
    """JSON round-trip for config dataclasses; unknown keys are errors, not silently dropped,
    so a typo in a hand-edited file is caught where it is made."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**data)

    def _require(self, ok: bool, name: str, what: str, got: str | None = None) -> None:
        """ConfigError "<Class>.<field> <what>, got <value>" unless ``ok``: every check names
        the field the same way, in both config classes. ``got`` defaults to the value's repr."""
        if not ok:
            shown = repr(getattr(self, name)) if got is None else got
            raise ConfigError(f"{type(self).__name__}.{name} {what}, got {shown}")

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__} JSON is malformed: {exc}") from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class FlowConfig(JsonConfig):
    """Architecture of a multi-scale Real NVP (Dinh et al. 2016, section 3.6).

    The defaults are the shipped default model (1.9M parameters, trains in an
    hour on two CPU cores); the paper's 32×32 model is ``width=32, blocks=4,
    max_width=256``. ``image_size`` is the training size only: the flow is fully convolutional,
    so it is metadata for presets and never shapes a parameter.
    """

    channels: int = 3
    scales: int = 4
    width: int = 16
    blocks: int = 2
    max_width: int = 64
    image_size: int = 32
    norm: str = "batch"
    alpha: float = 0.05
    norm_momentum: float = 0.05
    norm_eps: float = 1e-4
    layout: str = "official"
    channel_width_factor: int = 2

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FlowConfig":
        """A config read back from JSON. Files older than the ``layout`` field were all
        trained with the ordered layout and single-width channel nets: an absent key
        means that, never today's default, so an old model never loads as a different function."""
        if isinstance(data, dict):
            data = {**LEGACY_FIELDS, **data}
        return super().from_dict(data)

    def __post_init__(self) -> None:
        ints = {
            "channels": (1, 64),
            "scales": (1, 10),
            "width": (1, 4096),
            "blocks": (0, 64),
            "max_width": (1, 8192),
            "image_size": (2, 65536),
            "channel_width_factor": (1, 16),
        }
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            self._require(isinstance(value, int) and not isinstance(value, bool), name, "must be an integer")
            self._require(lo <= value <= hi, name, f"must be in [{lo}, {hi}]", f"{value}")
        self._require(self.layout in LAYOUTS, "layout", f"must be one of {LAYOUTS}")
        self._require(self.norm in NORMS, "norm", f"must be one of {NORMS}")
        for name, lo, hi in (("alpha", 0.0, 0.5), ("norm_momentum", 0.0, 1.0), ("norm_eps", 0.0, 1.0)):
            value = getattr(self, name)
            self._require(isinstance(value, (int, float)) and not isinstance(value, bool), name, "must be a number")
            self._require(lo < float(value) < hi, name, f"must be in ({lo}, {hi})", f"{value}")
        self._require(self.image_size % self.multiple == 0, "image_size",
                      f"must be a multiple of 2^(scales-1) = {self.multiple}", f"{self.image_size}")

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (one squeeze per non-final scale)."""
        return 2 ** (self.scales - 1)

    @staticmethod
    def default_scales(size: int) -> int:
        """Levels that bring ``size`` down to a 4×4 last scale: 32 → 4, 64 → 5."""
        scales, side = 1, size
        while side > 4 and side % 2 == 0:
            side //= 2
            scales += 1
        return scales
