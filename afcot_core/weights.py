"""Finding model weights on this machine (a local folder or the Hugging Face cache), without a network."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring ``HF_HUB_CACHE`` and ``HF_HOME``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


RUN_DIR_ENV = "AFCOT_RUN_DIR"


def expand(value: str) -> str:
    """``value`` with ``{run}`` replaced by the current run directory (set by the runner)."""
    if "{run}" not in value:
        return value
    if RUN_DIR_ENV not in os.environ:
        raise ValueError(f"'{value}' refers to {{run}}, which only exists inside `afcot recipe run`")
    return value.replace("{run}", os.environ[RUN_DIR_ENV])


def resolve(model: str) -> Path | None:
    """The folder holding ``model`` (a path, or a hub id found in the cache), or None."""
    path = Path(expand(model)).expanduser()
    if path.is_dir():
        return path
    if "/" not in model or model.startswith((".", "/", "~")):
        return None
    snapshots = hf_cache_dir() / f"models--{model.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def missing_weights(model: str, key: str = "model") -> list[str]:
    """A problem message when ``model`` (the config field ``key``) is not on this machine, and how to provide it.

    Paths under ``{run}`` are made by an earlier stage of the run and are not checked here.
    """
    if "{run}" in model or resolve(model) is not None:
        return []
    return [
        f"{key}: weights for '{model}' are not on this machine (looked for a folder '{model}' and in the "
        f"Hugging Face cache {hf_cache_dir()}). Download them where there is network with "
        f"`huggingface-cli download {model}` and copy the cache here (or set HF_HUB_CACHE), "
        f"or set {key} = \"/path/to/{model.rsplit('/', 1)[-1]}\" in this table"
    ]


def missing_packages(packages: dict[str, str]) -> list[str]:
    """Problems for Python packages that are not installed: ``{module: install hint}``."""
    return [f"Python package '{module}' is not installed: {hint}"
            for module, hint in packages.items() if importlib.util.find_spec(module) is None]
