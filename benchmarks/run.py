"""Run every benchmark and print its markdown tables (and optionally one JSON file).

    python -m benchmarks.run [--device cuda] [--quick] [--threads N] [--only latency,density] [--model PATH]
                             [--compile-timeout S] [--json out.json]

Order: the matmul limit first (the training table quotes it), then training
throughput, interactive latency, extrapolation, density, DDP scaling, and the
explorer's event-loop stall (benchmarks/gui_latency.py) when it is present.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

from . import density, extrapolation, latency, matmul, scaling, train_throughput
from .common import ROOT, Report, Table, arg_parser, emit, setup

NAMES = ("matmul", "train_throughput", "latency", "extrapolation", "density", "scaling", "gui_latency")


def gui_latency(device: torch.device, quick: bool, model: str | None = None, timeout_s: float = 600.0) -> Report:
    """benchmarks/gui_latency.py in its own process (Qt wants the main thread and a clean exit)."""
    script = ROOT / "benchmarks" / "gui_latency.py"
    if not script.exists():
        return Report("gui_latency", notes=["benchmarks/gui_latency.py is not there; skipped."])
    with tempfile.TemporaryDirectory() as tmp:
        out_json = Path(tmp) / "gui.json"
        cmd = [sys.executable, str(script), "--device", device.type, "--json", str(out_json)]
        if quick:
            cmd += ["--steps", "20"]
        if model:
            cmd.append(str(model))
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return Report("gui_latency", notes=[f"did not finish in {timeout_s:.0f} s"])
        notes = [] if proc.returncode == 0 else [f"exit status {proc.returncode} (1 means the stall bar was missed)"]
        data = json.loads(out_json.read_text()) if out_json.exists() else {}
        if not data:
            notes.append("no result: " + ((proc.stderr.strip().splitlines() or ["?"])[-1])[:200])
    table = Table("Explorer event loop while the φ slider is dragged (benchmarks/gui_latency.py)",
                  ["measure", "value"], [[k, v] for k, v in data.items()])
    return Report("gui_latency", [table] if data else [], notes, data=data)


def run_all(device: torch.device, quick: bool, only: Sequence[str], compile_timeout_s: float,
            model: str | None = None) -> list[Report]:
    reports: list[Report] = []
    limit = None
    for name in only:
        t0 = time.perf_counter()
        print(f"[running {name}…]", file=sys.stderr, flush=True)
        try:
            if name == "matmul":
                r = matmul.run(device, quick)
                limit = r.data["per_threads"]
            elif name == "train_throughput":
                r = train_throughput.run(device, quick, compile_timeout_s, limit_gflops=limit, model=model)
            elif name == "latency":
                r = latency.run(device, quick, model)
            elif name == "extrapolation":
                r = extrapolation.run(device, quick, model)
            elif name == "density":
                r = density.run(device, quick, model)
            elif name == "scaling":
                r = scaling.run(device, quick, model=model)
            elif name == "gui_latency":
                r = gui_latency(device, quick, model)
            else:
                raise SystemExit(f"error: unknown benchmark {name!r}; choose from {', '.join(NAMES)}")
        except Exception as exc:  # one broken benchmark must not hide the others' tables
            r = Report(name, notes=[f"FAILED: {type(exc).__name__}: {exc}"])
        r.notes.append(f"({name} took {time.perf_counter() - t0:.0f} s)")
        reports.append(r)
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(NAMES)}")
    p.add_argument("--compile-timeout", type=float, default=180.0, help="seconds allowed for torch.compile")
    p.add_argument("--model", help="a model folder/file to use instead of the shipped default (its architecture "
                                   "for the training tables, its weights for latency, extrapolation and density)")
    args = p.parse_args(argv)
    device = setup(args)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or list(NAMES)
    emit(run_all(device, args.quick, only, args.compile_timeout, args.model), device, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
