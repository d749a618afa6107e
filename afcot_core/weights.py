"""Finding model weights on this machine (a local folder or the Hugging Face cache), without a network."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path


def hf_cache_dir() -> Path:
    """The hub cache ``hf download`` fills: ``HF_HUB_CACHE`` (or its old name), ``HF_HOME``, ``XDG_CACHE_HOME``."""
    env = os.environ
    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(hub or os.path.join(home, "hub"))).expanduser()


RUN_DIR_ENV = "AFCOT_RUN_DIR"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_planned: tuple[Path, tuple[str, ...], tuple[str, ...]] | None = None


@contextlib.contextmanager
def run_dir(path: Path) -> Iterator[None]:
    """Inside: ``{run}`` means ``path`` (through ``AFCOT_RUN_DIR``). After: the process environment is as it was
    before, whatever the run's stages set in it."""
    before = dict(os.environ)
    os.environ[RUN_DIR_ENV] = str(path.resolve())
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def planning(path: Path, stages: list[str], known: tuple[str, ...]) -> Iterator[None]:
    """Inside: :func:`missing_weights` checks ``{run}/<stage>/...`` paths against ``path`` when ``<stage>`` is
    one of the ``known`` stages but not one of ``stages`` (nothing in this run will make them)."""
    global _planned
    before, _planned = _planned, (path, tuple(stages), known)
    try:
        yield
    finally:
        _planned = before


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

    A path under ``{run}/<stage>`` is made by that stage of the run: it is checked only inside :func:`planning`
    when the planned stages leave ``<stage>`` out.
    """
    if "{run}" in model:
        return missing_run_output(model, key)
    if resolve(model) is not None:
        return []
    if not is_hub_id(model) or Path(model).expanduser().parent.is_dir():  # "models/x" next to a models/ folder
        return [f"{key}: no model folder '{model}' on this machine; give the folder that holds its config.json"]
    return [
        f"{key}: weights for '{model}' are not on this machine (looked for a folder '{model}' and in the "
        f"Hugging Face cache {hf_cache_dir()}). Download them where there is network with "
        f"`hf download {model}` and copy the cache here (or set HF_HUB_CACHE), "
        f"or set {key} = \"/path/to/{model.rsplit('/', 1)[-1]}\" in this table"
    ]


def is_hub_id(model: str) -> bool:
    """Whether ``model`` reads as a Hugging Face hub id (``org/name``) rather than a local path."""
    return _HUB_ID.fullmatch(model) is not None and ".." not in model


def missing_run_output(model: str, key: str) -> list[str]:
    """For a preflight: a problem when ``model`` (``{run}/<stage>/...``) is made by a stage the planned run leaves
    out and is not already in the run folder; nothing outside :func:`planning` or for other paths."""
    if _planned is None:
        return []
    out, stages, known = _planned
    stage = model.replace("{run}", "", 1).strip("/").split("/", 1)[0]
    path = Path(model.replace("{run}", str(out)))
    if stage not in known or stage in stages or path.is_dir():
        return []
    return [f"{key}: '{model}' is made by the {stage} stage, which this run leaves out, and {path} does not "
            f"exist: run that stage first (or add it to --stages), or point {key} at one that exists"]


def missing_packages(packages: dict[str, str]) -> list[str]:
    """Problems for Python packages that are not installed: ``{module: install hint}``."""
    return [f"Python package '{module}' is not installed: {hint}"
            for module, hint in packages.items() if importlib.util.find_spec(module) is None]
