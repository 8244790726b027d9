"""`nvp train DATA --size 32 --out runs/x [--resume] …`: the Trainer with a tqdm bar.

Under ``torchrun --nproc_per_node=N`` the same command trains with DDP; only rank 0
prints and writes. Ctrl-C asks the trainer to stop: it finishes the step, saves a
checkpoint and the model, and ``--resume`` continues from there.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from dataclasses import fields
from typing import Any

from ..data import BUILTIN_DATASETS
from ..train import STRUCTURAL, TrainConfig, TrainEvent, Trainer, load_train_config
from . import options

# (flag, TrainConfig field, type, help). Defaults come from TrainConfig so there is one source.
OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--size", "size", int, "training image size (square; a multiple of 2^(scales-1))"),
    ("--steps", "steps", int, "optimizer steps in total (a resumed run continues up to this)"),
    ("--batch-size", "batch_size", int, "images per step (per process under torchrun)"),
    ("--accumulate", "accumulate", int, "micro-batches of --batch-size per step (gradient accumulation)"),
    ("--lr", "lr", float, "Adam learning rate"),
    ("--lr-schedule", "lr_schedule", str, "constant (the paper) or cosine decay to 2%% at --steps"),
    ("--warmup-steps", "warmup_steps", int, "linear learning-rate warm-up steps"),
    ("--weight-decay", "weight_decay", float, "L2 on scale parameters (couplings' tanh bounds, norms' "
                                              "log-scales, weight-norm magnitudes)"),
    ("--grad-clip", "grad_clip", float, "gradient-norm clipping threshold"),
    ("--ema", "ema_decay", float, "EMA decay of the weights (0 = off), e.g. 0.999"),
    ("--width", "width", int, "features of the s/t ResNets at the first scale (doubles per scale)"),
    ("--blocks", "blocks", int, "residual blocks per s/t ResNet"),
    ("--scales", "scales", int, "number of scales L (0: down to a 4×4 last scale)"),
    ("--max-width", "max_width", int, "cap on the ResNet width at coarse scales"),
    ("--norm", "norm", str, "normalisation between couplings: batch, actnorm or none"),
    ("--device", "device", str, "auto, cpu, cuda or cuda:N"),
    ("--amp", "amp", str, "none or bf16 (autocast for the training forward/backward only)"),
    ("--eval-every", "eval_every", int, "steps between test bits/dim evaluations"),
    ("--eval-images", "eval_images", int, "test images used for each evaluation"),
    ("--sample-every", "sample_every", int, "steps between sample grids (out/samples/)"),
    ("--samples", "n_samples", int, "images per sample grid"),
    ("--temperature", "sample_temperature", options.temperature, "temperature of the sample grids"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints"),
    ("--seed", "seed", options.seed, "seed of model init, data order, crops and noise"),
    ("--workers", "num_workers", int, "threads decoding the image folder or rendering shapes (0: auto)"),
    ("--crop", "crop", str, "folders: center (centre crop + resize) or random (crops of textures)"),
    ("--train-crops", "n_train_crops", int, "built-in sets: number of training crops / scenes"),
    ("--test-crops", "n_test_crops", int, "built-in sets: number of test crops / scenes"),
    ("--init-from", "init_from", str, "a trained model (folder or .safetensors) whose first scales start a new "
                                      "run, e.g. a 32×32 model for a 64×64 run; the rest starts from scratch"),
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = subparsers.add_parser(
        "train", help=f"train a Real NVP on a folder of images or a built-in set ({', '.join(BUILTIN_DATASETS)})",
        description="Train a Real NVP. DATA is a folder of images (any tree of JPEG/PNG/WebP/BMP/GIF/TIFF) "
                    "or 'photo-crops' (photos shipped with scikit-image, scikit-learn and matplotlib; "
                    "pip install -e .[data]) or 'shapes' (procedural 3D scenes of one object on a floor "
                    "before a wall, generated on the fly). Writes checkpoints, sample grids, metrics.jsonl and the "
                    "final model (OUT/model) to --out. Under torchrun it trains with DDP.",
    )
    p.add_argument("data", metavar="DATA", help=f"image folder or one of {', '.join(BUILTIN_DATASETS)}")
    p.add_argument("--out", required=True, help="run folder (checkpoint, samples, model)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    for flag, name, typ, help_ in OPTIONS:
        p.add_argument(flag, dest=name, type=typ, default=None, help=f"{help_} (default: {getattr(defaults, name)})")
    p.add_argument("--compile", dest="compile", action="store_true", default=None, help="use torch.compile")
    p.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no horizontal flips")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line per evaluation")
    p.set_defaults(func=run)
    return p


def build_config(args: argparse.Namespace, argv: list[str] | None = None) -> TrainConfig:
    """TrainConfig from explicit options; on --resume the checkpoint's config fills the rest."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None and f.name not in ("out", "resume", "data", "command")}
    command = "nvp train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:]))
    if args.resume:
        try:
            base = load_train_config(args.out).to_dict()
        except Exception:
            base = None
        if base is not None:
            base.update(given)
            base.update(out=args.out, resume=True)
            if args.data != base["data"]:
                base["data"] = args.data  # the Trainer reports the mismatch clearly
            # keep the original command on record; note the resume
            base["command"] = base.get("command") or command
            return TrainConfig.from_dict(base)
    return TrainConfig(data=args.data, out=args.out, resume=bool(args.resume), command=command, **given)


class _Progress:
    """Turns TrainEvents into a tqdm bar and a few printed lines."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def __call__(self, ev: TrainEvent) -> None:
        from tqdm import tqdm

        if ev.kind == "start":
            print(ev.message, file=sys.stderr)
            if not self.quiet:
                self.bar = tqdm(total=ev.total_steps, initial=ev.step, unit="step", dynamic_ncols=True,
                                file=sys.stderr)
        elif ev.kind == "progress" and self.bar is not None:
            self.bar.update(ev.step - self.bar.n)
            post = {}
            if ev.loss is not None:
                post["bpd"] = f"{ev.loss:.3f}"
            if ev.test_bpd is not None:
                post["test"] = f"{ev.test_bpd:.3f}"
            if ev.images_per_s:
                post["img/s"] = f"{ev.images_per_s:.0f}"
            if ev.message:
                post["state"] = ev.message
            self.bar.set_postfix(post, refresh=False)
        elif ev.kind == "eval":
            self._write(f"step {ev.step}: test bits/dim {ev.test_bpd:.4f}")
        elif ev.kind in ("done", "stopped"):
            self.close()
            print(f"{ev.message}; model saved to {os.path.dirname(ev.path)}", file=sys.stderr)
        elif ev.kind == "error":
            self.close()

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.threads:
        import torch

        torch.set_num_threads(max(1, args.threads))
    rank = int(os.environ.get("RANK", "0"))
    progress = _Progress(args.quiet) if rank == 0 else None
    trainer = Trainer(config, progress)

    def on_sigint(signum, frame):  # first Ctrl-C: stop cleanly; second: abort
        if trainer.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to abort)…", file=sys.stderr)
        trainer.request_stop()

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        trainer.run()
    finally:
        signal.signal(signal.SIGINT, old)
        if progress is not None:
            progress.close()
    return 0


__all__ = ["register", "run", "build_config", "STRUCTURAL"]
