"""The paper's prompts, kept as versioned text files (``prompts/<name>.v<N>.txt``)."""

from __future__ import annotations

import functools
from importlib import resources
from string import Template

VERSION = 1
NAMES = ("caption", "gate", "predict", "validate", "summary", "reasoning", "describe", "fit",
         "classification_summary")


@functools.cache
def text(name: str) -> str:
    return resources.files("afcot_paper").joinpath(f"prompts/{name}.v{VERSION}.txt").read_text(encoding="utf-8").strip()


def fill(name: str, **values: str) -> str:
    """The prompt ``name`` with its ``$placeholders`` filled (a missing value is an error)."""
    return Template(text(name)).substitute(**values)


def all_prompts() -> dict[str, str]:
    return {f"{name}.v{VERSION}": text(name) for name in NAMES}


def chain_text(chain: list[tuple[str, str]]) -> str:
    """The reasoning chain as the LLM sees it: one ``- question Answer: answer`` line per pair."""
    return "\n".join(f"- {q} Answer: {a}" for q, a in chain)
