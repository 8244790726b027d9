"""Extrapolation: time and peak memory to sample canvases 1×, 2×, 10× and 20× the training size.

The flow is convolutional, so a larger canvas is just larger latents; its cost
should grow like the pixel count, and so should its memory. Each canvas runs
in its own child process so the peak is that canvas's alone: the peak resident
set size above the process's baseline (after the model is loaded and warmed
up) on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

    python -m benchmarks.extrapolation [MODEL] [--device cuda] [--quick] [--json out.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import torch

import nvp_core as nc

from .common import (
    Report, Table, arg_parser, config_label, default_config, describe_load, last_json_line, quick_config, run_one, run_python,
)

_CHILD = r"""
import json, resource, sys, threading, time
import torch
import nvp_core as nc
torch.set_num_threads({threads})
device = torch.device({device!r})
spec = json.loads({spec!r})
if spec.get("path"):
    flow = nc.load(spec["path"], device=device)
else:
    torch.manual_seed(0)
    flow = nc.RealNVP(nc.FlowConfig.from_json(spec["config"])).to(device).eval()
side = {side}
flow.sample(1, flow.multiple * 2, flow.multiple * 2, generator=0)  # warm up lazy initialisation

PAGE = __import__("os").sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE

peak = [0]
done = threading.Event()
def poll():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

times = []
if device.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
base_rss = rss()
max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
poller = threading.Thread(target=poll, daemon=True)
poller.start()
start = time.perf_counter()
for i in range({repeats}):
    t0 = time.perf_counter()
    img = flow.sample(1, side, side, temperature=0.7, generator=i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    times.append(time.perf_counter() - t0)
    if time.perf_counter() - start > {budget}:
        break
done.set(); poller.join()
max_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if device.type == "cuda":
    peak_bytes = torch.cuda.max_memory_allocated(device) - base
else:
    polled = max(peak[0], rss()) - base_rss
    peak_bytes = max_after - base_rss if max_after > max_before else polled
    peak_bytes = max(peak_bytes, polled)
assert tuple(img.shape) == (1, flow.config.channels, side, side), img.shape
times.sort()
print(json.dumps({{"median_s": times[len(times) // 2], "best_s": times[0], "n": len(times),
                  "peak_bytes": int(peak_bytes), "finite": bool(torch.isfinite(img).all())}}))
"""


def model_spec(model: str | None, quick: bool) -> tuple[dict, nc.FlowConfig, str]:
    if quick and model is None:
        cfg = quick_config(16)
        return {"config": cfg.to_json()}, cfg, "tiny untrained model (--quick)"
    path = Path(model) if model else Path(nc.default_model_path())
    if model or (path / "model.safetensors").exists():
        flow = nc.load(path)
        return {"path": str(path)}, flow.config, str(path)
    cfg, source = default_config()
    return {"config": cfg.to_json()}, cfg, f"untrained {source}"


def run(device: torch.device, quick: bool = False, model: str | None = None, timeout_s: float = 300.0) -> Report:
    spec, cfg, source = model_spec(model, quick)
    base = cfg.image_size
    factors = [1, 2] if quick else [1, 2, 10, 20]
    table = Table(f"Sampling one canvas on {device}: {config_label(cfg)}, trained at {base}×{base}",
                  ["canvas", "pixels", "median s", "ms / kpixel", "peak memory MB", "MB / Mpixel"])
    rows = []
    for f in factors:
        side = base * f
        repeats = 2 if quick else (5 if f <= 2 else 2)
        code = _CHILD.format(threads=torch.get_num_threads(), device=str(device), spec=json.dumps(spec), side=side,
                             repeats=repeats, budget=1.0 if quick else 60.0)
        out, err, rc = run_python(code, 60.0 if quick else timeout_s)
        res = last_json_line(out) if rc == 0 else None
        px = side * side
        if res is None:
            why = f"did not finish in {timeout_s:.0f} s" if rc is None else \
                f"failed: {(err.strip().splitlines() or ['no output'])[-1][:120]}"
            table.add(f"{f}× ({side}×{side})", px, why, float("nan"), float("nan"), float("nan"))
            rows.append({"factor": f, "side": side, "error": why})
            continue
        mb = res["peak_bytes"] / 2**20
        table.add(f"{f}× ({side}×{side})", px, res["median_s"], 1e3 * res["median_s"] / (px / 1e3), mb, mb / (px / 1e6))
        rows.append({"factor": f, "side": side, "pixels": px, **res})
    notes = [f"model: {source}"]
    big = [r for r in rows if "peak_bytes" in r and r["factor"] >= 10]
    if len(big) == 2:
        mem_ratio = big[1]["peak_bytes"] / max(1, big[0]["peak_bytes"])
        px_ratio = big[1]["pixels"] / big[0]["pixels"]
        verdict = "no faster than" if mem_ratio <= px_ratio * 1.1 else "FASTER than"
        notes.append(f"20× vs 10×: pixels ×{px_ratio:.1f}, peak memory ×{mem_ratio:.2f} — memory grows {verdict} "
                     "the pixel count.")
    if not all(r.get("finite", True) for r in rows):
        notes.append("WARNING: a sampled canvas contained non-finite values.")
    notes += ["Small canvases sit near the allocator's noise floor: their MB/Mpixel is not meaningful.",
              describe_load()]
    return Report("extrapolation", [table], notes, data={"rows": rows, "model": source})


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model file or folder (default: the shipped model)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per canvas")
    args = p.parse_args(argv)
    return run_one(args, lambda d: run(d, args.quick, args.model, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
