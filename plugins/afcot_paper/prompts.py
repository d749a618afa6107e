"""The prompts of the paper's steps, as named sets of text files (``prompts/<set>/<step>.txt``).

``paper`` (the default) carries the content of the released soundCoT code step by step: the same
instructions, constraints, one-shot example and JSON keys, in our own words. ``release`` is the released
code's prompt texts verbatim (typos included; the steps the release lacks fall back to ``paper``), laid out
as the release builds them: the question on the line of its lead-in, the chain only when it has a question,
list lines appended to their lead-in line. ``strict-perception``
keeps this project's earlier wording (sub-questions limited to perception, the LLM told it cannot
hear); a step it does not define falls back to ``paper``. Each file opens with a one-line ``#``
header naming the step and the source it follows; the header is not sent.
"""

from __future__ import annotations

import functools
from importlib import resources
from string import Template

DEFAULT_SET = "paper"
SETS = ("paper", "release", "strict-perception")
NAMES = ("caption", "gate", "gate_only", "chain", "predict", "validate", "summary", "summary_interactive",
         "reasoning", "reasoning_interactive", "followup", "discriminate", "causality", "describe", "fit",
         "classification_summary")


def _file(prompt_set: str, name: str):
    return resources.files("afcot_paper").joinpath(f"prompts/{prompt_set}/{name}.txt")


@functools.cache
def source(name: str, prompt_set: str = DEFAULT_SET) -> str:
    """The file text of step ``name`` in ``prompt_set`` (header included), falling back to ``paper``."""
    if prompt_set not in SETS:
        raise ValueError(f"unknown prompt set '{prompt_set}'; sets: {', '.join(SETS)}")
    path = _file(prompt_set, name)
    if not path.is_file():
        path = _file(DEFAULT_SET, name)
    return path.read_text(encoding="utf-8")


def text(name: str, prompt_set: str = DEFAULT_SET) -> str:
    """The prompt of step ``name`` without its header line."""
    body = source(name, prompt_set)
    if body.startswith("#"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    return body.strip()


def header(name: str, prompt_set: str = DEFAULT_SET) -> str:
    """The one-line header of a prompt file: the step and the source it follows."""
    return source(name, prompt_set).split("\n", 1)[0].lstrip("# ").strip()


def all_prompts() -> dict[str, str]:
    """Every prompt of every set, keyed ``<set>/<step>`` (their hashes go into the run's lock file)."""
    return {f"{s}/{name}": text(name, s) for s in SETS for name in NAMES}


class Prompts:
    """One prompt set, filled for a step: ``Prompts("paper").fill("predict", ...)``."""

    def __init__(self, prompt_set: str = DEFAULT_SET) -> None:
        if prompt_set not in SETS:
            raise ValueError(f"unknown prompt set '{prompt_set}'; sets: {', '.join(SETS)}")
        self.set = prompt_set

    def text(self, name: str) -> str:
        return text(name, self.set)

    def fill(self, name: str, **values: str) -> str:
        """The prompt ``name`` with its ``$placeholders`` filled (a missing value is an error)."""
        if self.set == "release" and name == "validate" and values.get("answer", "").endswith("."):
            values = {**values, "answer": values["answer"][:-1]}  # the release drops the second of two dots
        return Template(self.text(name)).substitute(**values)

    def evidence(self, chain: list[tuple[str, str]]) -> str:
        """The question/answer pairs after the caption, as predict, validate and follow-up prompts show them."""
        if self.set == "strict-perception":
            return listing(chain)
        if not chain:
            return ""
        pairs = self.text("chain") + "".join(f"\nQuestion: {q}\nAnswer: {a}" for q, a in chain)
        return "\n" + pairs if self.set == "release" else pairs

    def listing(self, chain: list[tuple[str, str]]) -> str:
        """The chain as summary and reasoning prompts list it (``  - question Answer: answer`` lines)."""
        text = listing(chain)
        return "\n" + text if self.set == "release" and chain else text

    def bullets(self, lines: list[str]) -> str:
        """Lines as a list (``  - line``), as the summary and discriminate prompts show them."""
        text = bullets(lines)
        return "\n" + text if self.set == "release" and lines else text


def listing(chain: list[tuple[str, str]]) -> str:
    """The chain as a list, one ``  - question Answer: answer`` line per pair (summary and reasoning prompts)."""
    return "\n".join(f"  - {q} Answer: {a}" for q, a in chain)


def bullets(lines: list[str]) -> str:
    return "\n".join(f"  - {line}" for line in lines)
