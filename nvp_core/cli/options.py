"""Argument types and shared options of the subcommands, validated at parse time.

This module is light on purpose (no torch, numpy or Pillow): `nvp --help` and
`nvp sample --help` build parsers from it without importing the heavy libraries.
Every range is checked here, so a seed of 2**80, a temperature of 1e308 or a size of
10**9 is one argparse error naming the valid range, before a model is even opened.
"""
from __future__ import annotations

import argparse
import math

from .. import limits


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:  # "1e6" is a whole number too; 1.5 is not
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        return int(value)


def int_range(lo: int, hi: int | None = None, what: str = "") -> "argparse._ActionType":
    """A whole number in [lo, hi], with a message that says the range."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < lo or (hi is not None and value > hi):
            span = f"in [{lo:,}, {hi:,}]" if hi is not None else f"≥ {lo:,}"
            raise argparse.ArgumentTypeError(f"must be {span}{what}, got {text}")
        return value

    parse.__name__ = "whole number"
    return parse


def float_range(lo: float, hi: float, what: str = "", lo_open: bool = False) -> "argparse._ActionType":
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {'(' if lo_open else '['}{lo:g}, {hi:g}]{what}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_range(1)
#: Seeds: torch generators take 64-bit seeds; larger or negative numbers are refused, not wrapped.
seed = int_range(0, limits.MAX_SEED, " (a 63-bit seed)")
#: Image and canvas sides.
side = int_range(1, limits.MAX_SIDE, " pixels")
temperature = float_range(0.0, limits.MAX_TEMPERATURE, " (the latents' standard deviation)")
#: Angles in degrees: ten turns either way is plenty; beyond, float precision goes first.
angle = float_range(-3600.0, 3600.0, " degrees")
fps = float_range(0.01, 100.0, " frames per second")
zoom = int_range(1, 64)
batch = int_range(1, 65536)


non_negative_float = float_range(0.0, math.inf)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


# ---------------------------------------------------------------- shared options
def add_model_arg(parser: argparse.ArgumentParser) -> None:
    """Optional positional MODEL: a model folder or .safetensors file; the shipped
    default model when left out."""
    from .. import default_model_path

    parser.add_argument(
        "model", nargs="?", default=None, metavar="MODEL",
        help=f"model folder or .safetensors file (default: the shipped model, {default_model_path()})",
    )


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (cuda when available; default: auto)")


def add_seed_arg(parser: argparse.ArgumentParser, help_: str = "random seed (default: 0)") -> None:
    parser.add_argument("--seed", type=seed, default=0, help=help_)


def add_size_args(parser: argparse.ArgumentParser, what: str = "images") -> None:
    parser.add_argument("--size", type=side, default=None,
                        help=f"side of square {what} (default: the model's training size)")
    parser.add_argument("--height", type=side, default=None, help="height (overrides --size)")
    parser.add_argument("--width", type=side, default=None, help="width (overrides --size)")


def add_batch_arg(parser: argparse.ArgumentParser, default: int = 16) -> None:
    parser.add_argument("--batch-size", type=batch, default=default,
                        help=f"images per forward pass; lowered automatically when it would not fit in "
                             f"memory (default: {default})")


def add_zoom_arg(parser: argparse.ArgumentParser, default: int = 1) -> None:
    parser.add_argument("--zoom", type=zoom, default=default,
                        help=f"nearest-neighbour enlargement of each image so small ones stay visible "
                             f"(default: {default})")


def add_images_arg(parser: argparse.ArgumentParser, metavar: str = "[MODEL] IMAGES",
                   what: str = "image files or folders") -> None:
    """Positional ``[MODEL] IMAGES...`` (see common.split_model_and_images)."""
    parser.add_argument("paths", nargs="+", metavar=metavar,
                        help=f"an optional model folder or .safetensors file, then {what}")


def add_temperature_arg(parser: argparse.ArgumentParser, default: float,
                        what: str = "standard deviation of the latents") -> None:
    parser.add_argument("--temperature", type=temperature, default=default, help=f"{what} (default: {default})")


def add_run_args(parser: argparse.ArgumentParser, run, zoom: bool = True, batch: int | None = 16) -> None:
    """The options the rendering commands end with (--zoom, --batch-size, --device), and ``run``
    as the command, guarded: one place, so every command's --help ends the same way."""
    if zoom:
        add_zoom_arg(parser)
    if batch is not None:
        add_batch_arg(parser, batch)
    add_device_arg(parser)
    parser.set_defaults(func=guarded(run))


def guarded(run):
    """``common.guarded(run)`` without importing common (torch) until the command runs."""

    def wrapper(args: argparse.Namespace) -> int:
        from .common import guarded as _guarded

        return _guarded(run)(args)

    wrapper.__wrapped__ = run
    return wrapper
