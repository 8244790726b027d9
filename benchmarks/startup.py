"""How long the explorer takes to answer: ``--help``, the first window, the usable window.

    python benchmarks/startup.py [MODEL] [--runs 3] [--root CHECKOUT] [--json out.json]

Each measure is a fresh process, timed from just before it is spawned:

* **help** — ``python main.py --help`` until it exits;
* **first window** — until the first top-level window is exposed (the user sees
  something: a splash or the main window, whichever the version shows first);
* **main window** — until the main window itself is exposed;
* **usable** — until the model is loaded (``session.has_model``): samples, encoding
  and the manifold work from then on.

The child is a small driver that creates the ``QApplication``, watches Qt's
expose events and polls the main window, then runs ``explorer.app.main`` of the
checkout named by ``--root`` (default: this one). It needs nothing from the app
but ``main(argv)``, so an older checkout can be measured the same way (before /
after). The autosave is pointed at a file that does not exist, and the settings
at a scratch file, so a run neither restores nor changes anyone's work.
Qt runs offscreen unless ``$DISPLAY`` is set. Numbers are medians over
``--runs``; the table carries the load average, since the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import json, os, sys, time
T0 = float(os.environ["NVP_STARTUP_T0"])
marks = {}
def mark(name):
    if name not in marks:
        marks[name] = time.time() - T0
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([sys.argv[0]])
def main_window():
    for w in QApplication.topLevelWidgets():
        if hasattr(w, "session") and hasattr(w, "hub"):
            return w
    return None
class Watch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Expose and getattr(obj, "isExposed", lambda: False)():
            mark("first_window")
            w = main_window()
            if w is not None and w.windowHandle() is obj:
                mark("main_window")
        return False
watch = Watch()
app.installEventFilter(watch)
def poll():
    w = main_window()
    if w is not None and w.isVisible() and "main_window" not in marks and w.windowHandle() is not None \
            and w.windowHandle().isExposed():
        mark("main_window")
    if w is not None and getattr(w.session, "has_model", False):
        mark("usable")
        print("STARTUP " + json.dumps(marks), flush=True)
        os._exit(0)
timer = QTimer()
timer.timeout.connect(poll)
timer.start(10)
sys.path.insert(0, os.getcwd())
sys.argv = [os.path.join(os.getcwd(), "main.py")] + sys.argv[1:]
from explorer.app import main
main(sys.argv[1:])
print("STARTUP " + json.dumps(marks), flush=True)
os._exit(1)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="model to open (default: the app's default model)")
    p.add_argument("--runs", type=int, default=3, help="fresh processes per measure (median reported)")
    p.add_argument("--root", default=str(ROOT), help="checkout whose main.py / explorer is measured")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--timeout", type=float, default=180.0, help="seconds one start may take")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args(argv)


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["NVP_EXPLORER_AUTOSAVE"] = str(tmp / "no-autosave.nvps")
    env["NVP_EXPLORER_SETTINGS"] = str(tmp / "settings.ini")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def time_help(root: Path, env: dict[str, str]) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, str(root / "main.py"), "--help"], cwd=root, env=env, check=True,
                   capture_output=True, timeout=120)
    return time.time() - t0


def time_start(root: Path, env: dict[str, str], model: str | None, device: str, timeout: float) -> dict[str, float]:
    args = ([model] if model else []) + ["--device", device]
    env = dict(env, NVP_STARTUP_T0=repr(time.time()))
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("STARTUP "):
            marks = json.loads(line[len("STARTUP "):])
            if "usable" not in marks:
                raise RuntimeError(f"the model never loaded: {proc.stderr.strip()[-400:]}")
            return marks
    raise RuntimeError(f"no startup report (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")


def run(args: argparse.Namespace) -> dict:
    root = Path(args.root).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        helps = [time_help(root, env) for _ in range(args.runs)]
        starts = [time_start(root, env, args.model, args.device, args.timeout) for _ in range(args.runs)]
    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    return {
        "root": str(root),
        "runs": args.runs,
        "help_s": med(helps),
        "first_window_s": med([s["first_window"] for s in starts if "first_window" in s] or [float("nan")]),
        "main_window_s": med([s.get("main_window", s.get("first_window", float("nan"))) for s in starts]),
        "usable_s": med([s["usable"] for s in starts]),
        "platform": "offscreen" if not os.environ.get("DISPLAY") else f"X {os.environ['DISPLAY']}",
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def table(r: dict) -> str:
    rows = [("`main.py --help` exits", r["help_s"]), ("first window exposed", r["first_window_s"]),
            ("main window exposed", r["main_window_s"]), ("model loaded (usable)", r["usable_s"])]
    out = [f"| explorer start ({r['root']}, median of {r['runs']}) | seconds |", "|---|---|"]
    out += [f"| {k} | {v:.2f} |" for k, v in rows]
    out.append(f"\n{r['platform']}, load average {r['load_average']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = run(args)
    print(table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
