"""The training loop shared by the CLI, the GUI's training tab and torchrun.

One ``Trainer`` runs one training to completion, emitting plain-Python
``TrainEvent`` objects through a callback (throttled, so a GUI signal or a tqdm bar
never becomes the bottleneck). Everything random in step ``t`` — data order,
crops, flips, dequantization noise — is derived from ``(seed, t)``, so a resumed
run continues exactly as if it had never stopped, and ``world`` DDP processes see
the same global batch as one process would.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from .config import NORMS, FlowConfig, JsonConfig
from .data import PHOTO_CROPS, TrainData, dequantize_batch, derive_seed, load_data
from .errors import ConfigError, NVPError, TrainingError
from .flow import RealNVP
from .images import grid, save_image
from .io import resolve_device, save
from .preprocess import to_numpy_image

log = logging.getLogger(__name__)

AMP_MODES = ("none", "bf16")
LR_SCHEDULES = ("constant", "cosine")
# Fields that define the model, the data and their order: fixed for a run, so a
# resumed run must keep them (everything else — steps, intervals, device — may change).
STRUCTURAL = ("data", "size", "batch_size", "accumulate", "seed", "width", "blocks", "scales", "max_width", "norm",
              "crop", "flip", "n_train_crops", "n_test_crops")
PROGRESS_INTERVAL_S = 0.2  # at most ~5 progress events per second


@dataclass
class TrainConfig(JsonConfig):
    """Everything a training run needs; JSON round-trip so it travels in checkpoints."""

    data: str = PHOTO_CROPS
    size: int = 32
    out: str = "runs/default"
    steps: int = 10000
    batch_size: int = 64
    accumulate: int = 1  # micro-batches per step (gradient accumulation); batch_size is per micro-batch
    lr: float = 1e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 100
    weight_decay: float = 5e-5
    grad_clip: float = 100.0
    ema_decay: float = 0.0
    eval_every: int = 500
    eval_images: int = 512
    sample_every: int = 1000
    n_samples: int = 64
    sample_temperature: float = 0.7
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    compile: bool = False
    width: int = 32
    blocks: int = 4
    scales: int = 0  # 0: down to a 4×4 last scale (32 → 4 levels, 64 → 5)
    max_width: int = 256
    norm: str = "batch"
    num_workers: int = 0
    crop: str = "center"
    flip: bool = True
    n_train_crops: int = 50000
    n_test_crops: int = 2000
    resume: bool = False
    command: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ConfigError(f"TrainConfig.{name} {what}, got {getattr(self, name)!r}")

        for name in ("size", "steps", "batch_size", "accumulate", "width", "max_width", "eval_every", "sample_every",
                     "checkpoint_every", "eval_images", "n_samples", "n_train_crops", "n_test_crops"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, "must be a positive integer")
        for name in ("warmup_steps", "blocks", "scales", "num_workers", "seed"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, "must be an integer ≥ 0")
        for name in ("lr", "grad_clip", "sample_temperature"):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and v > 0, name, "must be a positive number")
        need(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0, "weight_decay", "must be ≥ 0")
        need(isinstance(self.ema_decay, (int, float)) and 0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        need(self.amp in AMP_MODES, "amp", f"must be one of {AMP_MODES}")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"must be one of {LR_SCHEDULES}")
        need(self.norm in NORMS, "norm", f"must be one of {NORMS}")
        need(self.crop in ("center", "random"), "crop", "must be 'center' or 'random'")
        need(isinstance(self.data, str) and bool(self.data), "data", "must be a folder or 'photo-crops'")
        need(isinstance(self.out, str) and bool(self.out), "out", "must be a folder path")
        self.flow_config()  # size vs scales, widths: FlowConfig names the field

    def flow_config(self) -> FlowConfig:
        scales = self.scales or FlowConfig.default_scales(self.size)
        return FlowConfig(channels=3, scales=scales, width=self.width, blocks=self.blocks,
                          max_width=self.max_width, image_size=self.size, norm=self.norm)


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


def load_train_config(out: str | os.PathLike) -> TrainConfig:
    """The TrainConfig stored in ``out``'s checkpoint (what a resume will use)."""
    _, info = ckpt.load_checkpoint(Path(out) / ckpt.CHECKPOINT_NAME)
    return TrainConfig.from_dict(info["config"])


def scale_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(scale/magnitude parameters, the rest).

    The paper puts L2 (5e-5) on "the weight scale parameters": here the couplings'
    tanh bounds (``bound.scale``), the normalisations' log-scales and the weight-norm
    magnitudes ``g`` of every convolution.
    """
    scale, rest = [], []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith("bound.scale") or leaf in ("log_gamma", "log_scale") or name.endswith("weight.original0"):
            scale.append(p)
        else:
            rest.append(p)
    return scale, rest


def hardware_description(device: torch.device, world: int = 1) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
        name = f"CPU {name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    return f"{world}× {name}" if world > 1 else name


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_pref: str) -> _Dist:
    """Join a torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if dist.is_initialized():
        return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank=rank, world=world, local_rank=local, initialized_here=True)


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Runs one training (``run()`` blocks); control it from another thread with
    ``request_stop()``, ``pause()`` and ``resume()``."""

    def __init__(self, config: TrainConfig, callback: Callable[[TrainEvent], None] | None = None) -> None:
        config.validate()
        self.config = config
        self.callback = callback
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.history: dict[str, list[list[float]]] = {"train": [], "test": []}
        self.model: RealNVP | None = None
        self.data: TrainData | None = None
        self.step = 0
        self.progress_interval_s = PROGRESS_INTERVAL_S  # tests set 0 to see every step's loss

    # ---------------------------------------------------------------- control (thread-safe)
    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return from run()."""
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

    # ---------------------------------------------------------------- helpers
    def _emit(self, event: TrainEvent) -> None:
        if self.callback is not None and self.dist.main:
            self.callback(event)

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / ckpt.CHECKPOINT_NAME

    def _lr_at(self, step: int) -> float:
        c = self.config
        lr = c.lr
        if c.lr_schedule == "cosine":
            progress = min(1.0, step / max(1, c.steps))
            lr = c.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))
        if c.warmup_steps and step < c.warmup_steps:
            lr = lr * (step + 1) / c.warmup_steps
        return lr

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """Train to ``config.steps`` (or until stopped). Returns the final metrics.

        Raises DataError/ConfigError/TrainingError before training for bad input, and
        TrainingError when the loss becomes non-finite (the last good checkpoint stays).
        """
        self.dist = _Dist()
        try:
            self.dist = _setup_distributed(self.config.device)
            return self._run()
        except NVPError as exc:
            self._emit(TrainEvent("error", step=self.step, total_steps=self.config.steps, message=str(exc)))
            raise
        except Exception as exc:
            self._emit(TrainEvent("error", step=self.step, total_steps=self.config.steps,
                                  message=f"{exc.__class__.__name__}: {exc}"))
            raise
        finally:
            if self.dist.initialized_here:
                import torch.distributed as dist

                dist.destroy_process_group()

    def _device(self) -> torch.device:
        pref = self.config.device
        try:
            if self.dist.world > 1 and torch.cuda.is_available() and pref in ("auto", "cuda"):
                return torch.device("cuda", self.dist.local_rank)
            return resolve_device(pref)
        except (RuntimeError, NVPError) as exc:
            raise TrainingError(f"device {pref!r}: {exc}") from None

    def _prepare_resume(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        c = self.config
        exists = self.checkpoint_path.is_file()
        if not c.resume:
            if exists:
                raise TrainingError(f"{self.out} already holds a training run (checkpoint step "
                                    f"{self._peek_step()}); pass --resume to continue it or choose another --out")
            return None
        if not exists:
            raise TrainingError(f"nothing to resume: no {ckpt.CHECKPOINT_NAME} in {self.out}")
        tensors, info = ckpt.load_checkpoint(self.checkpoint_path)
        stored = TrainConfig.from_dict(info["config"])
        diff = [f"{k}: checkpoint {getattr(stored, k)!r}, given {getattr(c, k)!r}"
                for k in STRUCTURAL if getattr(stored, k) != getattr(c, k)]
        if diff:
            raise TrainingError("cannot resume with a different model or data: " + "; ".join(diff)
                                + " (leave these options out when resuming)")
        return tensors, info

    def _peek_step(self) -> str:
        try:
            return str(ckpt.load_checkpoint(self.checkpoint_path)[1].get("step", "?"))
        except NVPError:
            return "?"

    def _run(self) -> dict[str, Any]:
        c = self.config
        dist_ = self.dist
        resume_state = self._prepare_resume()
        device = self._device()
        self.device = device
        torch.manual_seed(c.seed)
        random.seed(c.seed)
        np.random.seed(c.seed % 2**32)

        t_load = time.perf_counter()
        data = load_data(c.data, c.size, crop=c.crop, seed=c.seed, workers=c.num_workers,
                         n_train=c.n_train_crops, n_test=c.n_test_crops)
        self.data = data
        load_s = time.perf_counter() - t_load

        model = RealNVP(c.flow_config()).to(device)
        self.model = model
        scale_params, other_params = scale_parameters(model)
        opt = torch.optim.Adam(
            [{"params": scale_params, "weight_decay": c.weight_decay}, {"params": other_params, "weight_decay": 0.0}],
            lr=c.lr, betas=(0.9, 0.999), eps=1e-8,
        )
        ema: list[torch.Tensor] | None = None
        elapsed_before = 0.0
        images_seen = 0
        if resume_state is not None:
            tensors, info = resume_state
            try:
                model.load_state_dict(ckpt.split(tensors, "model"))
                opt.load_state_dict(ckpt.unflatten_optimizer(tensors, info["optimizer"]))
            except (RuntimeError, KeyError, ValueError) as exc:
                raise TrainingError(f"the checkpoint in {self.out} does not fit this model: {exc}") from None
            if c.ema_decay > 0:
                saved = ckpt.split(tensors, "ema")
                names = [n for n, _ in model.named_parameters()]
                if all(n in saved for n in names):
                    ema = [saved[n].to(device) for n in names]
            self.step = int(info["step"])
            self.history = info.get("history", self.history)
            elapsed_before = float(info.get("elapsed_s", 0.0))
            images_seen = int(info.get("images_seen", 0))
            self._restore_rng(tensors, info.get("rng", {}))
            self._truncate_metrics(self.step)
        elif c.norm == "actnorm":
            # Data-dependent init from step 0's first shard, identical on every rank.
            with torch.no_grad():
                shards = dist_.world * c.accumulate
                x0 = dequantize_batch(data.batch(0, c.batch_size, c.seed, 0, shards, c.flip), 0, c.seed, 0, shards)
                model(x0.to(device))
        if c.ema_decay > 0 and ema is None:  # after ActNorm's data-dependent init
            ema = [p.detach().clone() for p in model.parameters()]
        for g in opt.param_groups:
            g["lr"] = self._lr_at(self.step)

        train_module: nn.Module = model
        if dist_.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            train_module = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        forward = train_module
        if c.compile:
            try:
                forward = torch.compile(train_module)
            except Exception as exc:  # no compiler on this machine: train uncompiled
                log.warning("torch.compile unavailable (%s); training without it", exc)

        if dist_.main:
            from .io import atomic_write_bytes

            atomic_write_bytes(self.out / "train_config.json", c.to_json().encode())
        n_params = sum(p.numel() for p in model.parameters())
        self._emit(TrainEvent(
            "start", step=self.step, total_steps=c.steps,
            message=(f"{'resuming' if resume_state else 'training'} on {data.name}: {len(data)} train / "
                     f"{len(data.test)} test images at {c.size}×{c.size}, {n_params:,} parameters, "
                     f"device {device}{f' ×{dist_.world}' if dist_.world > 1 else ''}"),
            info={"data": data.info, "parameters": n_params, "device": str(device), "world": dist_.world,
                  "load_s": load_s},
        ))

        d = 3 * c.size * c.size
        global_batch = c.batch_size * c.accumulate * dist_.world
        bpd_const = d * math.log(256.0)
        bpd_div = d * math.log(2.0)
        amp = c.amp == "bf16"
        params = list(model.parameters())
        eval_x = data.test[: c.eval_images]
        last_test: float | None = self.history["test"][-1][1] if self.history["test"] else None

        window_loss = torch.zeros((), device=device)
        window_n = 0
        window_t0 = time.perf_counter()
        window_steps = 0
        last_emit = 0.0
        rate = None  # smoothed steps/s
        run_t0 = time.perf_counter()
        stopped = False
        last_ckpt_step = self.step if resume_state is not None else -1
        nonfinite = torch.zeros((), dtype=torch.bool, device=device)

        def check_finite(at_step: int) -> None:
            if bool(nonfinite):
                good = f"the last good checkpoint (step {last_ckpt_step}) is kept in {self.out}" \
                    if last_ckpt_step >= 0 else "no checkpoint had been written yet"
                raise TrainingError(
                    f"the training loss became NaN/Inf by step {at_step}; {good}. Try a lower --lr, "
                    f"more --warmup-steps or --amp none")

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - run_t0

        def save_ckpt() -> None:
            nonlocal last_ckpt_step
            check_finite(self.step)
            if dist_.main:
                self._save_checkpoint(model, opt, ema, elapsed(), images_seen)
                self._emit(TrainEvent("checkpoint", step=self.step, total_steps=c.steps,
                                      path=str(self.checkpoint_path)))
            last_ckpt_step = self.step

        def evaluate() -> float:
            nonlocal last_test
            check_finite(self.step)
            with self._ema_weights(model, ema):
                last_test = evaluate_bits_per_dim(model, eval_x, seed=c.seed)
            self.history["test"].append([self.step, last_test])
            self._emit(TrainEvent("eval", step=self.step, total_steps=c.steps, test_bpd=last_test,
                                  elapsed_s=elapsed(), message=f"test bits/dim {last_test:.4f}"))
            self._append_metrics({"step": self.step, "test_bpd": last_test, "elapsed_s": round(elapsed(), 1)})
            return last_test

        def make_samples() -> None:
            with self._ema_weights(model, ema):
                imgs = to_numpy_image(model.sample(c.n_samples, c.size, c.size, c.sample_temperature,
                                                   generator=derive_seed(c.seed, "samples") % 2**62))
            path = self.out / "samples" / f"step_{self.step:07d}.png"
            save_image(grid(imgs, cols=int(math.ceil(math.sqrt(len(imgs))))), path)
            self._emit(TrainEvent("samples", step=self.step, total_steps=c.steps, samples=imgs, path=str(path)))

        if resume_state is None and dist_.main and not self._stop.is_set():
            evaluate()  # the starting point of the test curve

        model.train()
        while self.step < c.steps:
            if not self._running.is_set():
                self._emit(TrainEvent("progress", step=self.step, total_steps=c.steps, message="paused",
                                      test_bpd=last_test))
                while not self._running.wait(0.1):
                    pass
                window_t0 = time.perf_counter()
                window_steps = 0
            if self._should_stop():
                stopped = True
                break
            step = self.step
            lr = self._lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = torch.zeros((), device=device)
            for micro in range(c.accumulate):
                # Shard = (rank, micro-batch) of the step's global batch: DDP ranks and
                # accumulation micro-batches are interchangeable.
                shard, shards = dist_.rank * c.accumulate + micro, dist_.world * c.accumulate
                x8 = data.batch(step, c.batch_size, c.seed, shard, shards, c.flip)
                x = dequantize_batch(x8, step, c.seed, shard, shards).to(device, non_blocking=True)
                sync = micro == c.accumulate - 1 or dist_.world == 1
                with (contextlib.nullcontext() if sync else train_module.no_sync()):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                        try:
                            zs, ldj = forward(x)
                        except Exception as exc:
                            if forward is train_module:
                                raise
                            # torch.compile fails on first call where no compiler works:
                            # say so and train uncompiled (tracing has no side effects).
                            forward = train_module
                            self._emit(TrainEvent("progress", step=step, total_steps=c.steps,
                                                  message=f"torch.compile failed ({exc.__class__.__name__}); "
                                                          "training without it"))
                            zs, ldj = forward(x)
                    log_p = RealNVP.prior_log_prob([z.float() for z in zs]) + ldj.float()
                    micro_loss = ((bpd_const - log_p) / bpd_div).mean() / c.accumulate
                    micro_loss.backward()
                loss = loss + micro_loss.detach()
            torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    # Warm-up of the decay (as in TF's ExponentialMovingAverage with num_updates):
                    # a fixed 0.999 would keep 5% of the random init after 3000 steps.
                    decay = min(c.ema_decay, (1.0 + self.step) / (10.0 + self.step))
                    torch._foreach_lerp_(ema, [p.detach() for p in params], 1.0 - decay)
            lossd = loss.detach()
            nonfinite |= ~torch.isfinite(lossd)
            window_loss += lossd
            window_n += 1
            window_steps += 1
            self.step = step + 1
            images_seen += global_batch

            now = time.perf_counter()
            final = self.step >= c.steps
            if now - last_emit >= self.progress_interval_s or final or self.step == 1:
                check_finite(self.step)
                mean_loss = float(window_loss) / max(1, window_n)
                dt = now - window_t0
                if dt > 0 and window_steps:
                    inst = window_steps / dt
                    rate = inst if rate is None else 0.7 * rate + 0.3 * inst
                self.history["train"].append([self.step, mean_loss])
                self._emit(TrainEvent(
                    "progress", step=self.step, total_steps=c.steps, loss=mean_loss, bpd=mean_loss,
                    test_bpd=last_test, lr=lr, elapsed_s=elapsed(),
                    images_per_s=(rate * global_batch) if rate else None,
                    eta_s=((c.steps - self.step) / rate) if rate else None,
                ))
                window_loss.zero_()
                window_n = 0
                window_t0 = now
                window_steps = 0
                last_emit = now
            did_slow = False
            if dist_.main and (self.step % c.eval_every == 0 or final):
                evaluate()
                did_slow = True
            if dist_.main and (self.step % c.sample_every == 0 or final):
                make_samples()
                did_slow = True
            if self.step % c.checkpoint_every == 0 and not final:
                save_ckpt()
                did_slow = True
            if did_slow:
                window_t0 = time.perf_counter()
                window_steps = 0
                model.train()

        # ---- finish: checkpoint + model file (also when stopped, so nothing is lost)
        if self.step != last_ckpt_step:
            save_ckpt()
        result = {"step": self.step, "test_bpd": last_test, "elapsed_s": elapsed(), "stopped": stopped,
                  "images_per_s": (rate * global_batch) if rate else None}
        if dist_.main:
            model_path = self._save_model(model, ema, result, images_seen)
            result["model"] = str(model_path)
            self._emit(TrainEvent(
                "stopped" if stopped else "done", step=self.step, total_steps=c.steps, test_bpd=last_test,
                elapsed_s=result["elapsed_s"], images_per_s=result["images_per_s"], path=str(model_path),
                message=(f"stopped at step {self.step}" if stopped else f"finished {self.step} steps")
                + (f", test bits/dim {last_test:.4f}" if last_test is not None else ""),
            ))
        return result

    def _should_stop(self) -> bool:
        """The stop flag, agreed by all ranks (any rank's request stops every rank at the same step)."""
        flag = self._stop.is_set()
        if self.dist.world > 1:
            import torch.distributed as dist

            t = torch.tensor([1.0 if flag else 0.0], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    # ---------------------------------------------------------------- state
    def _ema_weights(self, model: nn.Module, ema: list[torch.Tensor] | None):
        """EMA weights with batch-norm statistics re-estimated for them (see recalibrate.py)."""
        from .recalibrate import swapped_weights

        return swapped_weights(model, ema, self._calibration_batches(model) if ema is not None else None)

    def _calibration_batches(self, model: nn.Module, n_batches: int = 16):
        """Fixed training batches (same every call, so successive evaluations compare)."""
        if self.data is None:
            return None
        c = self.config
        device = next(model.parameters()).device
        for i in range(n_batches):
            x = self.data.batch(i, c.batch_size, seed=derive_seed(c.seed, "calibration") % 2**31, flip=False)
            yield dequantize_batch(x, i, seed=c.seed + 7919).to(device)

    def _rng_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"rng.torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        np_state = np.random.get_state()
        tensors["rng.numpy_keys"] = torch.from_numpy(np_state[1].astype(np.int64))
        info = {"python": _jsonable(random.getstate()), "numpy": [np_state[0], *map(_plain, np_state[2:])]}
        return tensors, info

    def _restore_rng(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        if "rng.torch_cpu" in tensors:
            torch.set_rng_state(tensors["rng.torch_cpu"])
        if torch.cuda.is_available():
            states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)
        if "python" in info:
            random.setstate(_tuplify(info["python"]))
        if "numpy" in info and "rng.numpy_keys" in tensors:
            name, pos, has_gauss, cached = info["numpy"]
            np.random.set_state((name, tensors["rng.numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))

    def _save_checkpoint(self, model: nn.Module, opt: torch.optim.Optimizer, ema: list[torch.Tensor] | None,
                         elapsed_s: float, images_seen: int) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        if ema is not None:
            tensors.update({f"ema.{n}": e for (n, _), e in zip(model.named_parameters(), ema)})
        opt_tensors, opt_rest = ckpt.flatten_optimizer(opt.state_dict())
        tensors.update(opt_tensors)
        rng_tensors, rng_info = self._rng_state()
        tensors.update(rng_tensors)
        info = {
            "step": self.step, "config": self.config.to_dict(), "flow_config": model.config.to_dict(),
            "optimizer": opt_rest, "rng": rng_info, "history": self.history, "elapsed_s": elapsed_s,
            "images_seen": images_seen, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        ckpt.save_checkpoint(self.checkpoint_path, tensors, info)

    def _save_model(self, model: RealNVP, ema: list[torch.Tensor] | None, result: dict[str, Any],
                    images_seen: int) -> Path:
        c = self.config
        train_bpd = self.history["train"][-1][1] if self.history["train"] else None
        metadata = {
            "step": self.step, "data": c.data, "data_info": self.data.info if self.data else {},
            "size": c.size, "test_bpd": result["test_bpd"], "test_images": min(c.eval_images, len(self.data.test)),
            "train_bpd": train_bpd, "train_command": c.command or None, "wall_time_s": round(result["elapsed_s"], 1),
            "images_per_s": result["images_per_s"], "images_seen": images_seen,
            "hardware": hardware_description(self.device, self.dist.world), "torch": torch.__version__,
            "parameters": sum(p.numel() for p in model.parameters()), "ema": c.ema_decay > 0,
            "stopped_early": result["stopped"], "train_config": c.to_dict(), "history": self.history,
        }
        with self._ema_weights(model, ema):
            return save(model, self.out / "model", metadata=metadata)

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric rows written after the checkpoint we resume from (a killed run's tail)."""
        path = self.out / "metrics.jsonl"
        if not self.dist.main or not path.is_file():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except ValueError:
                continue
        from .io import atomic_write_bytes

        atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())

    def _append_metrics(self, row: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def evaluate_bits_per_dim(model: RealNVP, images: torch.Tensor, seed: int = 0, batch_size: int = 256) -> float:
    """Mean bits/dim over uint8 test images: eval mode, noise dequantization, fixed noise.

    Fixed noise (from ``seed``) makes successive evaluations of a run comparable.
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, "eval") % 2**62)
    total, n = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        bpd = model.bits_per_dim(x, noise=True, generator=gen)
        total += float(bpd.double().sum())
        n += len(x)
    return total / max(1, n)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return {"__tuple__": [_jsonable(v) for v in obj]}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def _tuplify(obj: Any) -> Any:
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_tuplify(v) for v in obj["__tuple__"])
    if isinstance(obj, list):
        return [_tuplify(v) for v in obj]
    return obj


def train(config: TrainConfig, callback: Callable[[TrainEvent], None] | None = None) -> dict[str, Any]:
    """Convenience: ``Trainer(config, callback).run()``."""
    return Trainer(config, callback).run()


__all__ = ["TrainConfig", "TrainEvent", "Trainer", "load_train_config", "scale_parameters", "evaluate_bits_per_dim",
           "train"]
