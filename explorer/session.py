"""What the explorer is looking at, as plain Python: no Qt here.

A user action changes a :class:`Session`; a panel then asks the session for a
*task* — a closure over a snapshot of the state it needs (the flow, some
latents, the angles) — and hands it to the render worker. Tasks never read the
session again, so the GUI thread may keep changing it while a task runs, and
the same code is testable without a window.

All the work on the model goes through ``nvp_core``'s one pipeline (chunked,
cancellable through the worker's ``progress``): ``nc.encode_and_score``,
``nc.decode_images``, ``nc.sphere_images``, ``nc.infoloss_columns``,
``nc.sample_images``. Angles are degrees here (what the sliders show) and
radians from ``Angles.radians()`` on.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

import nvp_core as nc
from nvp_core.errors import DataError, ModelFileError
from nvp_core.images import grid
from nvp_core.latents import Latents
from nvp_core.pipeline import Progress

from .entries import ImageEntry, Item, encode_items, model_size
from .image_files import read_images
from .session_file import (  # the file format lives there; these names stay importable from here
    N_ANCHORS, SESSION_FORMAT, SESSION_SUFFIX, SESSION_VERSION, SessionDocument, read_session, write_session,
)

Task = Callable[[Progress], Any]


class StaleLatents(Exception):
    """Raised by a task whose latents belong to a model that has since been replaced.

    Between a model change and the re-encode that follows it, a view may still ask
    for a render of the old latents; the render worker drops such a task silently
    (like a cancelled one), and the re-encode's ``images_changed``/``anchors_changed``
    brings the fresh render.
    """


def stale_task(progress: Any) -> Any:
    """The task handed out instead of one over stale latents: the render worker drops it."""
    raise StaleLatents("latents of a replaced model")


def _fits(flow: nc.RealNVP, owner: Any) -> bool:
    made_by = getattr(owner, "encoded_by", None)
    return made_by is None or made_by is flow


# ---------------------------------------------------------------- pieces of state
@dataclass
class Anchor:
    """One of the manifold's eight slots: an encoded image or a model sample."""

    kind: str  # "image" or "sample"
    label: str
    latents: Latents
    thumbnail: np.ndarray  # uint8 (H, W, 3): what the slot shows (the decoded anchor)
    original: np.ndarray | None = None  # kind "image": re-encoded when the model changes
    seed: int | None = None  # kind "sample": re-drawn when the model changes
    temperature: float | None = None
    encoded_by: Any = field(default=None, repr=False, compare=False)  # as ImageEntry.encoded_by


@dataclass
class Angles:
    """φ, φ′, φ″ in degrees (what the sliders show); the maths takes radians."""

    phi: float = 0.0
    phi1: float = 0.0
    phi2: float = 0.0

    def radians(self) -> tuple[float, float, float]:
        return (math.radians(self.phi), math.radians(self.phi1), math.radians(self.phi2))

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.phi, self.phi1, self.phi2)


@dataclass
class InfoLossSettings:
    """Which levels are replaced by ε^(k), how (noise at temperature T, or zeros) and with which seed."""

    levels: set[int] = field(default_factory=set)
    temperature: float = 1.0
    seed: int = 0
    mode: str = "noise"  # "noise" | "zero"


@dataclass
class CanvasSettings:
    """Extrapolation canvas; width/height 0 mean "the model's training size"."""

    width: int = 0
    height: int = 0
    temperature: float = 0.7
    seed: int = 0
    count: int = 1


# ---------------------------------------------------------------- anchors and pictures of the session's state
def sample_anchor(flow: nc.RealNVP, seed: int, temperature: float, label: str | None = None) -> Anchor:
    """A model sample as a manifold anchor; its seed re-draws it for another model."""
    return sample_anchors(flow, [seed], temperature, [label])[0]


def sample_anchors(flow: nc.RealNVP, seeds: Sequence[int], temperature: float,
                   labels: Sequence[str | None] | None = None, progress: Progress | None = None) -> list[Anchor]:
    """One anchor per seed (each seed its own generator, so an anchor never depends on the
    others drawn with it), decoded as one batch."""
    h, w = model_size(flow)
    labels = list(labels) if labels is not None else [None] * len(seeds)
    per_seed = nc.seeded_latents(flow, seeds, h, w, temperature)
    thumbs = nc.decode_images(flow, nc.concat(per_seed), progress=progress)
    return [Anchor(kind="sample", label=lab or f"sample {seed}", latents=z, thumbnail=thumbs[i],
                   seed=int(seed), temperature=float(temperature), encoded_by=flow)
            for i, (seed, lab, z) in enumerate(zip(seeds, labels, per_seed))]


def image_anchor(entry: ImageEntry) -> Anchor:
    return Anchor(kind="image", label=entry.name, latents=entry.latents, thumbnail=entry.recon,
                  original=entry.original, encoded_by=entry.encoded_by)


def infoloss_image(
    flow: nc.RealNVP, zs: Latents, levels: Iterable[int], temperature: float, seed: int, mode: str
) -> np.ndarray:
    """Decode z with the chosen levels replaced by ε^(k) (or zeros): uint8 (H, W, 3)."""
    return nc.infoloss_columns(flow, zs, [sorted(levels)], temperature, seed, mode)[0, 0]


def infoloss_strip(
    flow: nc.RealNVP, zs: Latents, temperature: float, seed: int, mode: str, progress: Progress | None = None,
) -> list[np.ndarray]:
    """The seed page's figure for one image: [g(z), g(ε¹, z²…), g(ε¹, ε², z³…), …], L columns.

    Every column uses the same seed, so ε^(1) is the same noise in all of them and
    the strip shows only what each further level adds.
    """
    sets = nc.infoloss_level_sets(len(zs))
    return list(nc.infoloss_columns(flow, zs, sets, temperature, seed, mode, progress=progress)[0])


def manifold_image(flow: nc.RealNVP, anchors: Sequence[Latents], angles: Angles) -> np.ndarray:
    """The decoded point of the sphere at the given angles: uint8 (H, W, 3)."""
    return nc.sphere_images(flow, anchors, [angles.radians()])[0]


def is_session_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == SESSION_SUFFIX


# ---------------------------------------------------------------- the session
class Session:
    """The explorer's state. Lives on the GUI thread; tasks snapshot what they need."""

    def __init__(self) -> None:
        self.flow: nc.RealNVP | None = None
        self.model_path: str | None = None
        self.model_generation = 0  # bumps on every model change; results of older models are dropped
        self.images: list[ImageEntry] = []
        self.current = -1
        self.anchors: list[Anchor | None] = [None] * N_ANCHORS
        self.angles = Angles()
        self.infoloss = InfoLossSettings()
        self.canvas = CanvasSettings()

    # ---- model
    @property
    def has_model(self) -> bool:
        return self.flow is not None

    @property
    def levels(self) -> int:
        return self.flow.config.scales if self.flow is not None else 0

    @property
    def image_size(self) -> tuple[int, int]:
        return model_size(self.require_flow())

    def require_flow(self) -> nc.RealNVP:
        if self.flow is None:
            raise ModelFileError("no model is open: open one with File ▸ Open model…")
        return self.flow

    def set_model(self, flow: nc.RealNVP, path: str | os.PathLike | None = None) -> None:
        """Switch models. Latents of the old model mean nothing to the new one, so they
        are dropped here and the caller re-encodes (:meth:`reencode_task`)."""
        self.flow = flow
        self.model_path = str(path) if path is not None else getattr(flow, "source", None)
        self.model_generation += 1
        self.infoloss.levels = {k for k in self.infoloss.levels if 1 <= k <= flow.config.scales}

    # ---- images
    def add_images(self, entries: Sequence[ImageEntry]) -> None:
        if not entries:
            return
        self.images.extend(entries)
        self.current = len(self.images) - len(entries)

    def remove_image(self, index: int) -> None:
        if 0 <= index < len(self.images):
            del self.images[index]
            self.current = min(self.current, len(self.images) - 1)

    def clear_images(self) -> None:
        self.images.clear()
        self.current = -1

    @property
    def current_image(self) -> ImageEntry | None:
        if 0 <= self.current < len(self.images):
            return self.images[self.current]
        return None

    # ---- anchors
    def set_anchor(self, slot: int, anchor: Anchor | None) -> None:
        if not 0 <= slot < N_ANCHORS:
            raise IndexError(f"anchor slot {slot + 1} out of 1..{N_ANCHORS}")
        self.anchors[slot] = anchor

    @property
    def anchors_complete(self) -> bool:
        return all(a is not None for a in self.anchors)

    def empty_slots(self) -> list[int]:
        return [i for i, a in enumerate(self.anchors) if a is None]

    def anchor_latents(self) -> list[Latents]:
        missing = self.empty_slots()
        if missing:
            names = ", ".join(f"z{i + 1}" for i in missing)
            raise DataError(f"the manifold needs all eight anchors; empty: {names}")
        return [a.latents for a in self.anchors]  # type: ignore[union-attr]

    # ---- tasks: closures over a snapshot, run on the render worker
    def encode_task(self, items: Sequence[Item]) -> Task:
        flow = self.require_flow()
        items = list(items)
        return lambda progress: encode_items(flow, items, progress)

    def read_and_encode_task(self, paths: Sequence[str | os.PathLike]) -> Task:
        """Read files/folders and encode them: (entries, error messages)."""
        flow = self.require_flow()
        paths = list(paths)

        def run(progress: Progress) -> tuple[list[ImageEntry], list[str]]:
            items, errors = read_images(paths)
            return encode_items(flow, items, progress), errors

        return run

    def recrop_task(self, index: int, box: tuple[int, int, int, int] | None) -> Task:
        """Re-fit image ``index`` from its original with a chosen crop (None = centre): (index, entry)."""
        flow = self.require_flow()
        e = self.images[index]
        item = (e.name, e.original, e.source, e.original_size)
        return lambda progress: (index, encode_items(flow, [item], progress, boxes=[box])[0])

    def infoloss_task(self) -> Task:
        flow = self.require_flow()
        zs = self.subject_latents()
        if not self.subject_fits():
            return stale_task
        s = self.infoloss
        levels, t, seed, mode = sorted(s.levels), s.temperature, s.seed, s.mode
        return lambda progress: infoloss_image(flow, zs, levels, t, seed, mode)

    def infoloss_strip_task(self) -> Task:
        flow = self.require_flow()
        zs = self.subject_latents()
        if not self.subject_fits():
            return stale_task
        s = self.infoloss
        t, seed, mode = s.temperature, s.seed, s.mode
        return lambda progress: infoloss_strip(flow, zs, t, seed, mode, progress)

    def subject_fits(self) -> bool:
        """Whether the current image's latents are the open model's (not yet re-encoded after a change)."""
        return _fits(self.flow, self.current_image)

    def anchors_fit(self) -> bool:
        """Whether every anchor's latents are the open model's (see :class:`StaleLatents`)."""
        return all(_fits(self.flow, a) for a in self.anchors)

    def subject_latents(self) -> Latents:
        entry = self.current_image
        if entry is None:
            raise DataError("no image to work on: open or drop an image first")
        return entry.latents

    def manifold_task(self, angles: Angles | None = None) -> Task:
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not self.anchors_fit():
            return stale_task
        a = Angles(*(angles or self.angles).as_tuple())
        return lambda progress: manifold_image(flow, anchors, a)

    def manifold_grid_task(self, n: int = 8) -> Task:
        """The n×n grid over (φ, φ′) at the current φ″, decoded on the worker: (grid image, frames)."""
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not self.anchors_fit():
            return stale_task
        # φ and φ′ over [0°, 90°]: z1 top-left, z3 top-right, z5 bottom-left, z7 bottom-right
        angles = nc.manifold_angles(n, n, math.radians(self.angles.phi2), span=math.pi / 2, endpoint=True)

        def run(progress: Progress) -> np.ndarray:
            frames = nc.sphere_images(flow, anchors, angles, progress=progress)
            return grid(frames, cols=n, pad=1, value=24)

        return run

    def manifold_sweep_task(self, which: str, frames: int, span: float = 360.0) -> Task:
        """``frames`` sphere points moving angle ``which`` from the current angles over ``span``
        degrees (the sliders' unit; nvp_core takes radians)."""
        flow = self.require_flow()
        anchors = self.anchor_latents()
        if not self.anchors_fit():
            return stale_task
        angles = nc.sweep_angles(which, frames, self.angles.radians(), math.radians(span))
        return lambda progress: list(nc.sphere_images(flow, anchors, angles, progress=progress))

    def sample_anchors_task(self, slots: Sequence[int], seeds: Sequence[int], temperature: float) -> Task:
        flow = self.require_flow()
        pairs = list(zip(slots, seeds))

        def run(progress: Progress) -> list[tuple[int, Anchor]]:
            anchors = sample_anchors(flow, [seed for _, seed in pairs], temperature, progress=progress)
            return [(slot, a) for (slot, _), a in zip(pairs, anchors)]

        return run

    def samples_task(self, n: int, temperature: float, seed: int) -> Task:
        """n model samples at the training size as one uint8 grid (the Model tab's preview)."""
        flow = self.require_flow()
        h, w = model_size(flow)

        def run(progress: Progress) -> np.ndarray:
            frames = nc.sample_images(flow, n, h, w, temperature, int(seed), progress=progress)
            return grid(frames, cols=int(math.ceil(math.sqrt(n))), pad=1, value=24)

        return run

    def reencode_task(self) -> Task:
        """Everything model-dependent, recomputed for the current model: (entries, anchors).

        Images are re-fitted from their originals (the new model may have another
        size); image anchors are re-encoded, sample anchors re-drawn from their seeds.
        """
        flow = self.require_flow()
        items = [(e.name, e.original, e.source, e.original_size) for e in self.images]
        boxes = [e.box for e in self.images]
        anchors = list(self.anchors)

        def run(progress: Progress) -> tuple[list[ImageEntry], list[Anchor | None]]:
            entries = encode_items(flow, items, boxes=boxes)
            new_anchors: list[Anchor | None] = []
            for a in anchors:
                new_anchors.append(_rebuild_anchor(flow, a))
            progress(1.0)
            return entries, new_anchors

        return run

    # ---- persistence
    def to_document(self) -> dict[str, Any]:
        """The JSON part of a saved session (images are written beside it)."""
        return {
            "format": SESSION_FORMAT,
            "version": SESSION_VERSION,
            "model": self.model_path,
            "current": self.current,
            "angles": asdict(self.angles),
            "infoloss": {**asdict(self.infoloss), "levels": sorted(self.infoloss.levels)},
            "canvas": asdict(self.canvas),
            "images": [{"name": e.name, "file": f"images/{i:03d}.png", "source": e.source,
                        "box": list(e.box) if e.box else None, "size": list(e.true_size)}
                       for i, e in enumerate(self.images)],
            "anchors": [_anchor_doc(i, a) for i, a in enumerate(self.anchors)],
        }

    def snapshot(self) -> "Session":
        """A copy of the saved parts (model path, images, anchors, angles, toggles, canvas), for
        writing on a worker while the GUI goes on changing this session."""
        snap = Session()
        snap.model_path, snap.current = self.model_path, self.current
        snap.images, snap.anchors = list(self.images), list(self.anchors)
        snap.angles = Angles(*self.angles.as_tuple())
        snap.infoloss = InfoLossSettings(set(self.infoloss.levels), self.infoloss.temperature, self.infoloss.seed,
                                         self.infoloss.mode)
        snap.canvas = CanvasSettings(**vars(self.canvas))
        return snap

    def save(self, path: str | os.PathLike) -> Path:
        """Write the session as one zip: session.json + the images as PNG (atomic)."""
        anchor_images = {i: a.original for i, a in enumerate(self.anchors)
                         if a is not None and a.kind == "image" and a.original is not None}
        return write_session(path, self.to_document(), [e.original for e in self.images], anchor_images)

    def apply_document(self, doc: "SessionDocument") -> None:
        """Take the plain settings of a loaded session; images and anchors come from
        :meth:`restore_task` (they need the model)."""
        self.angles = Angles(*doc.angles)
        self.infoloss = InfoLossSettings(**{**asdict(InfoLossSettings()), **doc.infoloss})
        self.canvas = CanvasSettings(**{**asdict(CanvasSettings()), **doc.canvas})

    def restore_task(self, doc: "SessionDocument") -> Task:
        """Encode a loaded session's images and anchors with the current model: (entries, anchors, current)."""
        flow = self.require_flow()

        def run(progress: Progress) -> tuple[list[ImageEntry], list[Anchor | None], int]:
            entries = encode_items(flow, doc.images, boxes=doc.boxes)
            anchors: list[Anchor | None] = []
            for spec in doc.anchors:
                if spec is None:
                    anchors.append(None)
                elif spec["kind"] == "image":
                    anchors.append(_rebuild_anchor(flow, Anchor("image", spec["label"], [], spec["original"],
                                                                 original=spec["original"])))
                else:
                    anchors.append(sample_anchor(flow, spec["seed"], spec["temperature"], spec["label"]))
            progress(1.0)
            return entries, anchors, doc.current

        return run


def _rebuild_anchor(flow: nc.RealNVP, a: Anchor | None) -> Anchor | None:
    if a is None:
        return None
    if a.kind == "sample":
        return sample_anchor(flow, a.seed or 0, a.temperature if a.temperature is not None else 1.0, a.label)
    if a.original is None:
        return None
    entry = encode_items(flow, [(a.label, a.original, None)])[0]
    return Anchor(kind="image", label=a.label, latents=entry.latents, thumbnail=entry.recon, original=a.original,
                  encoded_by=flow)


def _anchor_doc(i: int, a: Anchor | None) -> dict[str, Any] | None:
    if a is None:
        return None
    if a.kind == "sample":
        return {"kind": "sample", "label": a.label, "seed": a.seed, "temperature": a.temperature}
    if a.original is None:
        return None
    return {"kind": "image", "label": a.label, "file": f"anchors/{i + 1}.png"}


__all__ = [
    "Anchor", "Angles", "CanvasSettings", "InfoLossSettings", "N_ANCHORS", "SESSION_SUFFIX", "Session",
    "SessionDocument", "StaleLatents", "Task", "image_anchor", "infoloss_image", "infoloss_strip", "is_session_path",
    "manifold_image", "read_session", "sample_anchor", "sample_anchors", "stale_task",
]
