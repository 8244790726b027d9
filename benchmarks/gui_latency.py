"""What a user sees while dragging φ: frames painted, slider-to-screen delay, play and toggle speed.

Everything goes through the real window with real input events:

* **drag** — a mouse press on the Manifold tab's φ slider handle, then one mouse
  move (``--px`` pixels) every 16 ms (a 60 Hz mouse), then the release. Each
  move is time-stamped when Qt delivers it to the slider; each frame when the
  image view's ``ImageItem.paint`` draws it (the pixels reach the screen in that
  call), together with the angles of the frame it draws;
* **play** — a click on ▶ of φ, frames painted for ``--play-seconds``;
* **information loss** — clicks on a level's check box on the Information-loss
  tab, each timed until the result view paints its new image.

A move counts as *on screen* at the first paint, at or after it, of a frame
whose φ is within ``--tol`` degrees of that move's slider value or of a later
move's (the display caught up with it). The nearest-cached frame a speculative
renderer shows is thus counted only when it is that close; ``angle lag`` is the
distance between the painted φ and the slider at every paint.

A 5 ms heartbeat QTimer also records event-loop stalls during the drag.

    python benchmarks/gui_latency.py [MODEL] [--steps 240] [--hog] [--json out.json]

``--hog`` runs ``python -c "while True: pass"`` beside it for the whole
measurement. Without MODEL the default model is used, or an untrained stand-in
of ``--size``. Prints a markdown table; exit status 1 if a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# measure the explorer of this checkout, not whichever one is installed (python benchmarks/gui_latency.py
# puts benchmarks/ first on sys.path, not the checkout)
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = {"fps": 30.0, "p95_ms": 50.0, "release_ms": 100.0, "play_fps": 30.0, "toggle_ms": 50.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model file or folder (default: assets/ model, else an untrained one)")
    p.add_argument("--size", type=int, default=32, help="image size of the stand-in model when none is given")
    p.add_argument("--steps", type=int, default=240, help="mouse moves of the drag (one every 16 ms)")
    p.add_argument("--px", type=int, default=1, help="pixels per mouse move")
    p.add_argument("--tol", type=float, default=0.5, help="degrees: how close a painted frame must be to count")
    p.add_argument("--play-seconds", type=float, default=3.0)
    p.add_argument("--toggles", type=int, default=10, help="information-loss check box clicks")
    p.add_argument("--hog", action="store_true", help="run a CPU-bound process beside the measurement")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--fps-target", type=float, default=TARGETS["fps"], help="frames/s the drag must show")
    p.add_argument("--limit-ms", type=float, default=100.0, help="the largest acceptable event-loop stall")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    return p.parse_args(argv)


def stand_in_model(size: int, folder: Path) -> Path:
    import torch

    import nvp_core as nc

    cfg = nc.FlowConfig(image_size=size, scales=nc.FlowConfig.default_scales(size))
    torch.manual_seed(0)
    flow = nc.RealNVP(cfg).eval()
    return nc.save(flow, folder / f"untrained-{size}", metadata={"note": "untrained stand-in for gui_latency"}).parent


class PaintLog:
    """Patches ``pg.ImageItem.paint`` once; records (time, what(item)) for each watched item painted."""

    def __init__(self) -> None:
        import pyqtgraph as pg

        self.watch: dict[int, tuple[list, object]] = {}
        original = pg.ImageItem.paint
        log = self

        def paint(item, *args, **kwargs):  # noqa: ANN001, ANN202
            out = original(item, *args, **kwargs)
            entry = log.watch.get(id(item))
            if entry is not None:
                entry[0].append((time.perf_counter(), entry[1](item)))
            return out

        pg.ImageItem.paint = paint

    def add(self, item: object, what) -> list:  # noqa: ANN001
        events: list = []
        self.watch[id(item)] = (events, what)
        return events


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
    from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPoint, QPointF, QSettings, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QStyle, QStyleOptionSlider

    import torch

    import nvp_core as nc
    from explorer.app import make_app, tune_runtime
    from explorer.main_window import MainWindow, focus_tab

    tune_runtime()
    tmp = Path(tempfile.mkdtemp(prefix="nvp-gui-latency-"))
    model = args.model
    if model is None:
        model = str(nc.default_model_path()) if (nc.default_model_path() / "model.safetensors").exists() \
            else str(stand_in_model(args.size, tmp))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.hog else None
    load_before = os.getloadavg()[0]
    app = make_app()
    paints = PaintLog()
    window = MainWindow(device=args.device, settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    focus_tab(window, "manifold")
    window.show()
    window.open_model(model)

    def spin(cond, timeout: float, what: str = "the explorer did not finish loading") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():
            app.processEvents()
            time.sleep(0.002)
        if not cond():
            raise TimeoutError(what)

    trace_log: list = []
    try:
        spin(lambda: window.session.anchors_complete and window.settled(), 600)
        panel = window.manifold_panel
        flow = window.session.flow
        h, w = window.session.image_size
        shown = paints.add(panel.view.item, lambda item: getattr(panel, "_frame_angles", None))
        handed: list[tuple[float, object]] = []  # when the panel gave the view each frame
        set_image = panel.view.set_image

        def timed_set_image(*a, **k):  # noqa: ANN002, ANN003, ANN202
            handed.append((time.perf_counter(), getattr(panel, "_frame_angles", None)))
            return set_image(*a, **k)

        panel.view.set_image = timed_set_image
        trace = os.environ.get("GUI_LATENCY_TRACE")  # debugging the speculative renderer, when there is one
        if trace and hasattr(panel, "planner"):
            pl, log, t00 = panel.planner, [], time.perf_counter()
            sub, arr = pl._submit, pl._arrived

            def t_sub(angles, asked):  # noqa: ANN001, ANN202
                log.append(("ask", round((time.perf_counter() - t00) * 1000), [a[0] for a in angles], asked,
                            round(pl._chunk_s * 1000), round(pl._move_dt * 1000, 1), pl.target_angles[0]))
                return sub(angles, asked)

            def t_arr(st, a, r):  # noqa: ANN001, ANN202
                log.append(("got", round((time.perf_counter() - t00) * 1000), [x[0] for x in r[1]]))
                return arr(st, a, r)

            pl._submit, pl._arrived = t_sub, t_arr
            pl.shown.connect(lambda f: log.append(("show", round((time.perf_counter() - t00) * 1000), f.angles[0],
                                                   pl.target_angles[0])))
            trace_log.append((trace, log))

        # one frame, idle-ish, for reference
        t0 = time.perf_counter()
        panel.set_angles(1.0, 0.0, 0.0)
        spin(panel.frame_done, 60)
        single_ms = (time.perf_counter() - t0) * 1000
        panel.set_angles(0.0, 0.0, 0.0)
        spin(lambda: window.settled() and panel.frame_done(), 60)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)

        # ---- the drag: real mouse events on the slider handle
        slider = panel.controls["phi"].slider
        opt = QStyleOptionSlider()
        slider.initStyleOption(opt)
        handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                               QStyle.SubControl.SC_SliderHandle, slider)
        groove = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                               QStyle.SubControl.SC_SliderGroove, slider)
        y = handle.center().y()
        x0 = handle.center().x()
        steps = max(1, min(args.steps, (groove.right() - x0 - handle.width()) // max(1, args.px)))
        moves: list[tuple[float, float]] = []  # (time delivered, slider value in degrees after it)
        delivered = [0.0]

        class Stamp(QObject):
            def eventFilter(self, obj, ev):  # noqa: N802, ANN001
                if ev.type() in (QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease):
                    delivered[0] = time.perf_counter()
                return False

        stamp = Stamp()
        slider.installEventFilter(stamp)
        recording = [True]
        slider.valueChanged.connect(lambda v: recording[0] and moves.append((delivered[0], v / 10.0)))

        def mouse(kind, x: int, buttons) -> None:  # noqa: ANN001
            local = QPointF(x, y)
            glob = QPointF(slider.mapToGlobal(QPoint(x, y)))
            button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
            QCoreApplication.postEvent(slider, QMouseEvent(kind, local, glob, button, buttons,
                                                           Qt.KeyboardModifier.NoModifier))

        beats: list[float] = []
        heartbeat = QTimer()
        heartbeat.setInterval(5)
        heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
        n_moves = [0]
        release_t = [0.0]

        def drag() -> None:
            if n_moves[0] >= steps:
                mover.stop()
                mouse(QEvent.Type.MouseButtonRelease, x0 + n_moves[0] * args.px, Qt.MouseButton.NoButton)
                release_t[0] = time.perf_counter()
                return
            n_moves[0] += 1
            mouse(QEvent.Type.MouseMove, x0 + n_moves[0] * args.px, Qt.MouseButton.LeftButton)

        mover = QTimer()
        mover.setInterval(16)
        mover.timeout.connect(drag)
        mouse(QEvent.Type.MouseButtonPress, x0, Qt.MouseButton.LeftButton)
        app.processEvents()
        first_paint = len(shown)
        heartbeat.start()
        start = time.perf_counter()
        mover.start()
        spin(lambda: release_t[0] > 0, 600, "the drag did not finish")
        drag_end = time.perf_counter()
        recording[0] = False
        final = window.session.angles.phi
        spin(lambda: any(t > release_t[0] and a is not None and abs(a[0] - final) < 1e-6
                         for t, a in shown[first_paint:]), 30, "the final frame never came")
        heartbeat.stop()
        exact_t = min(t for t, a in shown[first_paint:] if t > release_t[0] and a is not None
                      and abs(a[0] - final) < 1e-6)
        spin(lambda: window.settled(), 60)

        drag_paints = [(t, a[0]) for t, a in shown[first_paint:] if a is not None and start <= t <= drag_end]
        distinct = [p for i, p in enumerate(drag_paints) if i == 0 or p[1] != drag_paints[i - 1][1]]
        mt = np.array([m[0] for m in moves])
        mv = np.array([m[1] for m in moves])
        all_paints = [(t, a[0]) for t, a in shown[first_paint:] if a is not None]
        # for every paint: the latest move (already delivered) its frame is within tol of
        matched = []
        for t, a in all_paints:
            ok = np.nonzero((mt <= t) & (np.abs(mv - a) <= args.tol))[0]
            matched.append((t, int(ok.max()) if ok.size else -1))
        latencies = []
        for i, (ti, _) in enumerate(moves):
            hit = [t for t, j in matched if t >= ti and j >= i]
            if hit:
                latencies.append((min(hit) - ti) * 1000)
        worst = sorted(range(len(latencies)), key=lambda i: -latencies[i])[:10]
        lags = []
        for t, a in drag_paints:
            before = np.nonzero(mt <= t)[0]
            if before.size:
                lags.append(abs(a - mv[before.max()]))
        to_paint = []  # from handing a frame to the view to its paint
        for th, ah in handed:
            if start <= th <= drag_end:
                later = [t for t, a in all_paints if t >= th and a == ah[0]] if ah is not None else []
                if later:
                    to_paint.append((later[0] - th) * 1000)
        gaps = np.diff(np.array(beats)) * 1000.0 if len(beats) > 1 else np.zeros(1)
        stalls = np.clip(gaps - heartbeat.interval(), 0, None)
        drag_s = drag_end - start

        # ---- ▶ play
        play_btn = panel.controls["phi"].play
        QTest.mouseClick(play_btn, Qt.MouseButton.LeftButton)
        p0 = len(shown)
        t_play = time.perf_counter()
        spin(lambda: time.perf_counter() - t_play >= args.play_seconds, args.play_seconds + 5, "")
        play_paints = [a[0] for t, a in shown[p0:] if a is not None]
        play_frames = sum(1 for i, a in enumerate(play_paints) if i == 0 or a != play_paints[i - 1])
        play_fps = play_frames / (time.perf_counter() - t_play)
        QTest.mouseClick(play_btn, Qt.MouseButton.LeftButton)
        spin(lambda: window.settled(), 60)

        # ---- information loss: toggle a level, time until its new image is painted
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(128 + 100 * np.sin(xx / 3.0 + c)) for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        focus_tab(window, "infoloss")
        window.hub.add_items([("bench.png", img, None)])
        spin(lambda: window.session.current_image is not None and window.settled(), 120, "could not encode")
        ip = window.infoloss_panel
        result_paints = paints.add(ip.result.item, lambda item: id(item.image))
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)
        toggles = []
        box = ip.level_boxes[0]
        for _ in range(args.toggles):
            before = id(ip.result.item.image)
            n0 = len(result_paints)
            t_click = time.perf_counter()
            QTest.mouseClick(box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             QPoint(8, box.height() // 2))
            spin(lambda: any(i != before for _, i in result_paints[n0:]), 30, "the toggle never showed")
            toggles.append((min(t for t, i in result_paints[n0:] if i != before) - t_click) * 1000)
            spin(lambda: window.settled(), 30)
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.002)

        load_after = os.getloadavg()[0]
        result = {
            "model": model,
            "code": str(Path(sys.modules["explorer"].__file__).resolve().parent.parent),
            "image": f"{w}×{h}",
            "levels": flow.config.scales,
            "device": str(flow.device),
            "torch_threads": torch.get_num_threads(),
            "hog": bool(args.hog),
            "load_avg_1min": [round(load_before, 2), round(load_after, 2)],
            "slider_moves": len(moves),
            "mouse_moves": n_moves[0],
            "drag_seconds": round(drag_s, 2),
            "drag_deg_per_s": round((mv[-1] - mv[0]) / drag_s, 1) if len(mv) > 1 else 0.0,
            "frames_shown": len(distinct),
            "frames_per_second": round(len(distinct) / drag_s, 1),
            "latency_p50_ms": pct(latencies, 50),
            "latency_p95_ms": pct(latencies, 95),
            "latency_max_ms": round(max(latencies), 1) if latencies else float("nan"),
            "moves_reached": f"{len(latencies)}/{len(moves)}",
            "worst_moves": [(i, round(latencies[i], 1)) for i in worst],  # (move index, ms)
            "handed_to_painted_p50_ms": pct(to_paint, 50),
            "handed_to_painted_p95_ms": pct(to_paint, 95),
            "angle_lag_p50_deg": pct(lags, 50),
            "angle_lag_p95_deg": pct(lags, 95),
            "release_to_exact_ms": round((exact_t - release_t[0]) * 1000, 1),
            "play_fps": round(play_fps, 1),
            "toggle_p50_ms": pct(toggles, 50),
            "toggle_max_ms": round(max(toggles), 1) if toggles else float("nan"),
            "single_frame_ms": round(single_ms, 1),
            "stall_max_ms": round(float(stalls.max()), 1),
            "stall_p95_ms": round(float(np.percentile(stalls, 95)), 1),
            "stall_p50_ms": round(float(np.percentile(stalls, 50)), 1),
            "heartbeats": int(len(beats)),
            "tol_deg": args.tol,
            "limit_ms": args.limit_ms,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "platform": os.environ.get("QT_QPA_PLATFORM", ""),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        result["pass"] = bool(
            result["stall_max_ms"] <= args.limit_ms
            and result["frames_per_second"] >= args.fps_target
            and result["latency_p95_ms"] <= TARGETS["p95_ms"]
            and result["release_to_exact_ms"] <= TARGETS["release_ms"]
            and result["play_fps"] >= TARGETS["play_fps"]
            and result["toggle_max_ms"] <= TARGETS["toggle_ms"])
    finally:
        for path, log in trace_log:
            Path(path).write_text("\n".join(map(str, log)))
        if hog is not None:
            hog.kill()
            hog.wait()
        window.shutdown()
    return result


def table(r: dict) -> str:
    rows = [
        ("image / levels", f"{r['image']} / {r['levels']}"),
        ("device / torch threads", f"{r['device']} / {r['torch_threads']}"),
        ("CPU hog beside it", "yes" if r["hog"] else "no"),
        ("load average (1 min) before / after", f"{r['load_avg_1min'][0]} / {r['load_avg_1min'][1]}"),
        ("drag", f"{r['slider_moves']} slider moves in {r['drag_seconds']} s ({r['drag_deg_per_s']}°/s)"),
        ("frames shown while dragging", f"{r['frames_shown']} ({r['frames_per_second']} fps)"),
        ("slider-to-screen p50 / p95 / max", f"{r['latency_p50_ms']} / {r['latency_p95_ms']} / "
                                             f"{r['latency_max_ms']} ms (moves reached {r['moves_reached']})"),
        ("angle lag at paint p50 / p95", f"{r['angle_lag_p50_deg']}° / {r['angle_lag_p95_deg']}°"),
        ("frame handed to view → painted p50 / p95", f"{r['handed_to_painted_p50_ms']} / "
                                                      f"{r['handed_to_painted_p95_ms']} ms"),
        ("release → exact final frame", f"{r['release_to_exact_ms']} ms"),
        ("▶ play", f"{r['play_fps']} fps"),
        ("info-loss toggle → screen p50 / max", f"{r['toggle_p50_ms']} / {r['toggle_max_ms']} ms"),
        ("one frame, idle", f"{r['single_frame_ms']} ms"),
        ("event-loop stall p50 / p95", f"{r['stall_p50_ms']} / {r['stall_p95_ms']} ms"),
        ("event-loop stall max", f"{r['stall_max_ms']} ms"),
        ("targets", "PASS" if r["pass"] else "FAIL"),
    ]
    out = ["| GUI latency while dragging φ | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = run(args)
    print(table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0 if r["pass"] else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip Qt teardown (PySide6 + pyqtgraph can abort there)
