"""`nvp`: the headless side of NVP Explorer (train, sample, encode, infoloss, sphere, extrapolate).

Each subcommand lives in its own module with ``register(subparsers)``, which adds
its parser and sets ``func(args) -> int``. Errors of ours print one clear line
and exit 2; Ctrl-C exits 130 — never a traceback for a user mistake.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import NVPError

COMMANDS = ("train_cmd", "sample_cmd", "encode_cmd", "infoloss_cmd", "sphere_cmd", "extrapolate_cmd", "figures_cmd")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="nvp", description="Real NVP normalizing flows: train, sample and explore latents headless."
    )
    parser.add_argument("--version", action="version", version=f"nvp-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NVPError as exc:
        print(f"nvp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nvp {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # full disk, permissions: say what and where
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"nvp {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
