"""Training throughput: images/s of a full step (forward + backward + Adam), and GFLOP/s.

The step is the Trainer's own (``nvp_core.training.TrainStep`` with ``make_optimizer``):
dequantization of a uint8 batch, logit preprocessing, the flow, the Gaussian prior,
bits/dim loss, backward, grad-norm clipping, Adam with L2 on the scale parameters. Configurations: the paper's
32×32 model (4 residual blocks × 32 features), its CIFAR-10 model (8 × 64, one
downscale), and the shipped default; eager fp32, channels-last, bf16 autocast,
a fused Adam and torch.compile (in a child process with a time limit: inductor
can take many minutes on a small CPU, and a benchmark must not hang).

    python -m benchmarks.train_throughput [--device cuda] [--quick] [--compile-timeout 180] [--json out.json]
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import torch

import nvp_core as nc

from .common import (
    Report, Table, arg_parser, at_size, config_label, count_parameters, default_config, describe_load, emit,
    flops, measure, quick_config, run_python, setup, last_json_line,
)
from .matmul import matmul_gflops


@dataclass(frozen=True)
class Case:
    label: str
    cfg: nc.FlowConfig
    size: int
    batch: int
    variant: str = "eager"  # eager | 1 thread | channels_last | bf16 | fused_adam | compile


def make_step(model: nc.RealNVP, x8: torch.Tensor, variant: str, compile: bool = False, on_fallback=None):
    """One training step exactly as the Trainer runs it; returns a closure.

    ``nvp_core.training.TrainStep`` with the Trainer's optimizer (Adam, L2 on the
    scale parameters, ``make_optimizer``), its default learning rate, warm-up and
    gradient clipping, fed the way the Trainer feeds it: a uint8 batch dequantized
    with the step's seeded noise (``dequantize_batch``) and moved to the device.
    The images are random (arithmetic does not depend on the content).
    """
    from nvp_core.data import dequantize_batch
    from nvp_core.training import TrainConfig, TrainStep, make_optimizer

    cfg = TrainConfig()
    device = next(model.parameters()).device
    fused = True if variant == "fused_adam" and device.type in ("cpu", "cuda") else None
    step = TrainStep(model, make_optimizer(model, cfg, fused=fused), grad_clip=cfg.grad_clip,
                     amp=variant == "bf16", compile=compile, on_fallback=on_fallback)
    memory = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    count = [0]

    def run() -> None:
        t = count[0]
        count[0] += 1
        x = dequantize_batch(x8, t, cfg.seed).to(device, non_blocking=True).contiguous(memory_format=memory)
        step([x], 1, cfg.lr_at(t), t)

    return run


def build(case: Case, device: torch.device) -> tuple[nc.RealNVP, torch.Tensor]:
    """The model (train mode) and a uint8 batch on the CPU, as the Trainer's data source gives it."""
    torch.manual_seed(0)
    model = nc.RealNVP(case.cfg).to(device).train()
    x8 = torch.randint(0, 256, (case.batch, case.cfg.channels, case.size, case.size), dtype=torch.uint8,
                       generator=torch.Generator().manual_seed(1))
    if case.variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model, x8


def flops_per_image(cfg: nc.FlowConfig, size: int) -> int:
    """Forward + backward FLOPs of one image, counted on the meta device (no arithmetic)."""
    model = nc.RealNVP(cfg).to("meta").train()
    x = torch.empty(2, cfg.channels, size, size, device="meta")
    return flops(lambda: model.log_prob(x).sum().backward()) // 2


def time_case(case: Case, device: torch.device, repeats: int, budget_s: float) -> dict:
    threads = torch.get_num_threads()
    if case.variant == "1 thread":
        torch.set_num_threads(1)
    try:
        model, x8 = build(case, device)
        step = make_step(model, x8, case.variant)
        t = measure(step, device, repeats=repeats, warmup=1, budget_s=budget_s)
    finally:
        torch.set_num_threads(threads)
    return {"median_s": t.median, "p95_s": t.p95, "cpu_s": t.cpu_median, "steps": t.n}


_COMPILE_CHILD = r"""
import json, sys, time, torch
sys.argv = ["x"]
import nvp_core as nc
from benchmarks.train_throughput import Case, build, make_step
from benchmarks.common import measure
torch.set_num_threads({threads})
case = Case("c", nc.FlowConfig.from_json({cfg!r}), {size}, {batch}, "compile")
device = torch.device({device!r})
model, x8 = build(case, device)
t0 = time.perf_counter()
def fail(message):  # time the compiled step or nothing: no silent eager fallback
    raise RuntimeError(message)
step = make_step(model, x8, "eager", compile=True, on_fallback=fail)
step()
if device.type == "cuda":
    torch.cuda.synchronize()
compile_s = time.perf_counter() - t0
t = measure(step, device, repeats={repeats}, warmup=1, budget_s={budget})
print(json.dumps({{"median_s": t.median, "p95_s": t.p95, "cpu_s": t.cpu_median, "steps": t.n,
                  "compile_s": compile_s}}))
"""


def time_compiled(case: Case, device: torch.device, repeats: int, budget_s: float, timeout_s: float) -> dict:
    code = _COMPILE_CHILD.format(threads=torch.get_num_threads(), cfg=case.cfg.to_json(), size=case.size,
                                 batch=case.batch, device=str(device), repeats=repeats, budget=budget_s)
    out, err, rc = run_python(code, timeout_s)
    if rc is None:
        return {"error": f"did not finish in {timeout_s:.0f} s"}
    result = last_json_line(out)
    if rc != 0 or result is None:
        last = (err.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {last[:160]}"}
    return result


def cases(quick: bool, device: torch.device, model: str | None = None) -> list[Case]:
    multi = device.type == "cpu" and torch.get_num_threads() > 1
    if quick:
        cfg = quick_config(16)
        return [Case("tiny", cfg, 16, 2, v) for v in ("eager", "channels_last", "bf16", "fused_adam", "compile")]
    default, source = default_config(model)
    short = "default" if model is None else "given model"
    # Widths double per scale (capped at 256, the old FlowConfig default), as in the paper's code.
    paper32 = nc.FlowConfig(width=32, blocks=4, max_width=256, image_size=32)
    cifar = nc.FlowConfig(width=64, blocks=8, scales=2, max_width=256, image_size=32)
    big = device.type == "cuda"
    out = []
    for size in (32, 64):
        d = at_size(default, size)
        b = (64 if size == 32 else 16) * (4 if big else 1)
        out.append(Case(short, d, size, b))
        if size == 32:
            out += [Case(short, d, size, b, v)
                    for v in (["1 thread"] if multi else []) + ["channels_last", "bf16", "fused_adam", "compile"]]
        out.append(Case("paper 32×32: 4 blocks × 32", at_size(paper32, size), size, (16 if size == 32 else 4) * (4 if big else 1)))
        if size == 32:
            out.append(Case("paper 32×32: 4 blocks × 32", paper32, size, 16 * (4 if big else 1), "bf16"))
        out.append(Case("paper CIFAR-10: 8 blocks × 64, one downscale", at_size(cifar, size, keep_scales=True), size,
                        (4 if size == 32 else 2) * (16 if big else 1)))
    return out


def matmul_limits(device: torch.device, quick: bool, thread_counts: Sequence[int]) -> dict[str, dict[str, float]]:
    """{threads: {dtype: best GFLOP/s}} of one large square matmul per thread count."""
    n = 256 if quick else (4096 if device.type == "cuda" else 2048)
    now = torch.get_num_threads()
    out = {}
    try:
        for t in thread_counts:
            torch.set_num_threads(t)
            out[str(t)] = {name: matmul_gflops(n, dt, device, 3 if quick else 8, 2.0)[1]
                           for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    finally:
        torch.set_num_threads(now)
    return out


def run(device: torch.device, quick: bool = False, compile_timeout_s: float = 180.0,
        limit_gflops: dict[str, dict[str, float]] | None = None, model: str | None = None) -> Report:
    """``limit_gflops``: matmul GFLOP/s per thread count and dtype (from benchmarks.matmul); measured if absent."""
    threads_now = torch.get_num_threads()
    needed = sorted({threads_now, 1} if device.type == "cpu" else {threads_now})
    if limit_gflops is None or not all(str(t) in limit_gflops for t in needed):
        limit_gflops = matmul_limits(device, quick, needed)
    repeats, budget = (2, 1.0) if quick else (6, 25.0)
    table = Table(f"Training step (forward + backward + clip + Adam) on {device}, {torch.get_num_threads()} threads",
                  ["model", "config", "params", "size", "batch", "variant", "images/s", "ms/step (median)",
                   "p95", "GFLOP/img", "GFLOP/s", "% of matmul"])
    data = []
    flop_cache: dict[tuple, int] = {}
    all_cases = cases(quick, device, model)
    for case in all_cases:
        key = (case.cfg.to_json(), case.size)
        if key not in flop_cache:
            flop_cache[key] = flops_per_image(case.cfg, case.size)
        fpi = flop_cache[key]
        if case.variant == "compile":
            r = time_compiled(case, device, repeats, budget, 2.0 if quick else compile_timeout_s)
        else:
            r = time_case(case, device, repeats, budget)
        params = count_parameters(nc.RealNVP(case.cfg))
        threads = 1 if case.variant == "1 thread" else threads_now
        limit = limit_gflops[str(threads)]["bfloat16" if case.variant == "bf16" else "float32"]
        variant = case.variant + (f" (compile {r['compile_s']:.0f} s)" if "compile_s" in r else "")
        if "error" in r:
            table.add(case.label, config_label(case.cfg), f"{params / 1e6:.2f}M", case.size, case.batch, variant,
                      r["error"], float("nan"), float("nan"), fpi / 1e9, float("nan"), float("nan"))
        else:
            ips = case.batch / r["median_s"]
            gfs = fpi * ips / 1e9
            table.add(case.label, config_label(case.cfg), f"{params / 1e6:.2f}M", case.size, case.batch, variant,
                      ips, 1e3 * r["median_s"], 1e3 * r["p95_s"], fpi / 1e9, gfs, 100.0 * gfs / limit)
        data.append({"label": case.label, "config": case.cfg.to_dict(), "size": case.size, "batch": case.batch,
                     "variant": case.variant, "flops_per_image": fpi, **r})
    notes = [f"default/given model's architecture: {default_config(model)[1]}" if not quick else "tiny model (--quick)",
        "images/s = batch / median step time; GFLOP/s counts convolutions and matmuls (FlopCounterMode) "
        "of forward + backward; '% of matmul' is against this machine's fastest dense matmul at the same thread "
        "count (" + "; ".join(f"{t} thread(s): {v['float32']:.0f} GFLOP/s fp32, {v['bfloat16']:.0f} bf16"
                             for t, v in sorted(limit_gflops.items())) + "; bf16 rows against bf16).",
        "Batches are small for the big models so the run stays within minutes on a small CPU; "
        "a few steps only (see 'steps' in the JSON): treat those rows as indicative.",
        "channels_last: the whole model and its input converted with memory_format=channels_last; the s/t "
        "ResNets already run channels-last on the CPU by themselves, so this row should match 'eager'. "
        "fused_adam: the Trainer's optimizer with fused=True; bf16: the Trainer's --amp bf16 (autocast around "
        "the flow). Every row times nvp_core.training.TrainStep, the step the Trainer runs.",
        "compile: torch.compile of the flow (inductor), optimizer eager, timed in a child process after "
        "its first (compiling) step; 'did not finish' means the compile exceeded the limit.",
        describe_load(),
    ]
    return Report("train_throughput", [table], notes, data={"cases": data, "limit_gflops": limit_gflops})


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--compile-timeout", type=float, default=180.0, help="seconds allowed for torch.compile")
    p.add_argument("--model", help="benchmark this model's architecture instead of the shipped default")
    args = p.parse_args(argv)
    device = setup(args)
    emit([run(device, args.quick, args.compile_timeout, model=args.model)], device, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
