"""The Trainer: one training run, read top-down in :meth:`Trainer._run`.

One ``Trainer`` runs one training to completion, emitting plain-Python
``TrainEvent`` objects through a callback (throttled, so a GUI signal or a tqdm bar
never becomes the bottleneck). Everything random in step ``t`` — data order,
crops, flips, dequantization noise — is derived from ``(seed, t)``, so a resumed
run continues exactly as if it had never stopped, and ``world`` DDP processes see
the same global batch as one process would.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .. import checkpoint as ckpt, limits
from ..data import TrainData, dequantize_batch, derive_seed, load_data
from ..errors import NVPError, TrainingError
from ..flow import RealNVP
from ..images import grid, save_image
from ..io import load as load_model_file, resolve_device, save
from ..preprocess import to_numpy_image
from ..recalibrate import recalibrate
from ..scale_transfer import warm_start
from . import rng_state
from .config import TrainConfig
from .distributed import Dist, setup_distributed
from .ema import EMA
from .evaluation import calibration_batches, evaluate_bits_per_dim
from .events import TrainEvent
from .progress import ProgressMeter
from .records import checkpoint_to_resume, model_card, training_state
from .run_folder import RunFolder
from .step import TrainStep, make_optimizer

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2   # at most ~5 progress events per second
METRICS_INTERVAL_S = 10.0   # at most one training row in metrics.jsonl per 10 s
FIRST_PREVIEW_STEP = 10     # the first sample grid comes at this step or after
FIRST_PREVIEW_S = 30.0      # ... this many seconds, whichever is first (not only at sample_every)


@dataclass(frozen=True)
class Measurement:
    """A number together with the step it was measured at: never shown as newer than it is."""

    value: float
    step: int


class Trainer:
    """Runs one training (``run()`` blocks); control it from another thread with
    ``request_stop()``, ``pause()`` and ``resume()``."""

    def __init__(self, config: TrainConfig, callback: Callable[[TrainEvent], None] | None = None) -> None:
        config.validate()
        self.config = config
        self.callback = callback
        self.folder = RunFolder(config.out)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.history: dict[str, list[list[float]]] = {"train": [], "test": []}
        self.model: RealNVP | None = None
        self.data: TrainData | None = None
        self.ema: EMA | None = None
        self.dist = Dist()
        self.step = 0
        self.last_test: Measurement | None = None
        self.notes: list[str] = []  # what the start event reports besides the run (stale lock, cleaned files)
        self.progress_interval_s = PROGRESS_INTERVAL_S  # tests set 0 to see every step's loss
        self.metrics_interval_s = METRICS_INTERVAL_S
        self.first_preview_step = FIRST_PREVIEW_STEP
        self.first_preview_s = FIRST_PREVIEW_S

    # ---------------------------------------------------------------- control (thread-safe)
    def request_stop(self) -> None:
        """Finish the current step, score and save the weights, and return from run()."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def out(self) -> Path:
        return self.folder.path

    @property
    def checkpoint_path(self) -> Path:
        return self.folder.checkpoint

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """Train to ``config.steps`` (or until stopped). Returns the final metrics.

        Raises DataError/ConfigError/TrainingError before training for bad input (a run
        folder in use by another training included), and TrainingError when the loss
        becomes non-finite (the last good checkpoint stays).
        """
        try:
            self.dist = setup_distributed(self.config.device)
            self.device = self._device()
            self._lock_folder()
            return self._run()
        except NVPError as exc:
            self._emit(TrainEvent("error", step=self.step, total_steps=self.config.steps, message=str(exc)))
            raise
        except Exception as exc:
            self._emit(TrainEvent("error", step=self.step, total_steps=self.config.steps,
                                  message=f"{exc.__class__.__name__}: {exc}"))
            raise
        finally:
            self.folder.lock.release()
            self.dist.close()

    def _run(self) -> dict[str, Any]:
        resume = checkpoint_to_resume(self.folder, self.config)
        self._tidy_folder(resume)
        self._build(resume)
        self._announce(resumed=resume is not None)
        if resume is None and self.dist.main and not self._stop.is_set():
            self._evaluate()  # the starting point of the test curve
        stopped = self._train()
        return self._finish(stopped)

    # ---------------------------------------------------------------- before training
    def _device(self) -> torch.device:
        pref = self.config.device
        try:
            if self.dist.world > 1 and torch.cuda.is_available() and pref in ("auto", "cuda"):
                return torch.device("cuda", self.dist.local_rank)
            return resolve_device(pref)
        except (RuntimeError, NVPError) as exc:
            raise TrainingError(f"device {pref!r}: {exc}") from None

    def _lock_folder(self) -> None:
        """One training per folder (rank 0 holds the lock; every rank stops if it cannot)."""
        error: TrainingError | None = None
        if self.dist.main:
            try:
                self.folder.lock.acquire()
            except TrainingError as exc:
                error = exc
        if not self.dist.agree(error is None, self.device):
            raise error or TrainingError(f"{self.out} is in use by another training (rank 0 could not lock it)")
        if self.folder.lock.taken_over:
            self.notes.append(f"took over the lock of a training that is no longer running "
                              f"({self.folder.lock.taken_over})")

    def _tidy_folder(self, resume: tuple[dict, dict[str, Any]] | None) -> None:
        """Remove what a killed run left: temp files of unfinished writes, metric rows
        after its checkpoint (or, starting fresh, the rows of an attempt that never saved one)."""
        if not self.dist.main:
            return
        n, size = self.folder.remove_temporaries()
        if n:
            self.notes.append(f"removed {n} unfinished temporary file(s) ({size / 1e6:.1f} MB) "
                              "left by an interrupted write")
        if resume is None:
            if self.folder.reset_metrics():
                self.notes.append("started a new metrics.jsonl (the old one was from an attempt that "
                                  "never saved a checkpoint)")
        else:
            self.folder.truncate_metrics(int(resume[1]["step"]))

    def _build(self, resume: tuple[dict[str, torch.Tensor], dict[str, Any]] | None) -> None:
        """Data, model, optimizer, EMA and the step, from scratch or from the checkpoint."""
        c = self.config
        self._check_memory()
        rng_state.seed_all(c.seed)
        t_load = time.perf_counter()
        self.data = load_data(c.data, c.size, crop=c.crop, seed=c.seed, workers=c.num_workers,
                              n_train=c.n_train_crops, n_test=c.n_test_crops)
        self.load_s = time.perf_counter() - t_load
        self.model = RealNVP(c.flow_config()).to(self.device)
        self.optimizer = make_optimizer(self.model, c)
        self.elapsed_before, self.images_seen, ema_tensors = 0.0, 0, None
        if resume is not None:
            ema_tensors = self._restore(*resume)
        else:
            if c.init_from:
                self._warm_start(c.init_from)
            if c.norm == "actnorm":
                self._initialise_actnorm()
        if c.ema_decay > 0:  # after ActNorm's data-dependent init
            self.ema = EMA(self.model, c.ema_decay)
            if ema_tensors:
                self.ema.load(ema_tensors, self.step)
        self.train_step = TrainStep(self.model, self.optimizer, grad_clip=c.grad_clip, module=self._train_module(),
                                    amp=c.amp == "bf16", compile=c.compile, ema=self.ema,
                                    on_fallback=self._compile_fell_back)
        self.global_batch = c.global_batch * self.dist.world
        self.eval_images = self.data.test[: c.eval_images]
        last = self.history["test"][-1] if self.history["test"] else None
        self.last_test = Measurement(value=last[1], step=int(last[0])) if last else None
        self.last_checkpoint_step = self.step if resume is not None else -1
        self._calibrated_step: int | None = None
        self._previewed = False
        if self.dist.main:
            self.folder.write_config(c.to_json())
        self.meter = ProgressMeter(self.device, self.progress_interval_s)
        self.run_t0 = time.perf_counter()
        self._last_row_t = 0.0

    def _check_memory(self) -> None:
        """Refuse a batch whose training step cannot fit, before anything is loaded: running out
        of memory mid-step gets the process killed (in the explorer: the whole window)."""
        c = self.config
        need = limits.training_bytes(c.flow_config(), c.size, c.size, c.batch_size)
        free = limits.available_memory(self.device)
        if free is not None and need > free:
            raise TrainingError(
                f"--batch-size {c.batch_size} at {c.size}×{c.size} needs about {limits.gib(need)} of "
                f"{self.device} memory for one training step, more than the {limits.gib(free)} free: lower "
                f"the batch size (--accumulate N keeps the effective batch N times larger)")

    def _restore(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Load model, optimizer, counters and RNG from a checkpoint; returns its EMA tensors."""
        try:
            self.model.load_state_dict(ckpt.split(tensors, "model"))
            self.optimizer.load_state_dict(ckpt.unflatten_optimizer(tensors, info["optimizer"]))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise TrainingError(f"the checkpoint in {self.out} does not fit this model: {exc}") from None
        self.step = int(info["step"])
        self.history = info.get("history", self.history)
        self.elapsed_before = float(info.get("elapsed_s", 0.0))
        self.images_seen = int(info.get("images_seen", 0))
        rng_state.restore(tensors, info.get("rng", {}))
        return ckpt.split(tensors, "ema")

    def _warm_start(self, path: str) -> None:
        """The first scales from a trained model (``--init-from``); the same on every rank."""
        try:
            source = load_model_file(path, device="cpu")
            done = warm_start(self.model, source)
        except (NVPError, OSError) as exc:
            raise TrainingError(f"--init-from {path}: {exc}") from None
        self.notes.append(done.describe(path))

    def _initialise_actnorm(self) -> None:
        """ActNorm's data-dependent init from step 0's first shard, identical on every rank."""
        c = self.config
        shards = self.dist.world * c.accumulate
        x0 = dequantize_batch(self.data.batch(0, c.batch_size, c.seed, 0, shards, c.flip), 0, c.seed, 0, shards)
        with torch.no_grad():
            self.model(x0.to(self.device))

    def _train_module(self) -> nn.Module:
        if self.dist.world <= 1:
            return self.model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _announce(self, resumed: bool) -> None:
        c, data = self.config, self.data
        n_params = sum(p.numel() for p in self.model.parameters())
        world = f" ×{self.dist.world}" if self.dist.world > 1 else ""
        message = (f"{'resuming' if resumed else 'training'} on {data.name}: {len(data)} train / "
                   f"{len(data.test)} test images at {c.size}×{c.size}, {n_params:,} parameters, "
                   f"device {self.device}{world}")
        for note in self.notes:
            log.info("%s: %s", self.out, note)
        self._emit(TrainEvent(
            "start", step=self.step, total_steps=c.steps, message="\n".join([message, *self.notes]),
            info={"data": data.info, "parameters": n_params, "device": str(self.device), "world": self.dist.world,
                  "load_s": self.load_s, "notes": list(self.notes)},
        ))

    # ---------------------------------------------------------------- training
    def _train(self) -> bool:
        """Steps until ``config.steps``; True if stopped early."""
        self.model.train()
        while self.step < self.config.steps:
            self._wait_while_paused()
            if self._should_stop():
                self._report_progress(final=True)  # the steps since the last event, so nothing shown is stale
                return True
            self._step()
            final = self.step >= self.config.steps
            self._report_progress(final)
            self._periodic_work(final)
        return False

    def _step(self) -> None:
        c, step = self.config, self.step
        self.lr = c.lr_at(step)
        loss = self.train_step(self._micro_batches(step), c.accumulate, self.lr, step)
        self.meter.add(loss)
        self.step = step + 1
        self.images_seen += self.global_batch

    def _micro_batches(self, step: int) -> Iterator[torch.Tensor]:
        """This rank's micro-batches of global batch ``step``: shard = (rank, micro-batch), so DDP
        ranks and accumulation micro-batches are interchangeable."""
        c = self.config
        shards = self.dist.world * c.accumulate
        for micro in range(c.accumulate):
            shard = self.dist.rank * c.accumulate + micro
            x8 = self.data.batch(step, c.batch_size, c.seed, shard, shards, c.flip)
            yield dequantize_batch(x8, step, c.seed, shard, shards).to(self.device, non_blocking=True)

    def _wait_while_paused(self) -> None:
        if self._running.is_set():
            return
        self._emit(TrainEvent("progress", step=self.step, total_steps=self.config.steps, message="paused",
                              test_bpd=self._last_test_value()))
        while not self._running.wait(0.1):
            pass
        self.meter.restart_clock()

    def _should_stop(self) -> bool:
        """The stop flag, agreed by all ranks (any rank's request stops every rank at the same step)."""
        return self.dist.any(self._stop.is_set(), self.device)

    def _report_progress(self, final: bool) -> None:
        """A progress event (throttled to ``progress_interval_s``) and a training row in
        metrics.jsonl (throttled to ``metrics_interval_s``); both at the first and last step."""
        if self.meter.due(self.step, final):
            self._check_finite()
            c, mean_loss = self.config, self.meter.take()
            rate = self.meter.rate
            self.history["train"].append([self.step, mean_loss])
            self._emit(TrainEvent(
                "progress", step=self.step, total_steps=c.steps, loss=mean_loss, bpd=mean_loss,
                test_bpd=self._last_test_value(), lr=self.lr, elapsed_s=self._elapsed(),
                images_per_s=(rate * self.global_batch) if rate else None,
                eta_s=((c.steps - self.step) / rate) if rate else None,
            ))
        now = time.perf_counter()
        if self.meter.rows_pending and (final or self.step == 1 or now - self._last_row_t >= self.metrics_interval_s):
            self._check_finite()
            self._last_row_t = now
            rate = self.meter.rate
            self._append_metrics({"step": self.step, "train_bpd": self.meter.take_row(), "lr": self.lr,
                                  "images_per_s": (rate * self.global_batch) if rate else None,
                                  "elapsed_s": round(self._elapsed(), 1)})

    def _periodic_work(self, final: bool) -> None:
        """Evaluation, sample grid and checkpoint when their interval comes round."""
        c, step, slow = self.config, self.step, False
        if self.dist.main and (step % c.eval_every == 0 or final):
            self._evaluate()
            slow = True
        if self.dist.main and self._samples_due(final):
            self._sample()
            slow = True
        if step % c.checkpoint_every == 0 and not final:
            self._checkpoint()
            slow = True
        if slow:  # do not count the slow work as training speed
            self.meter.restart_clock()
            self.model.train()

    def _samples_due(self, final: bool) -> bool:
        """Every ``sample_every`` steps, at the end, and once early — at step 10 or after 30 s — so
        the first preview comes within a minute, not at step 1000."""
        if self.step % self.config.sample_every == 0 or final:
            return True
        return not self._previewed and (self.step >= self.first_preview_step
                                        or time.perf_counter() - self.run_t0 >= self.first_preview_s)

    # ---------------------------------------------------------------- the named steps
    def _scoring_model(self) -> RealNVP:
        """The weights that are scored, sampled and saved: the EMA's (with batch-norm statistics
        re-estimated for them, once per step) or the live model's."""
        if self.ema is None:
            return self.model
        if self._calibrated_step != self.step:
            c = self.config
            recalibrate(self.ema.module, calibration_batches(self.data, c.batch_size, c.seed, self.device))
            self._calibrated_step = self.step
        return self.ema.module

    def _evaluate(self) -> float:
        self._check_finite()
        bpd = evaluate_bits_per_dim(self._scoring_model(), self.eval_images, seed=self.config.seed)
        self.last_test = Measurement(bpd, self.step)
        self.history["test"].append([self.step, bpd])
        self._emit(TrainEvent("eval", step=self.step, total_steps=self.config.steps, test_bpd=bpd,
                              elapsed_s=self._elapsed(), message=f"test bits/dim {bpd:.4f}"))
        self._append_metrics({"step": self.step, "test_bpd": bpd, "elapsed_s": round(self._elapsed(), 1)})
        return bpd

    def _sample(self) -> None:
        c = self.config
        imgs = to_numpy_image(self._scoring_model().sample(c.n_samples, c.size, c.size, c.sample_temperature,
                                                           generator=derive_seed(c.seed, "samples") % 2**62))
        path = self.folder.sample_grid(self.step)
        save_image(grid(imgs, cols=int(math.ceil(math.sqrt(len(imgs))))), path)
        self._previewed = True
        self._emit(TrainEvent("samples", step=self.step, total_steps=c.steps, samples=imgs, path=str(path)))

    def _checkpoint(self) -> None:
        self._check_finite()
        if self.dist.main:
            tensors, info = training_state(self.model, self.optimizer, self.ema)
            info.update(step=self.step, config=self.config.to_dict(), history=self.history,
                        elapsed_s=self._elapsed(), images_seen=self.images_seen)
            ckpt.save_checkpoint(self.checkpoint_path, tensors, info)
            self._emit(TrainEvent("checkpoint", step=self.step, total_steps=self.config.steps,
                                  path=str(self.checkpoint_path)))
        self.last_checkpoint_step = self.step

    def _finish(self, stopped: bool) -> dict[str, Any]:
        """Score the weights being saved (a stop between evaluations must not save an old
        score), checkpoint them, and write the model with its card."""
        if self.dist.main and (self.last_test is None or self.last_test.step != self.step):
            self._evaluate()
        if self.step != self.last_checkpoint_step:
            self._checkpoint()
        rate = self.meter.rate
        result = {"step": self.step, "test_bpd": self._last_test_value(), "elapsed_s": self._elapsed(),
                  "stopped": stopped, "images_per_s": (rate * self.global_batch) if rate else None,
                  "test_bpd_step": self.last_test.step if self.last_test else None}
        if self.dist.main:
            model_path = save(self._scoring_model(), self.folder.model, metadata=model_card(self, result))
            result["model"] = str(model_path)
            test = self._last_test_value()
            self._emit(TrainEvent(
                "stopped" if stopped else "done", step=self.step, total_steps=self.config.steps, test_bpd=test,
                elapsed_s=result["elapsed_s"], images_per_s=result["images_per_s"], path=str(model_path),
                message=(f"stopped at step {self.step}" if stopped else f"finished {self.step} steps")
                + (f", test bits/dim {test:.4f}" if test is not None else ""),
            ))
        return result

    # ---------------------------------------------------------------- small helpers
    def _emit(self, event: TrainEvent) -> None:
        if self.callback is not None and self.dist.main:
            self.callback(event)

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.run_t0

    def _last_test_value(self) -> float | None:
        return self.last_test.value if self.last_test else None

    def _check_finite(self) -> None:
        if self.meter.finite:
            return
        good = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in {self.out}"
                if self.last_checkpoint_step >= 0 else "no checkpoint had been written yet")
        raise TrainingError(f"the training loss became NaN/Inf by step {self.step}; {good}. Try a lower --lr, "
                            f"more --warmup-steps or --amp none")

    def _compile_fell_back(self, message: str) -> None:
        log.warning("%s", message)
        self._emit(TrainEvent("progress", step=self.step, total_steps=self.config.steps, message=message))

    def _append_metrics(self, row: dict[str, Any]) -> None:
        if self.dist.main:
            self.folder.append_metrics(row)


def train(config: TrainConfig, callback: Callable[[TrainEvent], None] | None = None) -> dict[str, Any]:
    """Convenience: ``Trainer(config, callback).run()``."""
    return Trainer(config, callback).run()
