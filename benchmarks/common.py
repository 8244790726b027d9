"""What every benchmark shares: the machine's description, timing with honest
statistics, markdown tables, JSON output and the command-line options.

Numbers from a shared machine are noisy: every timing is repeated and reported
as a median (and p95 where the tail matters), and every report carries the load
average at the time, so a reader can tell a quiet run from a crowded one.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import nvp_core as nc

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU's marketing name (lscpu's 'Model name'), or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": str(device),
        "load_average": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def describe_load() -> str:
    la = load_average()
    if la is None:
        return "load average unknown"
    cores = os.cpu_count() or 1
    return f"load average {la[0]:.2f} on {cores} cores" + (" (machine busy: timings inflated)" if la[0] > 0.5 * cores else "")


# --------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Wall-clock seconds per call (``times``) and process CPU seconds per call (``cpu``)."""

    times: list[float]
    cpu: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (no numpy needed for a handful of numbers)."""
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def measure(
    fn: Callable[[], Any],
    device: torch.device,
    repeats: int,
    warmup: int = 1,
    budget_s: float | None = None,
    min_repeats: int = 2,
) -> Timing:
    """Call ``fn`` ``warmup`` times, then up to ``repeats`` times (stopping early once
    ``budget_s`` is spent and ``min_repeats`` calls are in), timing each call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    for i in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if budget_s is not None and i + 1 >= min_repeats and time.perf_counter() - start > budget_s:
            break
    return Timing(times, cpu)


# --------------------------------------------------------------------------- models
def default_model_dir() -> Path:
    return Path(nc.default_model_path())


def default_config(model: str | os.PathLike | None = None) -> tuple[nc.FlowConfig, str]:
    """The architecture to benchmark: ``model``'s (a model folder or file) when given,
    else the shipped model's (what the explorer opens), else ``FlowConfig()``."""
    if model is not None:
        path = Path(model)
        if path.is_dir() and (path / "config.json").exists():
            text = (path / "config.json").read_text()
        else:
            from nvp_core.io import read_file

            text = read_file(path)[1].get("config", "")
        return nc.FlowConfig.from_json(text), f"config of {path}"
    folder = default_model_dir()
    cfg_file = folder / "config.json"
    if cfg_file.exists():
        try:
            return nc.FlowConfig.from_json(cfg_file.read_text()), f"{folder.name}/config.json"
        except nc.NVPError:
            pass
    return nc.FlowConfig(), "FlowConfig() (no shipped model yet)"


def quick_config(size: int = 16) -> nc.FlowConfig:
    """A tiny model for smoke runs: every code path, almost no arithmetic."""
    return nc.FlowConfig(width=4, blocks=1, max_width=8, scales=nc.FlowConfig.default_scales(size), image_size=size)


def at_size(cfg: nc.FlowConfig, size: int, keep_scales: bool = False) -> nc.FlowConfig:
    """The same architecture for another image size: the paper's recursion stops at
    4×4, so a 64×64 model has one more level than a 32×32 one (unless ``keep_scales``)."""
    d = cfg.to_dict()
    d["image_size"] = size
    if not keep_scales:
        d["scales"] = nc.FlowConfig.default_scales(size)
    return nc.FlowConfig.from_dict(d)


def config_label(cfg: nc.FlowConfig) -> str:
    return f"w{cfg.width}×b{cfg.blocks}, L={cfg.scales}, max {cfg.max_width}"


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call, counted by torch's FlopCounterMode (convolutions and matmuls:
    the arithmetic that the matmul limit speaks for; elementwise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- reports
@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def markdown(self) -> str:
        def cell(v: Any) -> str:
            if isinstance(v, float):
                if math.isnan(v):
                    return "–"
                if v == 0:
                    return "0"
                mag = abs(v)
                return f"{v:.3g}" if mag < 10 else f"{v:.1f}" if mag < 1000 else f"{v:,.0f}"
            return str(v)

        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns,
                "rows": [[_jsonable(v) for v in row] for row in self.rows]}


@dataclass
class Report:
    name: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"### {self.name}", ""]
        for t in self.tables:
            parts += [t.markdown(), ""]
        parts += [f"- {n}" for n in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tables": [t.to_dict() for t in self.tables], "notes": self.notes,
                "data": _jsonable(self.data)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


# --------------------------------------------------------------------------- command line
def arg_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--quick", action="store_true", help="smallest sizes: a smoke run of seconds")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's own)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return nc.resolve_device(args.device)
    except nc.NVPError as exc:
        raise SystemExit(f"error: {exc}") from None


def emit(reports: Sequence[Report], device: torch.device, json_path: str | None) -> None:
    """Print the markdown tables (with the machine header) and optionally write JSON."""
    info = machine_info(device)
    print(f"_{info['date']} · {info['cpu']} · {info['cores']} cores · torch {info['torch']} "
          f"({info['torch_threads']} threads) · device {info['device']} · {describe_load()}_\n")
    for r in reports:
        print(r.markdown())
    if json_path:
        payload = {"machine": info, "results": {r.name: r.to_dict() for r in reports}}
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(payload, indent=2))


def run_python(code: str, timeout_s: float, env: dict[str, str] | None = None) -> tuple[str, str, int | None]:
    """Run ``python -c code`` from the repository root with a hard time limit.

    Returns (stdout, stderr, returncode); returncode None means it was killed at the
    limit — the caller reports "did not finish in N s" instead of hanging.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return out, err, proc.returncode
    except subprocess.TimeoutExpired:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the compiler's worker processes go too
        except OSError:
            proc.kill()
        out, err = proc.communicate()
        return out, err, None


def last_json_line(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that parses as a JSON object (a child's result)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_one(args: argparse.Namespace, make_report: Callable[[torch.device], "Report"]) -> int:
    """The tail of every single-benchmark ``main``: set up, run, print; our errors as one line."""
    device = setup(args)
    try:
        report = make_report(device)
    except nc.NVPError as exc:
        raise SystemExit(f"error: {exc}") from None
    emit([report], device, args.json)
    return 0
