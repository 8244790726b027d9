"""Start the explorer.

    python main.py [MODEL] [--device …] [--images …] [--tab NAME] [--fresh] [--screenshot PNG]

Arguments are parsed before anything heavy is imported (``--help`` and a typo
answer at once), and a small splash window shows while torch, pyqtgraph and the
panels load; the main window then appears with its model still loading on the
render worker ("Opening … " in the Model tab and the status bar).
``benchmarks/startup.py`` measures both.

``--screenshot`` is for docs and checks: it opens the window with the model,
lets the chosen tab show what it is for (images encoded, a grid or a strip
rendered, a canvas generated), waits until every render has finished, saves
``QWidget.grab()`` of the window and exits 0. It never reads or writes the
autosaved session (nor the user's settings).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .tabs import TABS, tab_key

if TYPE_CHECKING:  # the real imports happen in main(), after the arguments are parsed
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from .main_window import MainWindow


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nvp-explorer", description="NVP Explorer: explore Real NVP latent spaces.")
    p.add_argument("model", nargs="?", help="model file or folder (default: the model in assets/, if present)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs")
    p.add_argument("--images", nargs="+", metavar="PATH", default=[],
                   help="images or folders to encode at start ('examples' for photos shipped with scikit-image)")
    p.add_argument("--tab", default=None, help=f"tab to show: {', '.join(TABS)}")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot once rendering is done, then exit")
    p.add_argument("--size", default="1440x900", help="window size for --screenshot (WxH)")
    p.add_argument("--timeout", type=float, default=600.0, help="--screenshot gives up after this many seconds")
    p.add_argument("--settings", metavar="INI", help="use this settings file instead of the user's")
    p.add_argument("--fresh", action="store_true",
                   help="start with an empty session instead of the one autosaved when the window last closed")
    args = p.parse_args(argv)
    if args.tab is not None:
        try:
            args.tab = tab_key(args.tab)
        except ValueError as exc:
            p.error(str(exc))
    return args


def _qapp() -> "QApplication":
    """The QApplication with the explorer's names and style (PySide6 only: fast)."""
    from PySide6.QtWidgets import QApplication, QStyleFactory

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "nvp-explorer"])
    app.setApplicationName("NVP Explorer")
    app.setOrganizationName("nvp-explorer")
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    return app


def make_app() -> "QApplication":
    from .widgets import dark_palette

    from .main_thread_gc import MainThreadGC

    app = _qapp()
    app.setPalette(dark_palette())
    if getattr(app, "_main_thread_gc", None) is None:  # never collect Qt objects on a worker thread
        app._main_thread_gc = MainThreadGC(app)
    return app


def show_splash() -> "QWidget":
    """A small window shown while the heavy modules load, so a start is never a blank wait."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
    from PySide6.QtWidgets import QApplication, QSplashScreen

    pm = QPixmap(420, 150)
    pm.fill(QColor(46, 47, 51))
    p = QPainter(pm)
    p.setPen(QColor(226, 226, 226))
    f = QFont()
    f.setPointSize(18)
    f.setBold(True)
    p.setFont(f)
    p.drawText(pm.rect().adjusted(0, 0, 0, -40), Qt.AlignmentFlag.AlignCenter, "NVP Explorer")
    f.setPointSize(10)
    f.setBold(False)
    p.setFont(f)
    p.setPen(QColor(160, 160, 160))
    p.drawText(pm.rect().adjusted(0, 60, 0, 0), Qt.AlignmentFlag.AlignCenter, "Loading…")
    p.end()
    splash = QSplashScreen(pm)
    splash.show()
    QApplication.processEvents()
    return splash


class Showcase:
    """Steps run one after another, each once the window has settled (screenshot mode)."""

    def __init__(self, window: MainWindow, steps: list[Callable[[], None]], done: Callable[[], None],
                 timeout: float) -> None:
        self.window, self.steps, self.done = window, list(steps), done
        from PySide6.QtCore import QTimer

        self.deadline = time.monotonic() + timeout
        self.quiet = 0
        self.timed_out = False
        self.timer = QTimer()
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            self.timer.stop()
            self.done()
            return
        self.quiet = self.quiet + 1 if self.window.settled() else 0
        if self.quiet < 4:  # settled for 0.4 s: no result is about to start another job
            return
        self.quiet = 0
        if self.steps:
            self.steps.pop(0)()
        else:
            self.timer.stop()
            self.done()


def showcase_steps(window: MainWindow, tab: str | None, images: list[str]) -> list[Callable[[], None]]:
    """What a screenshot of each tab should show."""
    hub = window.hub
    steps: list[Callable[[], None]] = []
    wants_images = tab in ("encode", "infoloss", "manifold")
    if wants_images and not images:
        steps.append(lambda: hub.load_examples() if not window.session.images else None)
    if tab == "infoloss":
        def info() -> None:
            p = window.infoloss_panel
            if window.session.images:
                hub.set_current(min(1, len(window.session.images) - 1))
            p.set_levels({1, 2})
            p.render_strip()
        steps.append(info)
    if tab == "manifold":
        def mani() -> None:
            if window.session.images:
                hub.fill_anchors_from_images()
        steps.append(mani)
        steps.append(lambda: window.manifold_panel.set_angles(30.0, 45.0, 0.0))
        steps.append(window.manifold_panel.render_grid)
    if tab == "canvas":
        def canvas() -> None:
            cp = window.canvas_panel
            if window.session.flow is not None and hasattr(cp, "generate"):
                cp.generate()
        steps.append(canvas)
    return steps


def tune_runtime() -> None:
    """Keep the GUI thread responsive while the render worker computes.

    * torch threads = cores − 1 (``NVP_TORCH_THREADS`` overrides): a worker that takes
      every core makes the window stutter, and OpenMP threads fighting for busy cores
      are many times slower than one thread;
    * a 1 ms GIL switch interval (Python's default is 5 ms): the worker runs Python
      between torch ops, and the GUI thread should not wait 5 ms for each turn.
    """
    import torch

    env = os.environ.get("NVP_TORCH_THREADS", "")
    n = int(env) if env.isdigit() and int(env) > 0 else max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)
    sys.setswitchinterval(0.001)


def autosave_path() -> Path:
    """Where the session is autosaved: ``<app data>/autosave.nvps`` (``NVP_EXPLORER_AUTOSAVE`` overrides)."""
    env = os.environ.get("NVP_EXPLORER_AUTOSAVE")
    if env:
        return Path(env)
    from . import dialogs

    return dialogs.standard_folder("appdata") / "autosave.nvps"


def _window_settings(args: argparse.Namespace) -> "QSettings | None":
    """--settings, then $NVP_EXPLORER_SETTINGS; a screenshot run gets a scratch file; else Qt's default."""
    from PySide6.QtCore import QSettings

    settings = QSettings(args.settings, QSettings.Format.IniFormat) if args.settings else None
    if settings is None and os.environ.get("NVP_EXPLORER_SETTINGS"):
        settings = QSettings(os.environ["NVP_EXPLORER_SETTINGS"], QSettings.Format.IniFormat)
    if settings is None and args.screenshot:
        # A docs/check run must neither read nor change the user's window state or recent list.
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="nvp-explorer-shot-")) / "settings.ini"
        settings = QSettings(str(scratch), QSettings.Format.IniFormat)
    return settings


def _open_startup(window: MainWindow, args: argparse.Namespace, autosave: Path | None) -> list[str]:
    """Open the model (or the autosaved session) and the images asked for; returns those image paths."""
    restore = autosave is not None and not args.fresh and autosave.is_file()
    model = window.startup_model(args.model, session=autosave if restore else None)
    if model:
        # a given model that does not open is reported, and the default one opens instead (the images are kept)
        window.hub.open_model(model, fallback=window.startup_model(None) if args.model else None)
    else:
        window.show_message("No model found: open one with File ▸ Open model… or train one in the Training tab.",
                            "info")
    images = [p for p in args.images if p != "examples"]

    def add_images() -> None:
        if "examples" in args.images:
            window.hub.load_examples()
        if images:
            window.encode_panel.add_paths(images)

    if restore:
        window.restore_autosave(then=add_images)  # the images asked for join the restored ones
    else:
        add_images()
    return images


def _close_on_sigint(window: MainWindow) -> "QTimer":
    """Ctrl+C in the terminal closes the window cleanly (threads stopped) instead of being ignored.

    The caller keeps the returned timer alive for as long as Qt's loop runs."""
    from PySide6.QtCore import QTimer

    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer()
    tick.start(250)
    tick.timeout.connect(lambda: None)  # lets Python see the signal while Qt's loop runs
    return tick


def _arm_screenshot(app: "QApplication", window: MainWindow, args: argparse.Namespace, images: list[str],
                    status: dict[str, int]) -> Showcase:
    """Show what the tab is for, then save the window to --screenshot and close (status["code"] 1 on trouble)."""
    out = Path(args.screenshot)

    def shoot() -> None:
        app.processEvents()
        if showcase.timed_out:
            print(f"screenshot: rendering did not finish in {args.timeout:.0f} s; saving what is shown",
                  file=sys.stderr)
            status["code"] = 1
        out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(out)):
            print(f"screenshot: could not write {out}", file=sys.stderr)
            status["code"] = 1
        else:
            print(f"screenshot saved to {out}")
        window.close()

    showcase = Showcase(window, showcase_steps(window, args.tab, images), shoot, args.timeout)
    return showcase


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)  # before any heavy import: --help and bad arguments answer at once
    if args.screenshot and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _qapp()
    splash = None if args.screenshot else show_splash()
    tune_runtime()
    make_app()
    from .main_window import MainWindow, focus_tab

    settings = _window_settings(args)
    # A screenshot shows what the arguments ask for, never the user's last session (nor changes it).
    autosave = None if args.screenshot else autosave_path()
    window = MainWindow(device=args.device, settings=settings, autosave=autosave)
    if args.screenshot:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
            window.resize(w, h)
        except ValueError:
            print(f"--size must look like 1440x900, got {args.size!r}", file=sys.stderr)
            return 2
    if args.tab:
        focus_tab(window, args.tab)
    window.show()
    if splash is not None:
        splash.finish(window)

    images = _open_startup(window, args, autosave)
    tick = _close_on_sigint(window)  # noqa: F841 (kept alive while the loop runs)
    status = {"code": 0}
    showcase = _arm_screenshot(app, window, args, images, status) if args.screenshot else None  # noqa: F841
    app.exec()
    window.shutdown()
    return status["code"]


def run() -> None:
    """Console entry point: exit without Python's teardown of Qt objects (PySide6 + pyqtgraph can abort there)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["autosave_path", "main", "make_app", "parse_args", "run"]
