"""The benchmark protocol: evaluation items and the per-benchmark rules.

A benchmark plugin registers (``register_benchmarks``) a factory returning a :class:`Benchmark`. The benchmark
owns its loader (official files → :class:`EvalItem`), its prompt, its answer extraction and its judge; the
evaluate stage of this plugin scores any benchmark the same way (:mod:`afcot_benchmarks.scoring`). A third-party
benchmark subclasses :class:`Benchmark` from here: it runs where this plugin's evaluate stage does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afcot_core.api import COT_SUFFIX, AudioRef, inline_prompt


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question, as loaded from the benchmark's official files.

    ``answer_index`` is the gold option's position in ``choices`` when known; ``groups`` maps each
    breakdown name to this item's value; ``audio`` is None when the file is missing (``audio_path``
    says where it was looked for); ``record`` is the original record, kept for writing prediction
    files in the official format; ``prompt`` is a native prompt if the benchmark ships one.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str
    answer_index: int | None = None
    groups: Mapping[str, str] = field(default_factory=dict)
    audio: AudioRef | None = None
    audio_path: str = ""
    prompt: str = ""
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """Whether an extracted answer is right, plus optional named diagnostic decisions."""

    correct: bool
    diagnostics: Mapping[str, bool] = field(default_factory=dict)


@dataclass
class Loaded:
    """A benchmark's items and the audio files it could not find (item ids)."""

    items: list[EvalItem]
    missing_audio: list[str] = field(default_factory=list)


class Benchmark(ABC):
    """What a benchmark plugin provides; see the module docstring."""

    name: str = ""
    #: breakdown names, in report order
    breakdowns: tuple[str, ...] = ()
    #: whether ``bench score`` runs :meth:`extract` on predictions read from an official file
    extract_on_score: bool = False
    #: names of the diagnostic decisions :meth:`judge` returns (reported over every item, missing ones as wrong)
    diagnostics: tuple[str, ...] = ()

    @abstractmethod
    def load(self) -> Loaded:
        """The items of the configured benchmark files (missing audio is reported, never raised)."""

    @abstractmethod
    def read_predictions(self, path: Path) -> list[tuple[EvalItem, str | None]]:
        """Items and raw predictions from an official prediction file; None where an item has none."""

    @abstractmethod
    def prompt(self, item: EvalItem, cot: bool) -> str:
        """The text prompt for ``item``; ``cot`` asks for the tagged chain-of-thought format."""

    @abstractmethod
    def extract(self, item: EvalItem, output: str) -> str:
        """The final answer in a model's raw output (last CONCLUSION, then the benchmark's rule)."""

    @abstractmethod
    def judge(self, item: EvalItem, answer: str) -> Judgement:
        """Whether the extracted ``answer`` is correct for ``item``."""

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        """Values always reported for ``breakdown``, in order; others follow in first-seen order."""
        return ()

    def trained_prompt(self, item: EvalItem, cot: bool, layout: str = "inline") -> str:
        """The prompt in the layout students are trained on (:data:`LAYOUTS`, the CoT suffix when ``cot``)."""
        return inline_prompt(item.question, item.choices, cot, layout)

    def trained_extract(self, item: EvalItem, output: str) -> str:
        """The final answer of an output to :meth:`trained_prompt` (by default as :meth:`extract`)."""
        return self.extract(item, output)

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        """File names and texts holding answers in the official prediction format ("" for none)."""
        raise NotImplementedError(f"{self.name}: no official prediction format")


def with_cot(prompt: str, cot: bool) -> str:
    """``prompt`` ending with the CoT suffix when ``cot`` is on, and without it otherwise."""
    base = prompt.removesuffix(COT_SUFFIX).rstrip()
    return f"{base}\n{COT_SUFFIX}" if cot else base
