"""`nvp`: the headless side of NVP Explorer (train, sample, encode, infoloss, sphere, extrapolate).

Each subcommand lives in its own module with ``register(subparsers)``, which adds
its parser and sets ``func(args) -> int``. Errors of ours print one clear line
and exit 2; Ctrl-C exits 130 — never a traceback for a user mistake.

Arguments are parsed before anything heavy is imported: only the subcommand that runs
gets its full parser (the others are one-line entries for `nvp --help`), and torch is
imported by the subcommand's ``run``. So `nvp --help` answers at once, and a Ctrl-C
while torch loads is an ordinary interruption (exit 130), not a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from ..errors import NVPError

#: subcommand → (module, one-line summary shown by `nvp --help`; the module's own parser
#: uses the same text, which tests/test_cli.py checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train_cmd", "train a Real NVP on a folder of images or the built-in photo-crops set"),
    "sample": ("sample_cmd", "draw samples into a grid PNG"),
    "encode": ("encode_cmd", "bits/dim per image (and latents to .npz)"),
    "infoloss": ("infoloss_cmd", "grid: reconstruction, then z1, z1..2, … resampled"),
    "sphere": ("sphere_cmd", "frames + GIF/WebP sweeping an angle on the sphere through 8 images"),
    "extrapolate": ("extrapolate_cmd", "sample canvases SCALE× the training size"),
    "figures": ("figures_cmd", "regenerate all docs figures (samples, sizes, information loss, manifold)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `nvp` parser. With ``command``, only that subcommand's module is imported and
    registered in full; ``None`` registers every subcommand in full (slower: imports all)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="nvp", description="Real NVP normalizing flows: train, sample and explore latents headless."
    )
    parser.add_argument("--version", action="version", version=f"nvp-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, summary) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"{__name__}.{module}").register(sub)
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _command_in(argv: list[str]) -> str:
    """The subcommand named in ``argv`` ('' when none: `nvp --help`, `nvp --version`, `nvp`)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else ""
    return ""


def _tolerant_output() -> None:
    """File names that are not valid UTF-8 (or not encodable at all) must not crash a print
    after all the work is done: escape what a strict stdout/stderr cannot encode."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError, AttributeError):
                pass


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):  # stderr closed or broken: the exit code still tells
        pass


def _prog(name: str) -> str:
    return f"nvp {name}" if name else "nvp"


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _command_in(argv)
    try:
        try:
            parser = build_parser(name)
            args = parser.parse_args(argv)
            name = args.command
            _import_torch_deferring_interrupts()
            return int(args.func(args) or 0)
        except NVPError as exc:
            _say(f"{_prog(name)}: error: {exc}")
            return 2
        except OSError as exc:  # full disk, permissions: say what and where
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            _say(f"{_prog(name)}: error: {exc.strerror or exc}{where}")
            return 2
        except RecursionError:  # a nested input that slipped past the checks: still one line
            _say(f"{_prog(name)}: error: the input is nested too deeply to read")
            return 2
    except KeyboardInterrupt:
        # A second Ctrl-C while we clean up or while Python shuts down (joining threads) must not
        # turn exit 130 into a traceback or a death by SIGINT (-2): ignore it from now on. The
        # process is ending; library callers that go on can restore the handler.
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: nothing to protect
            pass
        _say(f"{_prog(name)}: interrupted")
        _forget_unhandled_interrupt()
        return 130


def _import_torch_deferring_interrupts() -> None:
    """Import torch with Ctrl-C held back until it is done, then act on it.

    A KeyboardInterrupt raised inside one of the pybind11 callbacks that run while torch
    loads cannot be caught in Python: pybind11 throws it through C++ code that may not
    throw, and the process aborts (status −6, "terminate called … error_already_set"),
    about 1 time in 3 when Ctrl-C came in the first second. So the import runs under a
    handler that only notes the signal; the interrupt is raised after the import."""
    if "torch" in sys.modules:
        return
    noted: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    except ValueError:  # not the main thread: signals are not ours to hold
        previous = None
    try:
        import torch  # noqa: F401 - the import is the point
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if noted:
        raise KeyboardInterrupt


def _forget_unhandled_interrupt() -> None:
    """Keep exit code 130 for a Ctrl-C that landed while torch was importing.

    CPython notes a KeyboardInterrupt that escapes any ``PyRun_*`` evaluation (pybind11
    runs some while torch loads) in a C flag, and at exit kills the process with SIGINT
    (status -2) even though we handled the interrupt. A trivial successful ``PyRun``
    resets that flag; elsewhere (PyPy) there is no such flag."""
    if sys.implementation.name != "cpython":
        return
    try:
        import ctypes

        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    except Exception:  # noqa: BLE001 - best effort: the worst case is the old -2
        pass


def run() -> None:
    """The `nvp` program: :func:`main`, then exit with its status.

    After a Ctrl-C (status 130) the interpreter's finalisation is skipped: an interrupt
    that landed while torch's C++ extensions were loading can leave them half initialised,
    and their teardown then aborts the process (SIGABRT, status −6 in about 1 run in 3)."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
