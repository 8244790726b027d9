"""The explorer's controller: session changes that need the render worker, as Qt signals.

Panels never touch the model or run tasks that change shared state themselves;
they call the hub (open a model, add images, set an anchor) and listen to its
signals (``model_changed``, ``images_changed``, ``anchors_changed``…). The hub
runs the work on the one render worker and applies results to the session on
the GUI thread, checking the model generation so a result computed with a
model that has since been replaced is never applied.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from nvp_core.errors import DataError

from .entries import ImageEntry, encode_items
from .image_files import example_images, read_images
from .models import load_model
from .render import Job, Renderer, describe_error
from .session import (
    N_ANCHORS, Anchor, Session, SessionDocument, Task, image_anchor,
    read_session,
)

SAMPLE_TEMPERATURE = 0.8


class Hub(QObject):
    model_loading = Signal(str)  # path being opened
    model_changed = Signal()  # session.flow is new (latents re-encoded follow via images/anchors_changed)
    model_failed = Signal(str)
    images_changed = Signal()
    current_changed = Signal(int)
    anchors_changed = Signal()
    session_restored = Signal()  # angles / info-loss / canvas settings replaced from a file
    message = Signal(str, str)  # text, level ("error" | "warning" | "info")

    def __init__(self, session: Session, renderer: Renderer, device: str = "auto",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.renderer = renderer
        self.device = device
        self.loading: str | None = None
        self.last_folder = str(Path.home())  # where file dialogs open (persisted by the window)
        self._encode_seq = 0
        self._deferred: list[Callable[[], None]] = []  # image requests made while the first model loads

    # ---------------------------------------------------------------- model
    def open_model(self, path: str | Path, then: Callable[[], None] | None = None,
                   fallback: str | Path | None = None) -> None:
        """Load a model on the worker; the session changes only if it loads.

        ``fallback`` (at start: the default model) is opened instead when ``path``
        fails and no model is open yet, so images asked for meanwhile are kept and
        encoded with it; the failure stays on screen.
        """
        path = str(path)
        device = self.device
        self.loading = path
        self.model_loading.emit(path)
        for key in ("manifold-grid", "infoloss-strip"):  # long views of the old model: stop, load sooner
            self.renderer.cancel(key)

        def done(flow: Any) -> None:
            self.loading = None
            self.set_flow(flow, path)
            if then is not None:
                then()
            deferred, self._deferred = self._deferred, []
            for call in deferred:
                call()

        def failed(msg: str) -> None:
            self.loading = None
            if fallback is not None and str(fallback) != path and not self.session.has_model:
                note = f"Could not open the model {path}: {msg}"
                self.model_failed.emit(msg)
                self.message.emit(f"{note}. Opening the default model instead…", "warning")

                def opened() -> None:
                    self.message.emit(f"{note}. Opened the default model ({fallback}) instead.", "error")
                    if then is not None:
                        then()

                self.open_model(fallback, then=opened)
                return
            if not self.session.has_model and self._deferred:
                self._deferred.clear()
                msg += " (the images waiting for it were not loaded)"
            self.model_failed.emit(msg)
            self.message.emit(f"Could not open the model: {msg}", "error")

        self.renderer.submit("model", lambda job: load_model(path, device), on_result=done, on_error=failed)

    def set_flow(self, flow: Any, path: str | None = None) -> None:
        """Adopt a flow: results still in flight for the old one are dropped, panels
        hear ``model_changed``, then images and anchors are re-encoded."""
        for key in ("manifold", "manifold-grid", "infoloss", "infoloss-strip", "samples"):
            self.renderer.cancel(key)
        self.session.set_model(flow, path)
        self.model_changed.emit()
        self._after_model_change()

    def _after_model_change(self) -> None:
        s = self.session
        if s.images or any(a is not None for a in s.anchors):
            gen = s.model_generation
            n_images, old_anchors = len(s.images), list(s.anchors)

            def apply(result: tuple[list[ImageEntry], list[Anchor | None]]) -> None:
                if gen != s.model_generation:
                    return
                entries, anchors = result
                # images added and anchors set meanwhile were made with the new model: keep them
                s.images = entries + s.images[n_images:]
                s.current = min(max(s.current, 0), len(s.images) - 1) if s.images else -1
                s.anchors = [new if cur is old else cur for new, cur, old in zip(anchors, s.anchors, old_anchors)]
                self.images_changed.emit()
                self.anchors_changed.emit()
                self.fill_empty_anchors()

            self.renderer.submit("reencode", s.reencode_task(), on_result=apply, on_error=self._error)
        else:
            self.images_changed.emit()
            self.anchors_changed.emit()
            self.fill_empty_anchors()

    # ---------------------------------------------------------------- images
    def add_paths(self, paths: Sequence[str | Path], then: Callable[[list[int]], None] | None = None) -> None:
        """Read and encode files/folders; bad files are reported, the rest are added."""
        paths = [str(p) for p in paths]
        if not paths or not self._need_model(lambda: self.add_paths(paths, then)):
            return
        s = self.session
        gen = s.model_generation

        def apply(result: tuple[list[ImageEntry], list[str]]) -> None:
            entries, errors = result
            self._report_skipped(errors, len(entries))
            self._adopt(entries, gen, then)

        self._submit_encode(s.read_and_encode_task(paths), apply)

    def add_items(self, items: Sequence[tuple[str, np.ndarray, str | None]],
                  then: Callable[[list[int]], None] | None = None) -> None:
        """Encode images already in memory (examples, a session file's images)."""
        if not items or not self._need_model(lambda: self.add_items(items, then)):
            return
        gen = self.session.model_generation
        self._submit_encode(self.session.encode_task(items), lambda entries: self._adopt(entries, gen, then))

    def _submit_encode(self, task: Task, apply: Callable[[Any], None]) -> None:
        self._encode_seq += 1
        self.renderer.submit("encode", task, on_result=apply, on_error=self._error, replace=False)

    def _adopt(self, entries: list[ImageEntry], gen: int, then: Callable[[list[int]], None] | None) -> None:
        s = self.session
        if not entries:
            return
        if gen != s.model_generation:
            # encoded by a model that has been replaced meanwhile: encode again with the new one
            self.add_items([(e.name, e.original, e.source, e.original_size) for e in entries], then)
            return
        first = len(s.images)
        s.add_images(entries)
        self.images_changed.emit()
        self.current_changed.emit(s.current)
        if then is not None:
            then(list(range(first, first + len(entries))))

    def _report_skipped(self, errors: list[str], loaded: int) -> None:
        if not errors:
            return
        head = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        if loaded:
            self.message.emit(f"Loaded {loaded} image(s); skipped {len(errors)}: {head}", "warning")
        else:
            self.message.emit(f"No image loaded: {head}", "error")

    def recrop(self, index: int, box: tuple[int, int, int, int] | None) -> None:
        """Re-fit one image with a chosen crop (None: back to the centre crop)."""
        s = self.session
        if not 0 <= index < len(s.images) or not self._need_model():
            return
        gen, target = s.model_generation, s.images[index]

        def apply(result: tuple[int, ImageEntry]) -> None:
            i, entry = result
            if gen != s.model_generation or i >= len(s.images) or s.images[i] is not target:
                return  # the model or the list changed meanwhile
            s.images[i] = entry
            self.images_changed.emit()
            self.current_changed.emit(s.current)

        self.renderer.submit("encode", s.recrop_task(index, box), on_result=apply, on_error=self._error,
                             replace=False)

    def set_current(self, index: int) -> None:
        s = self.session
        if 0 <= index < len(s.images) and index != s.current:
            s.current = index
            self.current_changed.emit(index)

    def remove_image(self, index: int) -> None:
        self.session.remove_image(index)
        self.images_changed.emit()
        self.current_changed.emit(self.session.current)

    def clear_images(self) -> None:
        self.session.clear_images()
        self.images_changed.emit()
        self.current_changed.emit(-1)

    def load_examples(self) -> None:
        """Photos shipped in optional packages, read on the worker."""
        if not self._need_model(self.load_examples):
            return
        gen = self.session.model_generation
        flow = self.session.flow

        def run(job: Job) -> list[ImageEntry]:
            items = example_images()
            if not items:
                raise DataError("no example photos: install scikit-image or scikit-learn (pip install -e .[data])")
            return encode_items(flow, items, job)

        self._submit_encode(run, lambda entries: self._adopt(entries, gen, None))

    # ---------------------------------------------------------------- anchors
    def set_anchor_from_image(self, slot: int, index: int) -> None:
        s = self.session
        if 0 <= index < len(s.images):
            s.set_anchor(slot, image_anchor(s.images[index]))
            self.anchors_changed.emit()

    def set_anchor_from_paths(self, slot: int, paths: Sequence[str | Path]) -> None:
        """First readable image of ``paths`` into ``slot``, further ones into the next empty slots."""
        if not self._need_model(lambda: self.set_anchor_from_paths(slot, paths)):
            return
        s = self.session
        gen = s.model_generation
        flow = s.flow

        def run(job: Job) -> tuple[list[ImageEntry], list[str]]:
            items, errors = read_images(paths)
            return encode_items(flow, items[: N_ANCHORS], job), errors

        def apply(result: tuple[list[ImageEntry], list[str]]) -> None:
            entries, errors = result
            self._report_skipped(errors, len(entries))
            if gen != s.model_generation or not entries:
                return
            targets = [slot] + [i for i in s.empty_slots() if i != slot]
            for i, e in zip(targets, entries):
                s.set_anchor(i, image_anchor(e))
            self.anchors_changed.emit()

        self.renderer.submit("encode", run, on_result=apply, on_error=self._error, replace=False)

    def sample_anchors(self, slots: Sequence[int], seeds: Sequence[int] | None = None,
                       temperature: float = SAMPLE_TEMPERATURE) -> None:
        if not slots or not self._need_model():
            return
        s = self.session
        seeds = list(seeds) if seeds is not None else [random.randrange(1_000_000) for _ in slots]
        gen = s.model_generation

        def apply(pairs: list[tuple[int, Anchor]]) -> None:
            if gen != s.model_generation:
                return
            for slot, anchor in pairs:
                s.set_anchor(slot, anchor)
            self.anchors_changed.emit()

        self.renderer.submit("anchors", s.sample_anchors_task(slots, seeds, temperature), on_result=apply,
                             on_error=self._error, replace=False)

    def fill_empty_anchors(self) -> None:
        """Empty slots get model samples (seeds = slot numbers), so the manifold works at once."""
        empty = self.session.empty_slots()
        if empty and self.session.has_model:
            self.sample_anchors(empty, seeds=[i + 1 for i in empty])

    def fill_anchors_from_images(self) -> None:
        s = self.session
        if not s.images:
            self.message.emit("No encoded images yet: open or drop some images first", "warning")
            return
        for slot, entry in zip(range(N_ANCHORS), s.images):
            s.set_anchor(slot, image_anchor(entry))
        self.anchors_changed.emit()

    def clear_anchor(self, slot: int) -> None:
        self.session.set_anchor(slot, None)
        self.anchors_changed.emit()

    # ---------------------------------------------------------------- sessions
    def save_session(self, path: str | Path, then: Callable[[Path], None] | None = None) -> None:
        """Write on the worker from a snapshot (the GUI may go on changing the session)."""
        snap = self.session.snapshot()

        def done(written: Path) -> None:
            self.message.emit(f"Session saved to {written}", "info")
            if then is not None:
                then(written)

        self.renderer.submit("save-session", lambda job: snap.save(path), on_result=done,
                             on_error=lambda m: self.message.emit(f"Could not save the session: {m}", "error"),
                             replace=False)

    def open_session(self, path: str | Path) -> None:
        """Read a session file; its model is opened first when it differs and exists."""
        path = str(path)

        def restore(doc: SessionDocument) -> None:
            s = self.session
            for text in doc.warnings:  # e.g. a model path that is a FIFO: not opened
                self.message.emit(f"Session {Path(path).name}: {text}", "warning")
            if doc.model and Path(doc.model).exists() and doc.model != s.model_path:
                self.open_model(doc.model, then=lambda: self._restore(doc))
            elif not s.has_model:
                self.message.emit("Open a model first: the session's images are encoded with it", "error")
            else:
                self._restore(doc)

        self.renderer.submit("open-session", lambda job: read_session(path), on_result=restore,
                             on_error=lambda m: self.message.emit(f"Could not open the session: {m}", "error"))

    def _restore(self, doc: SessionDocument) -> None:
        s = self.session
        gen = s.model_generation

        def apply(result: tuple[list[ImageEntry], list[Anchor | None], int]) -> None:
            if gen != s.model_generation:
                return
            entries, anchors, current = result
            s.apply_document(doc)
            s.images = entries
            s.current = current if 0 <= current < len(entries) else (0 if entries else -1)
            s.anchors = anchors
            self.images_changed.emit()
            self.current_changed.emit(s.current)
            self.anchors_changed.emit()
            self.session_restored.emit()
            self.fill_empty_anchors()
            self.message.emit(f"Session restored: {len(entries)} image(s), "
                              f"{sum(a is not None for a in anchors)} anchor(s)", "info")

        self.renderer.submit("restore", s.restore_task(doc), on_result=apply, on_error=self._error)

    # ---------------------------------------------------------------- helpers
    def _need_model(self, retry: Callable[[], None] | None = None) -> bool:
        """True when a model is open; while the first one loads, ``retry`` runs once it has."""
        if self.session.has_model:
            return True
        if self.loading and retry is not None:
            self._deferred.append(retry)
            return False
        self.message.emit("No model is open: open one with File ▸ Open model… (or drop a model file here)", "error")
        return False

    def _error(self, msg: str) -> None:
        self.message.emit(msg, "error")

    @staticmethod
    def describe(exc: BaseException) -> str:
        return describe_error(exc)
