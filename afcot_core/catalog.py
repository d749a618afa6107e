"""The built-in recipes, found by name.

They are the TOML files of the ``afcot_recipes`` package (the ``recipes/`` folder of the source tree), so an
installed afcot runs ``afcot recipe run quickstart`` without a checkout. A path to a file always wins over a name.
In any recipe, ``{recipes}`` in a string value stands for this folder, so a recipe can name the data shipped
with the built-in recipes (``{recipes}/data/example_items.jsonl``) wherever it is run from.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from afcot_core.errors import BadInput
from afcot_core.registry import suggest

PACKAGE = "afcot_recipes"


def folder() -> Path:
    """The folder holding the built-in recipes (inside the installed package)."""
    return Path(str(importlib.resources.files(PACKAGE)))


def names() -> list[str]:
    """The names of the built-in recipes, sorted."""
    return sorted(p.stem for p in folder().glob("*.toml"))


def path(name: str) -> Path:
    """The file of the built-in recipe ``name``; :class:`BadInput` with the known names otherwise."""
    found = folder() / f"{name}.toml"
    if "/" in name or "\\" in name or not found.is_file():
        known = names()
        raise BadInput(f"unknown built-in recipe '{name}'{suggest(name, known)}; built-in recipes: "
                       f"{', '.join(known) or 'none'} (or give the path to a recipe file)")
    return found


def resolve(ref: str | Path) -> Path:
    """A recipe reference as a file: an existing path as is, else the built-in recipe of that name."""
    given = Path(ref)
    if given.is_file():
        return given
    text = str(ref)
    name = text.removesuffix(".toml")
    if "/" in text or "\\" in text or name not in names():
        hint = suggest(name, names()) if "/" not in text else ""
        raise BadInput(f"{given}: recipe file not found{hint}; built-in recipes: {', '.join(names())}")
    return path(name)


def expand(value: Any) -> Any:
    """``value`` (TOML data) with ``{recipes}`` in its strings replaced by the built-in recipes' folder."""
    here = str(folder())
    return strings(value, lambda text: text.replace("{recipes}", here))


def portable(value: Any) -> Any:
    """``value`` with the built-in recipes' folder written back as ``{recipes}`` (the inverse of :func:`expand`).

    The fingerprint is taken of this, so a run keeps its identity when the package is installed elsewhere.
    """
    here = str(folder())
    return strings(value, lambda text: "{recipes}" + text[len(here):]
                    if text == here or text.startswith(here + os.sep) else text)


def strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (TOML-like data: tables, lists, scalars) with ``change`` applied to every string in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [strings(v, change) for v in value]
    return value
