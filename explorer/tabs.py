"""The explorer's tabs by key and title, and the names ``--tab`` accepts.

Kept apart from the window (plain Python, no Qt or torch) so ``main.py --help``
and argument checking answer before the heavy imports.
"""
from __future__ import annotations

TABS = ("model", "encode", "infoloss", "manifold", "canvas", "training")
TAB_TITLES = ("Model", "Encode && latents", "Information loss", "Manifold", "Canvas", "Training")
TAB_ALIASES = {"information loss": "infoloss", "info": "infoloss", "latents": "encode", "encode & latents": "encode",
               "sphere": "manifold", "train": "training", "samples": "model"}


def tab_key(name: str) -> str:
    """Normalise a --tab argument ("Manifold", "information loss", "info") to a key of TABS."""
    n = name.strip().lower()
    n = TAB_ALIASES.get(n, n.replace("-", "").replace("_", "").replace(" ", ""))
    if n not in TABS:
        raise ValueError(f"unknown tab {name!r}; choose one of {', '.join(TABS)}")
    return n


__all__ = ["TABS", "TAB_ALIASES", "TAB_TITLES", "tab_key"]
